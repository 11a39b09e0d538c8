"""``nocrud worker``: run flows sent by ``nocrud up --broker`` on this machine's Docker host.

A thin command over :func:`nocrud.worker.service.serve`; Celery and Docker are imported
only when it runs.
"""

from __future__ import annotations

import socket

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command, exit_now
from nocrud.cli._options import console, load

__all__ = ["worker"]


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option(
    "--broker",
    required=True,
    envvar="NOCRUD_BROKER",
    metavar="URL",
    help="Redis broker, redis://HOST:PORT/DB or unix:///SOCKET?db=N (env NOCRUD_BROKER).",
)
@click.option(
    "-j",
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Flows run at once on this host (default: run.parallel in nocrud.yaml).",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="This worker's name in reports (default: nocrud@HOSTNAME); unique per broker.",
)
@click.option(
    "--visibility-timeout",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds after which the broker gives a task that a lost worker had taken to "
    "another worker (a flow it was running goes sooner, when its lease lapses); "
    "must exceed the longest a flow may take.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    broker: str,
    concurrency: int | None,
    name: str | None,
    visibility_timeout: float,
) -> None:
    """Run flows sent by `nocrud up --broker` on this host's Docker, as a Celery worker.

    Start one per Docker host, in a checkout of the same commit as the coordinator's.

    \b
    Examples:
      nocrud worker --broker redis://ci-redis:6379/0 -j 4
      NOCRUD_BROKER=redis://ci-redis:6379/0 nocrud worker --name worker-2
    """
    from nocrud.scheduler.celery_backend import broker_urls
    from nocrud.worker.service import WorkerOptions, serve

    broker_urls(broker)  # a malformed URL stops here, before Docker
    config = load(ctx, {"run.parallel": concurrency})
    options = WorkerOptions(
        broker=broker,
        name=name or f"nocrud@{socket.gethostname()}",
        concurrency=config.parallel,
        visibility_timeout=visibility_timeout,
    )
    exit_now(serve(config, options, console()))
