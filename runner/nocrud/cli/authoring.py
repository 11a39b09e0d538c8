"""Commands about writing and measuring flows: ``nocrud perf``, ``coverage`` and ``new``.

They work on what ``nocrud up`` leaves in ``.nocrud/`` next to nocrud.yaml (see
:func:`record_run`): the last run's results, the app's OpenAPI document and, with
``--perf``, request timings. :func:`register` adds the commands to the main group.
Exit codes follow the rest of the CLI: 0 fine, 1 a regression (``perf``) or coverage
under ``--fail-under``, 2 a usage problem such as a missing file, with what to run.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nocrud.analysis import perf as perf_module
from nocrud.analysis.coverage import (
    LAST_RUN_FILE,
    OPENAPI_FILE,
    OpenApiError,
    compute_coverage,
    load_openapi,
    state_dir,
)
from nocrud.config import Config, ConfigError, load_config
from nocrud.flows.scaffold import ScaffoldError, new_crud, new_flow
from nocrud.results import RunResult

__all__ = ["coverage", "new", "perf", "record_run", "register"]

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _console() -> Console:
    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def _fail(message: str) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(EXIT_USAGE)


def _guard(func: F) -> F:
    """Turn known mistakes into one message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (
            ConfigError,
            OpenApiError,
            perf_module.PerfError,
            ScaffoldError,
        ) as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


def _config(ctx: click.Context) -> Config:
    obj = ctx.find_root().obj or {}
    return load_config(obj.get("config_path"))


def last_run_path(root: Path) -> Path:
    """Where ``nocrud up`` keeps the results of the last run."""
    return state_dir(root) / LAST_RUN_FILE


def record_run(root: Path, results: Path, *, perf: bool, say: Callable[[str], None]) -> None:
    """After ``nocrud up``: keep the results for ``coverage``; write timings with ``--perf``.

    Args:
        root: The directory of nocrud.yaml.
        results: The results JSON the run wrote (``--json``, or the default place).
        perf: Also write ``.nocrud/perf/last.json``.
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
        run = RunResult.from_dict(json.loads(results.read_text()))
        openapi = state_dir(root) / OPENAPI_FILE
        document = load_openapi(openapi) if openapi.is_file() else None
        directory = state_dir(root) / perf_module.PERF_DIR
        target = perf_module.write_timings(run, directory, document)
    except (OSError, ValueError, KeyError, OpenApiError) as exc:
        say(f"could not keep this run's results in {state_dir(root)}: {exc}")
        return
    if perf:
        say(f"request timings written to {target}: compare with `nocrud perf`")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.0f}%"


@click.command()
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
@_guard
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
    directory = state_dir(_config(ctx).root) / perf_module.PERF_DIR
    console = _console()
    if store:
        target = perf_module.save_baseline(directory)
        count = len(perf_module.read_timings(target))
        console.print(f"baseline stored: {target} ({count} endpoints)")
        return
    current = perf_module.read_timings(directory / perf_module.LAST_FILE)
    baseline_path = directory / perf_module.BASELINE_FILE
    baseline = perf_module.read_timings(baseline_path) if baseline_path.is_file() else {}
    rows = perf_module.compare(current, baseline, threshold=threshold, min_delta_ms=min_delta)
    worse = perf_module.regressions(rows)
    if as_json:
        click.echo(json.dumps([_row_dict(row) for row in rows], indent=2))
    else:
        _print_perf(console, rows)
        if not baseline:
            console.print("no baseline yet: store this run as one with `nocrud perf --baseline`")
        elif worse:
            console.print(
                f"[bold red]{len(worse)} of {len(rows)} endpoint(s) regressed[/] by more than "
                f"{threshold:g}% (and {min_delta:g} ms): "
                + ", ".join(row.endpoint for row in worse)
            )
        else:
            console.print(f"no endpoint regressed by more than {threshold:g}%")
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


def _print_perf(console: Console, rows: list[perf_module.Comparison]) -> None:
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
    console.print(table)


@click.command()
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
    help="The OpenAPI document (default: .nocrud/openapi.json, saved by `nocrud up`).",
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
@_guard
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
    number of flows that called it; then the share covered.

    \b
    Examples:
      nocrud up && nocrud coverage
      nocrud coverage --missing --fail-under 90
      nocrud coverage --results ci/results.json --openapi http://127.0.0.1:8000/openapi.json
    """
    root = _config(ctx).root
    results_path = results or last_run_path(root)
    if not results_path.is_file():
        _fail(f"no results at {results_path}: run `nocrud up` first (or pass --results)")
    run = RunResult.from_dict(json.loads(results_path.read_text()))
    document = load_openapi(openapi_source or state_dir(root) / OPENAPI_FILE)
    report = compute_coverage(document, run)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        console = _console()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("", "method", "path", "statuses", "flows"):
            table.add_column(column)
        for op in report.operations:
            if missing and op.covered:
                continue
            mark = "[green]✔[/]" if op.covered else "[red]✘[/]"
            statuses = " ".join(str(s) for s in op.statuses)
            table.add_row(
                mark,
                op.operation.method,
                escape(op.operation.path),
                statuses,
                str(len(op.flows)) if op.flows else "",
            )
        console.print(table)
        for endpoint, codes in report.undocumented:
            shown = " ".join(map(str, codes))
            console.print(f"called but not in the document: {escape(endpoint)} ({shown})")
        console.print(
            f"covered {report.covered} of {len(report.operations)} operations "
            f"({report.share * 100:.1f}%) in run {run.run_id}"
        )
    if fail_under is not None and report.share * 100 < fail_under:
        sys.exit(EXIT_FAILED)


@click.group()
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
    help="Fill the payload from this OpenAPI document (default: .nocrud/openapi.json if any).",
)
@click.pass_context
@_guard
def new_crud_command(
    ctx: click.Context,
    resource: str,
    endpoint: str,
    credentials: str | None,
    openapi_source: str | None,
) -> None:
    """Write flows/<RESOURCE>_crud.py declaring a CRUD flow for ENDPOINT.

    With the app's OpenAPI document (saved by `nocrud up`), the create payload holds
    every writable field of the create operation, with unique values where needed.
    """
    config = _config(ctx)
    auth: tuple[str, str] | None = None
    if credentials is not None:
        user, sep, password = credentials.partition(":")
        if not sep or not user:
            _fail(f"--auth {credentials!r}: write it as USER:PASSWORD")
        auth = (user, password)
    saved = state_dir(config.root) / OPENAPI_FILE
    source = openapi_source or (saved if saved.is_file() else None)
    document = load_openapi(source) if source is not None else None
    path = new_crud(config.flows.path, resource, endpoint, document=document, auth=auth)
    _console().print(f"wrote {path}: run it with `nocrud up -f {path.stem}`")


@new.command(name="flow")
@click.argument("name")
@click.pass_context
@_guard
def new_flow_command(ctx: click.Context, name: str) -> None:
    """Write flows/<NAME>.py with one flow calling the app's health path, to edit."""
    config = _config(ctx)
    path = new_flow(config.flows.path, name, health_path=config.app.health_path)
    _console().print(f"wrote {path}: run it with `nocrud up -f {path.stem}`")


def register(group: click.Group) -> None:
    """Add ``perf``, ``coverage`` and ``new`` to the ``nocrud`` command group."""
    for command in (perf, coverage, new):
        group.add_command(command)
