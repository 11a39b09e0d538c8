"""The third step of the data path: giving one flow its own database and app.

Everything that decides *how* a flow gets its environment sits behind one seam, the
:class:`Provisioner`: prepared once per run (:meth:`Provisioner.prepare`), then asked
for one environment per flow (:meth:`Provisioner.acquire`, a context manager that
yields the flow's :class:`Target` and tears it down, or hands it back, on exit). The
executor knows only this protocol. Strategies are chosen by name (``run.strategy``)
from :data:`STRATEGIES`, the way pytest-xdist picks a scheduler: adding one is a new
module here and one line in that table, not an edit of the core.

Every strategy keeps the same promises: a flow's database rows and app process are its
own, every Docker object carries the run's labels (so the reaper and the sweep remove
what a killed run left), :meth:`Provisioner.kill_all` unblocks every flow at once on an
interrupt, and a start that fails raises :class:`ProvisionError` with the evidence.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nocrud.config import ConfigError
from nocrud.errors import InfrastructureError

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.docker.engine import Engine
    from nocrud.docker.postgres import DatabaseAddress
    from nocrud.images import BuiltImages

__all__ = [
    "STRATEGIES",
    "MisconfigurationError",
    "PrepareError",
    "ProvisionError",
    "Provisioner",
    "Run",
    "SchemaError",
    "Target",
    "describe_kept",
    "needs_db_image",
    "provisioner_for",
]


class ProvisionError(Exception):
    """The environment did not come up; the message says which part and shows its logs.

    Attributes:
        app_logs: The app's full log when it had started, for the result's app log.
    """

    def __init__(self, message: str, *, app_logs: str = "") -> None:
        super().__init__(message)
        self.app_logs = app_logs


class MisconfigurationError(ProvisionError):
    """The environment came up, but the configuration makes every flow fail the same way.

    The run stops at the first one instead of repeating it for every flow, and exits
    with the usage/config code (for example an ``app.health_path`` the app answers 404).
    """

    #: The stop is the environment's build failing (exit 3), not a config error (exit 2).
    infrastructure = False


class SchemaError(MisconfigurationError):
    """A flow's schema step (the migrate command, the dump, the seed) failed.

    Every flow would fail the same way, so the run stops at the first one, as for a
    :class:`MisconfigurationError`, but with exit code 3, as the same failure in an
    image build does; its output is printed once, at the end of the run.
    """

    infrastructure = True


class PrepareError(InfrastructureError):
    """What a run's flows share (a template server, the user's server) could not be made.

    Raised by :meth:`Provisioner.prepare`; it stops the run with exit code 3, as a
    failed image build does.
    """


@dataclass(frozen=True)
class Run:
    """What a provisioner is prepared with, once per run.

    Attributes:
        config: The validated configuration.
        run_id: This run's id (in every object's labels and names).
        engine: The run's one Docker client and how this process reaches containers.
        images: The app and pre-migrated database images the build step made.
        say: Prints one line for the user.
        keep_failed: Environments of flows that did not pass are kept for inspection.
    """

    config: Config
    run_id: str
    engine: Engine
    images: BuiltImages
    say: Callable[[str], None]
    keep_failed: bool = False


class Target(Protocol):
    """One flow's environment, as the executor and the flow see it."""

    @property
    def base_url(self) -> str:
        """Root URL of the flow's own app, reachable from this process."""
        ...

    @property
    def database(self) -> DatabaseAddress:
        """The flow's own database, reachable from this process, with its own password."""
        ...

    @property
    def killed(self) -> bool:
        """:meth:`kill` was called (interrupt or timeout)."""
        ...

    def app_logs(self, tail: int = ...) -> str:
        """The app's last log lines (kept at teardown, so they outlive the containers)."""
        ...

    def casualties(self) -> list[str]:
        """Parts of the environment that died while the flow ran, as sentences."""
        ...

    def kill(self) -> None:
        """Tear down now, from any thread: a flow stuck in a request fails fast."""
        ...

    def keep(self) -> str:
        """Keep this environment after the flow (``--keep-failed``); return how to reach it."""
        ...


class Provisioner(Protocol):
    """A provisioning strategy: how flows get their database and app.

    The workflow calls :meth:`prepare` once in the main thread, then the executor calls
    :meth:`acquire` from worker threads, many at once; :meth:`kill_all` may come from a
    signal handler's helper thread at any time, and :meth:`close` once at the end.
    """

    name: str

    def prepare(self, run: Run) -> None:
        """Make what every flow will share (servers, templates, warm pairs)."""
        ...

    def acquire(self, flow: str, *, fresh: bool = False) -> AbstractContextManager[Target]:
        """One flow's environment: ready on enter, torn down (or kept) on exit.

        ``fresh`` (the flow's ``@flow(fresh=True)``) asks for an environment that has
        never served another flow; strategies whose environments are new for every flow
        anyway ignore it, and ``pool`` rebuilds or starts a pair for it.

        Raises:
            ProvisionError: It did not come up; the message carries the evidence.
        """
        ...

    def kill_all(self) -> int:
        """Tear down every environment now (interrupt path). Returns how many there were."""
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` made. Idempotent."""
        ...


def describe_kept(
    base_url: str,
    health_path: str,
    database: DatabaseAddress,
    containers: str,
    *more: str,
) -> str:
    """How to reach an environment kept with ``--keep-failed``: lines that work as printed.

    The password is printed on its own (reports mask passwords in URLs and ``NAME=value``
    pairs, so a ``psql`` URL with it would not work as printed); ``psql`` asks for it.
    """
    db = database
    return "\n".join(
        [
            "kept for inspection (remove with `nocrud clean`):",
            f"  app:        {base_url}",
            f"              curl -i {base_url}{health_path}",
            f"  database:   host {db.host} port {db.port} name {db.dbname} user {db.user} "
            f"password {db.password}",
            f"              psql -h {db.host} -p {db.port} -U {db.user} {db.dbname}"
            "   (it asks for the password above)",
            *(f"              {line}" for line in more if line),
            f"  containers: {containers}",
        ]
    )


#: ``run.strategy`` -> ``module:class`` of its provisioner, imported only when chosen.
STRATEGIES: dict[str, str] = {
    "image": "nocrud.environment.image:ImageProvisioner",
    "pool": "nocrud.environment.pool_provisioner:PoolProvisioner",
    "template": "nocrud.environment.template:TemplateProvisioner",
    "migrate": "nocrud.environment.migrate:MigrateProvisioner",
    "external": "nocrud.environment.external:ExternalProvisioner",
}


def needs_db_image(provisioner: Provisioner) -> bool:
    """Whether the build step must make the pre-migrated database image for ``provisioner``.

    A provisioner that makes the schema itself (``migrate``, ``external``) says so with
    a class attribute ``needs_db_image = False``; without one, the image is built.
    """
    return bool(getattr(provisioner, "needs_db_image", True))


def provisioner_for(config: Config) -> Provisioner:
    """The provisioner ``run.strategy`` names, or a config error listing those there are."""
    name = config.run.strategy
    target = STRATEGIES.get(name)
    if target is None:
        available = ", ".join(repr(s) for s in STRATEGIES)
        raise ConfigError(
            f"{config.source}: run.strategy: {name!r} is not available in this version of "
            f"nocrud: use {available} (image: each flow gets a PostgreSQL container from "
            "the migrated image and its own app container)"
        )
    module, _, attribute = target.partition(":")
    factory: Callable[[], Provisioner] = getattr(importlib.import_module(module), attribute)
    return factory()
