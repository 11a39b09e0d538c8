"""The commands that talk to Docker: ``nocrud up``, ``build`` and ``clean``.

Each parses its options, loads the config and calls one step of
:mod:`nocrud.workflow` (or :mod:`nocrud.docker.cleanup`); the guard turns what
goes wrong into the exit code. Docker, the workflow and rich are imported inside
the commands, so ``nocrud --help`` and ``nocrud list`` never load them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command, exit_now
from nocrud.cli._options import Selection, console, load, selection_options
from nocrud.cli._record import recording
from nocrud.errors import EXIT_OK, UsageError

__all__ = ["build", "clean", "run_id_for", "up"]

#: What a run id may be: it goes into Docker object and database names.
_RUN_ID = re.compile(r"[0-9a-z]{4,32}")


def run_id_for(env: Mapping[str, str]) -> str:
    """This run's one id: the console's when it started the run, else a new one.

    The same id is printed, written into the reports, put on every Docker object,
    recorded in the store (``nocrud serve`` opens ``/runs/<id>``) and names Celery tasks.

    Raises:
        UsageError: ``NOCRUD_REPORT_RUN`` is set to something that cannot be a run id.
    """
    from nocrud.docker import cleanup

    given = env.get("NOCRUD_REPORT_RUN", "")
    if not given:
        return cleanup.new_run_id()
    if not _RUN_ID.fullmatch(given):
        raise UsageError(
            f"NOCRUD_REPORT_RUN={given!r} is not a run id (4 to 32 of a-z, 0-9): "
            "unset it, or let `nocrud serve` set it"
        )
    return given


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Flows run at once (default: run.parallel in nocrud.yaml, else CPU count).",
)
@click.option(
    "--serial",
    is_flag=True,
    help="One flow at a time: the same as -j 1 (e.g. a shared server, run.strategy external).",
)
@click.option(
    "--strategy",
    metavar="NAME",
    default=None,
    help="How each flow gets its database and app: image, pool, template, migrate or "
    "external (default: run.strategy, else image; see the README's 'Choosing a "
    "provisioning strategy').",
)
@click.option(
    "--warm",
    type=click.IntRange(min=0),
    default=None,
    help="Keep up to N environments ready ahead of demand (default: run.warm, else 0), so "
    "a flow's handoff is a queue pop. Each costs CPU to start: worth it where flows leave "
    "CPU to spare or the Docker host has more cores than -j.",
)
@click.option(
    "--keep-pool",
    "keep_pool",
    metavar="IDLE",
    default=None,
    help="Under the pool strategy: keep the pairs after the run for the next one, removed "
    "after IDLE (e.g. 10m) without a run; 0 turns it off (default: run.keep_pool). "
    "See `nocrud pool status`.",
)
@selection_options
@click.option(
    "--perf",
    "record_perf",
    is_flag=True,
    help="Write request timings per endpoint to .nocrud/perf/PROJECT/ (compare with "
    "`nocrud perf`).",
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
@click.option(
    "--no-record",
    "no_record",
    is_flag=True,
    help="Do not record this run in the run store (store.url: .nocrud/history.db by default).",
)
@click.option(
    "--report-to",
    "report_to",
    metavar="URL",
    default=None,
    help="Stream this run's events to a `nocrud serve` console at URL (never fails the "
    "run); the console's Cancel stops it like Ctrl-C.",
)
@click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="Run only CI job I of N (balanced by recorded durations; "
    "default from GitLab's CI_NODE_INDEX/CI_NODE_TOTAL).",
)
@click.option(
    "--durations",
    "durations",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Results JSON of earlier runs to balance shards by (repeatable); the same "
    "file for every job, one no shard job writes. Without it the split is by name.",
)
@click.option(
    "--broker",
    metavar="URL",
    default=None,
    help="Run the flows on `nocrud worker`s through this Redis broker, e.g. "
    "redis://ci-redis:6379/0 (see docs/workers.md).",
)
@click.pass_context
def up(
    ctx: click.Context,
    *,
    parallel: int | None,
    serial: bool,
    strategy: str | None,
    warm: int | None,
    keep_pool: str | None,
    selection: Selection,
    record_perf: bool,
    fail_fast: bool,
    keep_failed: bool,
    timeout: float | None,
    junit: Path | None,
    json_path: Path | None,
    verbose: bool,
    no_record: bool,
    report_to: str | None,
    shard: str | None,
    durations: tuple[Path, ...],
    broker: str | None,
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
      nocrud up -j 4 --warm 4        # environments started ahead of demand
      nocrud up --strategy pool --keep-pool 10m   # the next run starts warm
      nocrud up --report-to http://ci-console:8080   # live in the team's console
      nocrud up --shard 2/4 --durations merged.json --json shard-2.json
      nocrud up --broker redis://ci-redis:6379/0   # on the workers of docs/workers.md
    """
    if serial:
        if parallel not in (None, 1):
            raise UsageError(f"--serial means -j 1: drop -j {parallel} or --serial")
        parallel = 1
    config = load(
        ctx,
        {
            "run.parallel": parallel,
            "run.strategy": strategy,
            "run.warm": warm,
            "run.keep_pool": keep_pool,
            "timeouts.flow": timeout,
            "run.keep_failed": True if keep_failed else None,
        },
    )
    from nocrud.cli import authoring
    from nocrud.sharding import parse_shard, shard_from_env

    names, keyword = selection.names, selection.keyword
    if selection.tags or selection.kinds:  # the workflow selects by names and -k only
        from nocrud.flows import discover

        chosen = selection.apply(discover(config.flows.path))
        if not chosen:
            raise UsageError("no flows selected: check -f/-k/-m/--crud, or `nocrud list`")
        names, keyword = tuple(f.name for f in chosen), None
    results = json_path or authoring.last_run_path(config.root)  # `nocrud coverage` reads it
    chosen_shard = parse_shard(shard) if shard is not None else shard_from_env()
    # No default history: .nocrud/last-run.json is rewritten by each shard run, so jobs
    # reading it would not share a plan (see nocrud.sharding).
    history = durations
    run_id = run_id_for(os.environ)
    if broker is None and not config.run.keep_failed:
        # The input checked, the reaper's start (half a second) overlaps the imports, the
        # flows' discovery and the run store below; the workflow waits for its ACK before
        # it touches Docker.
        from nocrud.docker.reaper import start_early

        start_early()
    from nocrud import workflow

    options = workflow.UpOptions(
        run_id=run_id,
        names=names,
        keyword=keyword,
        fail_fast=fail_fast,
        keep_failed=config.run.keep_failed,
        junit=junit,
        json=results,
        verbose=verbose,
        shard=chosen_shard,
        durations=history,
        broker=broker,
    )
    out = console()
    selection_shown = {
        "flows": list(selection.names),
        "keyword": selection.keyword or "",
        "tags": selection.tags or "",
        "crud": bool(selection.kinds),
    }
    if chosen_shard is not None:
        selection_shown["shard"] = str(chosen_shard)
    with recording(
        config,
        options,
        record=not no_record,
        report_to=report_to,
        results=results,
        selection=selection_shown,
        say=lambda line: out.print(line, soft_wrap=True),
    ) as (bracket, listener):
        code = workflow.up(config, dataclasses.replace(options, listener=listener), out)
        bracket.exit_code = code
    authoring.record_run(config.root, results, perf=record_perf, say=out.print)
    exit_now(code)


