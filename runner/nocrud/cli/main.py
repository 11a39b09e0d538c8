"""The ``nocrud`` command line: a thin layer of click over :mod:`nocrud.workflow`.

Each command parses its options, loads the config (default < file < env <
CLI), calls one workflow function and maps the outcome to an exit code:
0 all passed, 1 a flow failed or errored (or an image failed to build),
2 usage or config error, 130 interrupted. Known mistakes print one message
saying what to do, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import docker.errors
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nocrud import __version__, workflow
from nocrud.cli import authoring as cli_flows
from nocrud.cli.doctor import doctor_command
from nocrud.config import Config, ConfigError, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import DockerUnavailableError, connect
from nocrud.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from nocrud.flows import FlowDiscoveryError, SelectionError, discover, select
from nocrud.images.build import BuildError
from nocrud.workflow import UpOptions

F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Console:
    import os

    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}"
    )
    sys.exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with ``code``, even when a flow left a non-daemon thread running.

    Python would wait for such a thread at exit, forever if it never ends; the
    flow was already reported as ERROR for it, so we say so and do not wait.
    """
    import os
    import threading

    stuck = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        names = ", ".join(t.name for t in stuck)
        Console(stderr=True, soft_wrap=True).print(
            f"warning: not waiting for {len(stuck)} thread(s) that flows left running: {names}"
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _load(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Config:
    path: Path | None = ctx.obj.get("config_path")
    try:
        return load_config(
            path, overrides={k: v for k, v in (overrides or {}).items() if v is not None}
        )
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


def _guard(func: F) -> F:
    """Turn the user's mistakes and interrupts into messages and exit codes, in one place."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            Console(stderr=True).print("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except (ConfigError, FlowDiscoveryError, SelectionError, DockerUnavailableError) as exc:
            _fail(str(exc), EXIT_USAGE)
        except BuildError as exc:
            _fail(f"build failed: {exc}", EXIT_FAILED)
        except docker.errors.DockerException as exc:
            # The backstop for the daemon failing mid-run (out of disk, restarted, ...).
            _fail(f"Docker failed: {exc}; check it with `nocrud doctor`", EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="nocrud")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Path to nocrud.yaml (default: ./nocrud.yaml or the nearest parent's; env NOCRUD_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Run API test flows, each against its own PostgreSQL and its own app instance, in Docker.

    \b
    Quick start on the bundled example:
      nocrud build        # build the app image and the pre-migrated database image
      nocrud up -j 8      # run every flow, 8 at a time, each in its own environment
      nocrud list         # show the flows
      nocrud clean        # remove anything nocrud left behind
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Flows run at once (default: run.parallel in nocrud.yaml, else CPU count).",
)
@click.option(
    "-f", "--flow", "names", multiple=True, metavar="NAME", help="Run only this flow (repeatable)."
)
@click.option(
    "-k",
    "keyword",
    metavar="EXPR",
    default=None,
    help="Run flows whose name or tags match, e.g. -k 'site and not delete'.",
)
@click.option(
    "-m", "tags", metavar="EXPR", default=None, help="Run flows whose tags match, e.g. -m 'auth'."
)
@click.option("--crud", "crud_only", is_flag=True, help="Run only declared CRUD flows.")
@click.option(
    "--perf",
    "record_perf",
    is_flag=True,
    help="Write request timings per endpoint to .nocrud/perf/ (compare with `nocrud perf`).",
)
@click.option("--fail-fast", "-x", is_flag=True, help="Start no new flow after the first failure.")
@click.option(
    "--keep-failed",
    is_flag=True,
    help="Keep the containers of failed flows for inspection (remove with `nocrud clean`).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Per-flow timeout in seconds (default: timeouts.flow).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML here (GitLab/GitHub test reports).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write results as JSON here.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show details of passing flows too.")
@click.pass_context
@_guard
def up(
    ctx: click.Context,
    *,
    parallel: int | None,
    names: tuple[str, ...],
    keyword: str | None,
    tags: str | None,
    crud_only: bool,
    record_perf: bool,
    fail_fast: bool,
    keep_failed: bool,
    timeout: float | None,
    junit: Path | None,
    json_path: Path | None,
    verbose: bool,
) -> None:
    """Build what changed, then run the flows in parallel, each in its own environment.

    \b
    Examples:
      nocrud up                      # all flows, parallelism from nocrud.yaml
      nocrud up -j 8 --junit report.xml --json results.json
      nocrud up -f site_crud -f login_rejects_bad_password
      nocrud up -k 'site and not delete' --fail-fast
      nocrud up --crud -m sites      # CRUD flows tagged "sites"
      nocrud up --perf               # then: nocrud perf; nocrud coverage
      nocrud up --keep-failed        # then: docker ps --filter label=nocrud.keep

    Exit codes: 0 all passed, 1 some flow failed or errored, 2 usage or config
    error, 130 interrupted.
    """
    config = _load(
        ctx,
        {
            "run.parallel": parallel,
            "timeouts.flow": timeout,
            "run.keep_failed": True if keep_failed else None,
        },
    )
    if tags or crud_only:
        chosen = select(
            discover(config.flows.path),
            names=names,
            keyword=keyword,
            tags=tags,
            kinds=("crud",) if crud_only else (),
        )
        if not chosen:
            _fail("no flows selected: check -f/-k/-m/--crud, or `nocrud list`", EXIT_USAGE)
        names, keyword = tuple(f.name for f in chosen), None
    results = json_path or cli_flows.last_run_path(config.root)  # `nocrud coverage` reads it
    options = UpOptions(
        names=names,
        keyword=keyword,
        fail_fast=fail_fast,
        keep_failed=config.run.keep_failed,
        junit=junit,
        json=results,
        verbose=verbose,
    )
    console = _console()
    code = workflow.up(config, options, console)
    cli_flows.record_run(config.root, results, perf=record_perf, say=console.print)
    _exit(code)


@main.command(name="build")
@click.pass_context
@_guard
def build_command(ctx: click.Context) -> None:
    """Build the app image and the pre-migrated database image, only where something changed.

    \b
    Examples:
      nocrud build                   # "app image up to date: ..." when nothing changed
      nocrud -c other/nocrud.yaml build
    """
    config = _load(ctx)
    console = _console()
    engine = workflow.prepare_docker(config, console)
    try:
        images = workflow.build(config, engine, console, cleanup.new_run_id())
    finally:
        engine.close()
    console.print(f"app: {images.app}\ndb:  {images.db}", highlight=False)
    sys.exit(EXIT_OK)


@main.command(name="list")
@click.option(
    "-k", "keyword", metavar="EXPR", default=None, help="Only flows matching this expression."
)
@click.option("-m", "tags", metavar="EXPR", default=None, help="Only flows whose tags match.")
@click.option("--crud", "crud_only", is_flag=True, help="Only declared CRUD flows.")
@click.option("--json", "as_json", is_flag=True, help="Print the flows as JSON.")
@click.pass_context
@_guard
def list_command(
    ctx: click.Context, keyword: str | None, tags: str | None, crud_only: bool, as_json: bool
) -> None:
    """List the flows with their kind, tags and first docstring line.

    \b
    Examples:
      nocrud list
      nocrud list -k crud
      nocrud list -m auth --json
    """
    config = _load(ctx)
    kinds = ("crud",) if crud_only else ()
    flows = select(discover(config.flows.path), keyword=keyword, tags=tags, kinds=kinds)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": f.name,
                        "kind": f.kind,
                        "tags": sorted(f.tags),
                        "doc": f.summary,
                        "origin": f.origin,
                    }
                    for f in flows
                ],
                indent=2,
            )
        )
        return
    console = _console()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("flow", "kind", "tags", "description"):
        table.add_column(column, no_wrap=column != "description")
    for item in flows:  # escaped: a parametrised flow's "[id]" is not rich markup
        tags = ",".join(sorted(item.tags))
        table.add_row(escape(item.name), item.kind, escape(tags), escape(item.summary))
    console.print(table)
    console.print(f"{len(flows)} flow(s)")


@main.command()
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also remove objects of runs still going, and of runs on other hosts sharing this daemon.",
)
@click.option("--images", is_flag=True, help="Also remove the cached app and database images.")
@_guard
def clean(everything: bool, images: bool) -> None:
    """Remove what nocrud left: killed runs' objects and environments kept with --keep-failed.

    Runs still going (this host's live processes, or other hosts on a shared daemon)
    are left alone unless --all is given.

    \b
    Examples:
      nocrud clean
      nocrud clean --all             # everything labelled by nocrud, running or not
      nocrud clean --images          # also drop cached images (next run rebuilds them)
    """
    client = connect()
    try:
        report = cleanup.sweep(client, kept=True, live=everything)
        removed_images = 0
        if images:
            for image in client.images.list(filters={"label": cleanup.LABEL_IMAGE_KEY}):
                for tag in image.tags:
                    client.images.remove(tag)
                    removed_images += 1
    finally:
        client.close()
    click.echo(
        f"removed {report.containers} container(s), {report.networks} network(s)"
        + (f", {removed_images} image tag(s)" if images else "")
    )
    if report.spared:
        click.echo(
            f"left {report.spared} object(s) of runs still going or of other hosts: "
            "`nocrud clean --all` removes them too"
        )


@main.command(name="config")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def config_command(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved configuration (defaults < file < environment < CLI), secrets masked.

    \b
    Examples:
      nocrud config
      NOCRUD_PARALLEL=4 nocrud config --json
    """
    config = _load(ctx)
    data = config.to_display_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    import yaml

    click.echo(f"# resolved from {config.source}")
    click.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())


cli_flows.register(main)  # perf, coverage, new
main.add_command(doctor_command)


if __name__ == "__main__":  # pragma: no cover
    main()
