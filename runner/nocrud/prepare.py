"""Every front end's set-up and teardown: Docker, images, the prepared strategy.

``nocrud up``, ``fuzz``, ``bench``, ``watch``, the pytest plugin and a Celery worker all
set up through :func:`environments` (or its two halves, :func:`docker_session` and
:func:`prepared_provisioner`), never a copy of it: connect to Docker and start the
reaper, build what changed (cached by content hash), prepare the configured strategy,
and on exit close it, remove what the run left and disconnect. :func:`build` is
``nocrud build``. The signal handling every blocking step shares lives here too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from rich.console import Console

from nocrud.config import Config, ConfigError
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, open_engine
from nocrud.docker.reaper import start_reaper
from nocrud.environment import Provisioner, Run, needs_db_image, provisioner_for
from nocrud.images import BuiltImages, build_images
from nocrud.images.own import ensure_own_image

__all__ = [
    "Prepared",
    "build",
    "docker_session",
    "environments",
    "handle_signals",
    "interrupt_on_signals",
    "prepare_docker",
    "prepared_provisioner",
]


def prepare_docker(config: Config, console: Console, *, reaper: bool = True) -> Engine:
    """Connect to Docker, detect how to reach containers, remove what killed runs left behind.

    Also starts the reaper (once, before any worker thread), which removes this
    process's containers and networks if it is killed.
    """
    try:
        engine = open_engine(parallel=config.parallel)
    except ValueError as exc:  # NOCRUD_CONNECTION_MODE and friends
        raise ConfigError(str(exc)) from exc
    if engine.connection.mode != "local":
        console.print(f"docker: {engine.connection.describe()}", soft_wrap=True)
    swept = cleanup.sweep(engine.client)
    start_reaper(
        engine.client,
        say=lambda line: console.print(line, soft_wrap=True),
        disabled=not reaper,
        connection=engine.connection,
        build=lambda ref: ensure_own_image(
            engine.client, ref, say=lambda line: console.print(line, soft_wrap=True)
        ),
    )
    if swept.total:
        console.print(
            f"removed {swept.containers} container(s) and {swept.networks} network(s) "
            "left by earlier runs that are no longer running"
        )
    return engine


def build(
    config: Config, engine: Engine, console: Console, run_id: str, *, db_image: bool = True
) -> BuiltImages:
    """The build step: app image, then the pre-migrated database image, each only when changed.

    ``db_image=False`` skips the database image, for strategies that make the schema
    themselves (see :func:`nocrud.environment.needs_db_image`).
    """
    with interrupt_on_signals():
        return build_images(
            engine.client,
            config,
            say=lambda line: console.print(line, highlight=False, soft_wrap=True),
            run_id=run_id,
            connection=engine.connection,
            db_image=db_image,
        )


@dataclass
class Prepared:
    """A run's Docker connection, images and prepared provisioner (see :func:`environments`).

    Attributes:
        config: The validated configuration.
        run_id: The run's id (every Docker object's ``nocrud.run`` label).
        engine: The run's one Docker client.
        images: What the build step made (or found).
        provisioner: The strategy, prepared: :meth:`~nocrud.environment.Provisioner.acquire`
            gives each flow its environment.
        prepare_started: ``time.monotonic()`` when :meth:`Provisioner.prepare` was called.
        prepared_at: When it returned.
        closed_at: When :meth:`Provisioner.close` returned (0 until then).
    """

    config: Config
    run_id: str
    engine: Engine
    images: BuiltImages
    provisioner: Provisioner
    prepare_started: float = 0.0
    prepared_at: float = 0.0
    closed_at: float = 0.0


@contextlib.contextmanager
def docker_session(
    config: Config, console: Console, *, run_id: str, keep_failed: bool = False
) -> Iterator[Engine]:
    """:func:`prepare_docker` for one run; on exit, remove what the run left, then disconnect.

    A ``keep_failed`` run starts no reaper (kept environments must outlive this
    process) and removes nothing at the end.
    """
    engine = prepare_docker(config, console, reaper=not keep_failed)
    try:
        yield engine
    finally:
        if not keep_failed:
            # The backstop: whatever a flow's own teardown missed goes now.
            with contextlib.suppress(Exception):
                cleanup.remove_run(engine.client, run_id)
        engine.close()


@contextlib.contextmanager
def prepared_provisioner(
    config: Config,
    engine: Engine,
    console: Console,
    provisioner: Provisioner,
    *,
    run_id: str,
    keep_failed: bool = False,
    say: Callable[[str], None] | None = None,
    build_lock: contextlib.AbstractContextManager[Any] | None = None,
    images: BuiltImages | None = None,
) -> Iterator[Prepared]:
    """Build what changed, prepare ``provisioner`` on those images; close it on exit.

    Args:
        say: Prints one line for the user (the provisioner's); default: ``console``.
        build_lock: Held around the build (the pytest plugin's, shared by xdist workers).
        images: Images the caller has just built (``watch`` after a change): no build here.
    """
    if images is None:
        with build_lock if build_lock is not None else contextlib.nullcontext():
            images = build(config, engine, console, run_id, db_image=needs_db_image(provisioner))
    run = Run(
        config=config,
        run_id=run_id,
        engine=engine,
        images=images,
        say=say or (lambda line: console.print(line, highlight=False, soft_wrap=True)),
        keep_failed=keep_failed,
    )
    prepared = Prepared(config, run_id, engine, images, provisioner)
    prepared.prepare_started = time.monotonic()
    try:
        provisioner.prepare(run)
    except BaseException:
        with contextlib.suppress(Exception):  # what a half-done prepare made
            provisioner.close()
        raise
    prepared.prepared_at = time.monotonic()
    try:
        yield prepared
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM in watch) reached here, not the scheduler: stop what is starting
        # or resetting now, so close() does not wait for a boot nobody will use.
        with contextlib.suppress(Exception):
            provisioner.kill_all()
        raise
    finally:
        provisioner.close()
        prepared.closed_at = time.monotonic()


@contextlib.contextmanager
def environments(
    config: Config,
    console: Console,
    *,
    provisioner: Provisioner | None = None,
    run_id: str = "",
    keep_failed: bool = False,
    say: Callable[[str], None] | None = None,
    build_lock: contextlib.AbstractContextManager[Any] | None = None,
) -> Iterator[Prepared]:
    """Every front end's set-up and teardown: Docker, images, the prepared strategy.

    ``nocrud up``, ``fuzz``, ``bench`` and the pytest plugin run their flows inside
    this block: :func:`docker_session` (connect, sweep, reaper), then
    :func:`prepared_provisioner` (build by content hash, prepare); on exit the
    provisioner is closed, the run's leftovers removed and Docker disconnected.

    Args:
        provisioner: The strategy to prepare; default: ``run.strategy``'s.
        run_id: The run's id; empty: a new one.
        keep_failed: Keep failed flows' environments (no reaper, nothing removed at the end).
    """
    provisioner = provisioner if provisioner is not None else provisioner_for(config)
    run_id = run_id or cleanup.new_run_id()
    with (
        docker_session(config, console, run_id=run_id, keep_failed=keep_failed) as engine,
        prepared_provisioner(
            config,
            engine,
            console,
            provisioner,
            run_id=run_id,
            keep_failed=keep_failed,
            say=say,
            build_lock=build_lock,
        ) as prepared,
    ):
        yield prepared


@contextlib.contextmanager
def handle_signals(handler: Any) -> Iterator[None]:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); restore the old ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """During blocking steps, turn SIGTERM into the same unwinding as Ctrl-C."""

    def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with handle_signals(raise_interrupt):
        yield