@click.command(name="build", cls=Command)
@click.pass_context
def build(ctx: click.Context) -> None:
    """Build the app image and the pre-migrated database image, only where something changed.

    \b
    Examples:
      nocrud build                   # "app image up to date: ..." when nothing changed
      nocrud -c other/nocrud.yaml build
    """
    from nocrud import prepare
    from nocrud.docker import cleanup

    config = load(ctx)
    out = console()
    engine = prepare.prepare_docker(config, out)
    try:
        images = prepare.build(config, engine, out, cleanup.new_run_id())
    finally:
        engine.close()
    out.print(f"app: {images.app}\ndb:  {images.db}", highlight=False)
    exit_now(EXIT_OK)


@click.command(cls=Command)
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also remove this project's objects of runs still going, here or on other hosts "
    "sharing this daemon.",
)
@click.option(
    "--images", is_flag=True, help="Also remove this project's cached app and database images."
)
@click.option(
    "--all-projects",
    "all_projects",
    is_flag=True,
    help="Reach every nocrud project on this daemon, not only the one of nocrud.yaml "
    "(asks first; --yes to skip the question).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before reaching other projects.")
@click.pass_context
def clean(
    ctx: click.Context, *, everything: bool, images: bool, all_projects: bool, yes: bool
) -> None:
    """Remove what nocrud left: killed runs' objects and environments kept with --keep-failed.

    Only the project of the current nocrud.yaml (its `project:` name) is touched: other
    projects sharing this Docker daemon keep their environments and cached images unless
    --all-projects is given. Runs still going (this host's live processes, or other hosts
    on a shared daemon) are left alone unless --all is given. The pairs kept between runs
    (run.keep_pool) go too, except those a running run holds (as `nocrud pool stop`).

    \b
    Examples:
      nocrud clean
      nocrud clean --all             # everything of this project, running or not
      nocrud clean --images          # also drop this project's cached images
      nocrud clean --all-projects --all --images --yes   # every nocrud object on the daemon
    """
    import sys

    from nocrud.docker import cleanup
    from nocrud.docker.engine import connect
    from nocrud.environment.kept import stop_pools

    project: str | None = None
    config = None
    if all_projects:
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "--all-projects reaches every nocrud project on this Docker daemon: "
                    "add --yes to confirm it without a terminal"
                )
            click.confirm(
                "Remove nocrud objects"
                + (" and cached images" if images else "")
                + " of every project on this Docker daemon?",
                abort=True,
            )
    else:
        config = load(ctx)
        project = config.project

    client = connect()
    try:
        # Kept pools first: their pairs are owned by a live keeper, which the sweep spares.
        pool = stop_pools(client, config.root) if config is not None else (0, 0)
        report = cleanup.sweep(client, kept=True, live=everything, project=project)
        removed_images = cleanup.remove_cached_images(client, project) if images else 0
        if config is not None and config.database.external.url is not None:
            from nocrud.environment.external import sweep_server

            server = sweep_server(config, live=everything, client=client)
        else:
            server = None
    finally:
        client.close()
    scope = f"project {project}" if project else "every project"
    click.echo(
        f"{scope}: removed {report.containers} container(s), {report.networks} network(s)"
        + (f", {removed_images} image tag(s)" if images else "")
    )
    if pool[0] or pool[1]:
        click.echo(
            f"kept pool: removed {pool[0]} pair(s)"
            + (f", left {pool[1]} in use by a running run" if pool[1] else "")
        )
    if report.spared:
        click.echo(
            f"left {report.spared} object(s) of runs still going or of other hosts: "
            "`nocrud clean --all` removes them too"
        )
    if server is not None:
        click.echo(server)
