"""``nocrud report merge``: join the results of CI shards (``--shard I/N``) into one report.

The shard jobs carry the pass or fail of the pipeline; this command only joins their
files, so the merged JUnit and JSON read like one run. Nothing here imports Docker.
"""

from __future__ import annotations

from pathlib import Path

import click

from nocrud.cli._guard import Command, Group
from nocrud.errors import UsageError

__all__ = ["report"]


@click.group(cls=Group)
def report() -> None:
    """Work with results files: join the shards of a CI run into one report."""


@report.command(cls=Command)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the merged run as JSON here (from JSON inputs).",
)
@click.option(
    "--junit",
    "junit_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the merged run as JUnit XML here.",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Merge a set of shards even when some shard's file is absent.",
)
def merge(
    files: tuple[Path, ...], json_out: Path | None, junit_out: Path | None, allow_missing: bool
) -> None:
    """Merge shards' results files (all --json files, or all --junit files) into one.

    JSON inputs give the merged run as JSON and/or JUnit; JUnit inputs (from jobs that
    kept only XML) give merged JUnit. The merge refuses runs of different projects,
    shards of different plans (selection, --durations or N), a flow present in two
    files, a set of shards with one missing, and planned flows that no shard ran.

    \b
    Examples:
      nocrud report merge shards/*.json --json results.json --junit report.xml
      nocrud report merge shards/*.xml --junit report.xml
    """
    from nocrud.report import merge as merging

    if json_out is None and junit_out is None:
        raise UsageError("nothing to write: pass --json PATH and/or --junit PATH")
    xml = [f for f in files if f.suffix.lower() == ".xml"]
    if xml and len(xml) != len(files):
        raise UsageError(
            "mixed inputs: pass either the shards' --json files or their --junit files, "
            "not both (the JSON files alone give both outputs)"
        )
    try:
        if xml:
            if json_out is not None:
                raise UsageError(
                    "--json needs the shards' JSON files: JUnit XML does not hold everything "
                    "a results file does"
                )
            assert junit_out is not None
            count = merging.merge_junit(xml, junit_out)
            click.echo(f"merged {len(xml)} JUnit file(s), {count} test case(s), into {junit_out}")
            return
        merged = merging.merge_runs(merging.read_runs(files), allow_missing=allow_missing)
    except merging.MergeError as exc:
        raise UsageError(str(exc)) from exc
    from nocrud.report import format_totals, write_json, write_junit

    if json_out is not None:
        write_json(merged, json_out)
        click.echo(f"JSON results written to {json_out}")
    if junit_out is not None:
        write_junit(merged, junit_out)
        click.echo(f"JUnit XML written to {junit_out}")
    click.echo(f"merged {len(files)} file(s): {format_totals(merged)}")
    lost = merging.missing_flows(merging.read_runs(files)) if allow_missing else []
    if lost:
        click.echo(f"not in any file ({len(lost)} planned flow(s)): {', '.join(lost)}")
