"""``nocrud serve``: the web console over the run store (:mod:`nocrud.console`).

The composition root of the console: it reads the config (the project, where runs
start, the store's URL and retention from its ``store`` section, ``--store`` on top),
the provisioning strategies the environment offers (so the start form lists exactly
those), decides the token rule (required beyond loopback) and runs the app on uvicorn.
FastAPI and uvicorn are the optional ``console`` extra; without them the command says
how to install them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command
from nocrud.cli._options import load
from nocrud.errors import UsageError

__all__ = ["serve"]


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.option(
    "--token",
    envvar="NOCRUD_SERVE_TOKEN",
    default=None,
    help="Require this token on every request (env NOCRUD_SERVE_TOKEN); "
    "required when --host is not a loopback address.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="The run store, over store.url of nocrud.yaml and NOCRUD_STORE_URL (default: "
    ".nocrud/history.db next to nocrud.yaml), e.g. postgresql://user:password@host/nocrud.",
)
@click.option(
    "--public-url",
    metavar="URL",
    default=None,
    help="The URL runs started here report to (default: http://HOST:PORT).",
)
@click.option(
    "--all-projects",
    "all_projects",
    is_flag=True,
    help="Show the runs of every project in the store, not only this nocrud.yaml's "
    "project (runs are still started for this project only).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    *,
    host: str,
    port: int,
    token: str | None,
    store_url: str | None,
    public_url: str | None,
    all_projects: bool,
) -> None:
    """Serve the web console: run history, live progress, start, cancel and rerun.

    \b
    Examples:
      nocrud serve                                # http://127.0.0.1:8080
      NOCRUD_SERVE_TOKEN=... nocrud serve --host 0.0.0.0 --port 8080
      nocrud serve --store postgresql://nocrud:pw@db/nocrud
      nocrud up --report-to http://127.0.0.1:8080 # a CLI or CI run, live in the console
      nocrud -c other.yaml serve --all-projects   # every project sharing this store
    """
    try:
        import uvicorn

        from nocrud.console.app import create_app
        from nocrud.console.settings import ConsoleSettings, is_loopback
    except ImportError as exc:
        raise UsageError(
            f"nocrud serve needs the console extra ({exc.name} is missing): "
            "pip install 'nocrud[console]'"
        ) from None
    from nocrud.environment import STRATEGIES
    from nocrud.store import StoreError, store_settings

    config = load(ctx, {"store.url": store_url})
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} is reachable from other machines and the console starts runs "
            "(which run code): set a token with --token or NOCRUD_SERVE_TOKEN"
        )
    settings_store = store_settings(config)
    local = "127.0.0.1" if not is_loopback(host) else host
    settings = ConsoleSettings(
        store_url=settings_store.url,
        project=config.project,
        config_path=config.source,
        command=_nocrud_command(),
        public_url=public_url or f"http://{local}:{port}",
        strategies=tuple(STRATEGIES),
        default_parallel=min(config.parallel, 8),
        token=token or "",
        keep_runs=settings_store.keep_runs,
        keep_days=settings_store.keep_days,
        extra_env={"NOCRUD_SERVE_TOKEN": token} if token else {},
        all_projects=all_projects,
    )
    try:
        app = create_app(settings)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    shown = "localhost" if host == "127.0.0.1" else host
    scope = "every project" if all_projects else config.project
    click.echo(f"nocrud console for {scope}: http://{shown}:{port}/  (Ctrl-C stops)")
    click.echo(f"run store: {_masked(settings_store.url)}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        access_log=False,
    )


def _nocrud_command() -> tuple[str, ...]:
    """How this installation runs ``nocrud``: its console script, else this interpreter."""
    script = Path(sys.executable).parent / "nocrud"
    if script.is_file():
        return (str(script),)
    return (sys.executable, "-c", "from nocrud.cli import main; main()")


def _masked(url: str) -> str:
    from nocrud.masking import mask_url

    return mask_url(url) if "://" in url else url


if __name__ == "__main__":  # pragma: no cover
    serve()
