"""``nocrud images export`` / ``import``: a worker's images without a registry.

Export on a machine that has (or can build) the images, copy the file, import it on
each worker's Docker host. Workers also build missing images from their own checkout;
importing saves them that build (and needs no base images or network on that host).
"""

from __future__ import annotations

from pathlib import Path

import click

from nocrud.cli._guard import Command, Group, exit_now
from nocrud.cli._options import console, load
from nocrud.errors import EXIT_OK

__all__ = ["images"]

#: Seconds a daemon may take to load an archive (a busy one writes a GiB slowly).
LOAD_TIMEOUT = 3600.0


@click.group(cls=Group)
def images() -> None:
    """Move the project's images between Docker hosts without a registry (save / load)."""


@images.command(name="export", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_command(ctx: click.Context, file: Path) -> None:
    """Write the app, database, database base and reaper images into FILE (one archive).

    Builds the app and database images first when they are missing.

    \b
    Examples:
      nocrud images export images.tar
      scp images.tar worker-2: && ssh worker-2 nocrud images import images.tar
    """
    from nocrud import prepare
    from nocrud.docker import cleanup
    from nocrud.docker.reaper import REAPER_IMAGE
    from nocrud.docker.resources import image_id
    from nocrud.worker.images import export_images

    config = load(ctx)
    out = console()
    engine = prepare.prepare_docker(config, out)
    try:
        built = prepare.build(config, engine, out, cleanup.new_run_id())
        refs = [built.app, built.db, config.database.image]
        if image_id(engine.client, REAPER_IMAGE):
            refs.append(REAPER_IMAGE)
        size = export_images(engine.client, refs, file)
    finally:
        engine.close()
    out.print(f"wrote {len(refs)} image(s) to {file} ({size / 2**20:.0f} MiB): " + ", ".join(refs))
    exit_now(EXIT_OK)


@images.command(name="import", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--wait",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Wait up to SECONDS for the Docker daemon to answer (a CI service starting up), "
    "then fail (exit 3) saying why it did not.",
)
def import_command(file: Path, wait: float) -> None:
    """Load the images of FILE (from `nocrud images export`) that this Docker host lacks.

    \b
    Examples:
      nocrud images import images.tar
      DOCKER_HOST=tcp://worker-2:2375 nocrud images import images.tar
      nocrud images import --wait 30 .cache/nocrud-images.tar   # a CI job's cache, first
    """
    from nocrud.docker.engine import connect
    from nocrud.worker.images import import_images

    # A daemon writes a GiB of layers slowly.
    client = connect(timeout=LOAD_TIMEOUT, wait=wait)
    try:
        report = import_images(client, file)
    finally:
        client.close()
    if report.loaded:
        click.echo(f"loaded {len(report.loaded)} image(s): {', '.join(report.loaded)}")
    if report.present:
        click.echo(f"already present: {', '.join(report.present)}")
    exit_now(EXIT_OK)
