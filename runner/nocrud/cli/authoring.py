"""Commands about writing and measuring flows: ``nocrud perf``, ``coverage`` and ``new``.

They work on what ``nocrud up`` leaves in ``.nocrud/`` next to nocrud.yaml (see
:func:`record_run`): the last run's results, the app's OpenAPI document and, with
``--perf``, request timings. :func:`register` adds the commands to a group (the
``nocrud`` group loads them lazily instead). Exit codes follow the rest of the CLI:
0 fine, 1 a regression (``perf``) or coverage under ``--fail-under``, 2 a usage
problem such as a missing file, or one another version (or another tool) wrote,
with what to run to make it anew.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nocrud.analysis import perf as perf_module
from nocrud.analysis.coverage import (
    ATTEMPTS_FILE,
    LAST_RUN_FILE,
    OPENAPI_FILE,
    compute_coverage,
    find_openapi,
    load_openapi,
    state_dir,
)
from nocrud.cli._guard import Command, Group
from nocrud.cli._options import console, load
from nocrud.errors import EXIT_FAILED, EXIT_OK, UsageError
from nocrud.results import RunResult

if TYPE_CHECKING:
    from rich.console import Console

    from nocrud.config import Config

__all__ = ["coverage", "last_run_path", "new", "perf", "read_results", "record_run", "register"]


@contextlib.contextmanager
def _readable(path: Path, remedy: str) -> Iterator[None]:
    """Turn a file of another shape or version into a :class:`UsageError` naming ``remedy``.

    What reads ``.nocrud/`` files raises KeyError, TypeError, ValueError (not JSON,
    another schema version) or AttributeError (JSON of another shape) on a file that an
    older nocrud, another tool or a person wrote: none of those is a bug in nocrud.
    """
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = f"not JSON: {exc}"
        elif isinstance(exc, KeyError):
            reason = f"no {exc} in it"
        elif isinstance(exc, TypeError | AttributeError):
            reason = "JSON of another shape"
        else:
            reason = str(exc)
        raise UsageError(f"{path} cannot be read ({reason}): {remedy}") from exc


def read_results(path: Path) -> RunResult:
    """The run results in ``path`` (``nocrud up --json``, or ``.nocrud/last-run.json``).

    Raises:
        UsageError: The file is missing, or not results this nocrud can read; the
            message says to run ``nocrud up`` again.
    """
    if not path.is_file():
        raise UsageError(f"no results at {path}: run `nocrud up` first (or pass --results)")
    with _readable(path, "run `nocrud up` again to write it anew (or pass --results)"):
        return RunResult.from_dict(json.loads(path.read_text()))


_PERF_AGAIN = "run `nocrud up --perf` again to write it anew"


def _read_timings(path: Path) -> dict[str, perf_module.EndpointTiming]:
    with _readable(path, _PERF_AGAIN):
        return perf_module.read_timings(path)


def last_run_path(root: Path) -> Path:
    """Where ``nocrud up`` keeps the results of the last run."""
    return state_dir(root) / LAST_RUN_FILE


def perf_dir(root: Path, project: str) -> Path:
    """The project's request timings and baseline: one folder per project, since two
    configs in one directory share ``.nocrud/`` and must never compare with each other."""
    return state_dir(root) / perf_module.PERF_DIR / project


def record_run(root: Path, results: Path, *, perf: bool, say: Callable[[str], None]) -> None:
    """After ``nocrud up``: keep the results for ``coverage``; write timings with ``--perf``.

    Args:
        root: The directory of nocrud.yaml.
        results: The results JSON the run wrote (``--json``, or the default place).
        perf: Also write ``.nocrud/perf/<project>/last.json``.
        say: Prints one line for the user.
    """
    if not results.is_file():
        return  # the run ended before reporting (build failure, no flows)
    try:
        last = last_run_path(root)
        if results.resolve() != last.resolve():
            last.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(results, last)
        if not perf:
            return
        run = read_results(results)
        openapi = state_dir(root) / OPENAPI_FILE
        document = load_openapi(openapi) if openapi.is_file() else None
        directory = perf_dir(root, run.project)
        target = perf_module.write_timings(run, directory, document)
    except (OSError, ValueError, KeyError, UsageError) as exc:
        say(f"could not keep this run's results in {state_dir(root)}: {exc}")
        return
    if perf:
        say(f"request timings written to {target}: compare with `nocrud perf`")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.0f}%"


@click.command(cls=Command)
@click.option(
    "--baseline", "store", is_flag=True, help="Store the last run's timings as the baseline."
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Percent by which p50 or p95 may grow before it counts as a regression.",
)
@click.option(
    "--min-delta",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Milliseconds of growth below which nothing counts as a regression (jitter).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def perf(
    ctx: click.Context, *, store: bool, threshold: float, min_delta: float, as_json: bool
) -> None:
    """Compare the last run's request timings (from `nocrud up --perf`) with the baseline.

    Prints p50/p95 per endpoint (milliseconds) next to the baseline's and exits 1 when
    any endpoint's p50 or p95 grew by more than --threshold percent (and --min-delta ms).

    \b
    Examples:
      nocrud up --perf && nocrud perf --baseline   # on the main branch: store a baseline
      nocrud up --perf && nocrud perf              # later: compare, exit 1 on a regression
      nocrud perf --threshold 50 --min-delta 5
    """
    config = load(ctx)
    directory = perf_dir(config.root, config.project)
    out = console()
    if store:
        with _readable(directory / perf_module.LAST_FILE, _PERF_AGAIN):
            target = perf_module.save_baseline(directory)
        count = len(_read_timings(target))
        out.print(f"baseline stored: {target} ({count} endpoints)")
        return
    current = _read_timings(directory / perf_module.LAST_FILE)
    baseline_path = directory / perf_module.BASELINE_FILE
    baseline = _read_timings(baseline_path) if baseline_path.is_file() else {}
    rows = perf_module.compare(current, baseline, threshold=threshold, min_delta_ms=min_delta)
    worse = perf_module.regressions(rows)
    if as_json:
        click.echo(json.dumps([_row_dict(row) for row in rows], indent=2))
    else:
        _print_perf(out, rows)
        if not baseline:
            out.print("no baseline yet: store this run as one with `nocrud perf --baseline`")
        elif worse:
            out.print(
                f"[bold red]{len(worse)} of {len(rows)} endpoint(s) regressed[/] by more than "
                f"{threshold:g}% (and {min_delta:g} ms): "
                + ", ".join(row.endpoint for row in worse)
            )
        else:
            out.print(f"no endpoint regressed by more than {threshold:g}%")
    sys.exit(EXIT_FAILED if worse else EXIT_OK)


def _row_dict(row: perf_module.Comparison) -> dict[str, Any]:
    return {
        "endpoint": row.endpoint,
        "current": row.current.to_dict() if row.current else None,
        "baseline": row.baseline.to_dict() if row.baseline else None,
        "p50_change_pct": row.p50_change,
        "p95_change_pct": row.p95_change,
        "regressed": row.regressed,
    }


def _print_perf(out: Console, rows: list[perf_module.Comparison]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("endpoint", "n", "p50 ms", "p95 ms", "base p50", "base p95", "p50", "p95", ""):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for row in rows:
        now, before = row.current, row.baseline
        verdict = (
            "[bold red]REGRESSED[/]"
            if row.regressed
            else "new"
            if before is None
            else "not called"
            if now is None
            else "ok"
        )
        table.add_row(
            escape(row.endpoint),
            str(now.count) if now else "",
            _ms(now.p50 if now else None),
            _ms(now.p95 if now else None),
            _ms(before.p50 if before else None),
            _ms(before.p95 if before else None),
            _pct(row.p50_change),
            _pct(row.p95_change),
            verdict,
        )
    out.print(table)


@click.command(cls=Command)
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results JSON of a run (default: .nocrud/last-run.json, written by every `nocrud up`).",
)
@click.option(
    "--openapi",
    "openapi_source",
    default=None,
    metavar="FILE_OR_URL",
    help="The OpenAPI document (default: app.openapi, else .nocrud/openapi.json, saved by "
    "`nocrud up`).",
)
@click.option("--missing", is_flag=True, help="List only the operations no flow exercised.")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    default=None,
    help="Exit 1 when less than this percentage of the operations is covered.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON.")
@click.pass_context
def coverage(
    ctx: click.Context,
    *,
    results: Path | None,
    openapi_source: str | None,
    missing: bool,
    fail_under: float | None,
    as_json: bool,
) -> None:
    """Show which of the app's OpenAPI operations the last run's flows exercised.

    Each operation (method + path) is listed with the statuses it answered and the
    number of flows that called it; then the share covered. An operation that only
    ever answered 5xx is not covered. The document may be JSON or YAML.

    \b
    Examples:
      nocrud up && nocrud coverage
      nocrud coverage --missing --fail-under 90
      nocrud coverage --results ci/results.json --openapi http://127.0.0.1:8000/openapi.json
    """
    config = load(ctx)
    root = config.root
    run = read_results(results or last_run_path(root))
    if results is None and run.project != config.project:
        raise UsageError(
            f"{last_run_path(root)} holds a run of project {run.project!r} (another config "
            f"in this directory), not {config.project!r}: run `nocrud up` for this project, "
            "or pass --results FILE to read that run on purpose"
        )
    document = find_openapi(root, openapi_source, config.app.openapi)
    report = compute_coverage(document, run)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from rich.markup import escape
        from rich.table import Table

        out = console()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("", "method", "path", "statuses", "flows"):
            table.add_column(column)
        for op in report.operations:
            if missing and op.covered:
                continue
            mark = "[green]✔[/]" if op.covered else "[red]✘[/]"
            statuses = " ".join(str(s) for s in op.statuses)
            if op.statuses and not op.covered:
                statuses += " (server errors only: not covered)"
            table.add_row(
                mark,
                op.operation.method,
                escape(op.operation.path),
                statuses,
                str(len(op.flows)) if op.flows else "",
            )
        out.print(table)
        for endpoint, codes in report.undocumented:
            shown = " ".join(map(str, codes))
            out.print(f"called but not in the document: {escape(endpoint)} ({shown})")
        out.print(
            f"covered {report.covered} of {len(report.operations)} operations "
            f"({report.share * 100:.1f}%) in run {run.run_id}"
        )
    if fail_under is not None and report.share * 100 < fail_under:
        sys.exit(EXIT_FAILED)


@click.group(cls=Group)
def new() -> None:
    """Write a new flow file into the flows package (never overwrites one).

    \b
    Examples:
      nocrud new crud site --endpoint /api/sites --auth editor:editor-password
      nocrud new flow login_rejects_bad_password
    """


@new.command(name="crud")
@click.argument("resource")
@click.option("--endpoint", required=True, metavar="PATH", help="The collection, e.g. /api/sites.")
@click.option(
    "--auth",
    "credentials",
    metavar="USER:PASSWORD",
    default=None,
    help="Log in with these (bearer login at /api/auth/login) before creating.",
)
@click.option(
    "--openapi",
    "openapi_source",
    default=None,
    metavar="FILE_OR_URL",
    help="Fill the payload from this OpenAPI document (default: app.openapi when it is a "
    "file or URL, else the one the last `nocrud up` saved from the app).",
)
@click.pass_context
def new_crud_command(
    ctx: click.Context,
    resource: str,
    endpoint: str,
    credentials: str | None,
    openapi_source: str | None,
) -> None:
    """Write flows/<RESOURCE>_crud.py declaring a CRUD flow for ENDPOINT.

    With the app's OpenAPI document (OpenAPI 3 or Swagger 2.0: --openapi, app.openapi,
    or the one `nocrud up` saved), the create payload holds every writable field of the
    create operation, with unique values where needed, and the statuses the document
    lists; what the document says that the flow is not written from is said.
    """
    config = load(ctx)
    auth: tuple[str, str] | None = None
    if credentials is not None:
        user, sep, password = credentials.partition(":")
        if not sep or not user:
            raise UsageError(f"--auth {credentials!r}: write it as USER:PASSWORD")
        auth = (user, password)
    from nocrud.flows.scaffold import new_crud  # only `nocrud new` writes flows
    from nocrud.http.openapi import version_of

    document, origin = _scaffold_document(config, openapi_source)
    notes: list[str] = []
    path = new_crud(
        config.flows.path, resource, endpoint, document=document, auth=auth, notes=notes
    )
    out = console()
    # soft_wrap: a command cut at column 80 cannot be pasted back.
    out.print(f"wrote {path}: run it with `nocrud up -f {path.stem}`", soft_wrap=True)
    from rich.markup import escape

    if document is None:
        out.print(f"no OpenAPI document: {escape(origin)}", soft_wrap=True)
        out.print("the payload is a placeholder: fill in the fields marked TODO", soft_wrap=True)
        return
    out.print(f"fields from {escape(origin)} ({version_of(document)})", soft_wrap=True)
    for note in notes:
        out.print(f"not understood: {escape(note)}", soft_wrap=True)


def _scaffold_document(config: Config, given: str | None) -> tuple[dict[str, Any] | None, str]:
    """The document ``nocrud new crud`` writes from, and where it came from (or why none).

    ``--openapi``; else ``app.openapi`` when it is a file or URL; else the copy the last
    ``nocrud up`` saved from the app (from ``app.openapi``'s path, or the usual paths).
    """
    if given is not None:
        return load_openapi(given, headers=config.app.headers), given
    configured = config.app.openapi
    if configured is not None and not configured.startswith("/"):
        is_url = configured.startswith(("http://", "https://"))
        source = configured if is_url else str(config.root / configured)
        return load_openapi(source, headers=config.app.headers), f"app.openapi ({configured})"
    saved = state_dir(config.root) / OPENAPI_FILE
    served = f"at app.openapi ({configured})" if configured else "at the usual paths"
    if saved.is_file():
        return load_openapi(saved), f"{saved}, saved by the last `nocrud up` from the app {served}"
    advice = (
        "set app.openapi to the path the app serves it at (then `nocrud up`), a file or a "
        "URL, or pass --openapi FILE_OR_URL"
    )
    try:
        record = json.loads((state_dir(config.root) / ATTEMPTS_FILE).read_text())
        tried = "; ".join(f"GET {t['path']}: {t['answer']}" for t in record["tried"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, (
            f"none saved yet (a run saves the one the app serves {served}): run `nocrud up` "
            f"first; or {advice}"
        )
    return None, f"the last `nocrud up` found none ({tried}): {advice}"


@new.command(name="flow")
@click.argument("name")
@click.pass_context
def new_flow_command(ctx: click.Context, name: str) -> None:
    """Write flows/<NAME>.py with one flow calling the app's health path, to edit."""
    config = load(ctx)
    from nocrud.flows.scaffold import new_flow

    path = new_flow(config.flows.path, name, health_path=config.app.health_path)
    # soft_wrap: a command cut at column 80 cannot be pasted back.
    console().print(f"wrote {path}: run it with `nocrud up -f {path.stem}`", soft_wrap=True)


def register(group: click.Group) -> None:
    """Add ``perf``, ``coverage`` and ``new`` to ``group`` (tests build a group of just these)."""
    for command in (perf, coverage, new):
        group.add_command(command)
