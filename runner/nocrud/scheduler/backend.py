"""Where flows run: the seam between the workflow and whatever executes flows.

The workflow hands a :class:`Backend` the selected flows and a listener and gets a
:class:`~nocrud.scheduler.pool.Schedule` back: one :class:`~nocrud.results.FlowResult`
per flow, in input order. :class:`LocalBackend` runs them on this machine's thread
pool through the executor; a remote backend (workers on other Docker hosts) would
send flow names out and receive results as ``FlowResult.to_dict()`` values, and
plugs in as another entry of :data:`BACKENDS` without touching the workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from nocrud.results import FlowResult
from nocrud.scheduler.pool import F, FlowLike, RunListener, Schedule, Scheduler

F_contra = TypeVar("F_contra", bound=FlowLike, contravariant=True)

__all__ = ["BACKENDS", "Backend", "BackendFactory", "LocalBackend"]


class Backend(Protocol[F_contra]):
    """Runs flows and reports each one to the listener as it finishes."""

    name: str

    def run(self, flows: Sequence[F_contra]) -> Schedule:
        """Run ``flows``; return when every started flow has finished."""
        ...

    def stop(self, reason: str) -> None:
        """Start no new flow (safe from a signal handler); running flows finish."""
        ...


#: How the workflow makes a backend: ``factory(run_one, parallel=, fail_fast=, listener=)``.
BackendFactory = Callable[..., Backend[Any]]


class LocalBackend(Backend[F]):
    """This machine: a :class:`~nocrud.scheduler.pool.Scheduler` of ``parallel`` threads."""

    name = "local"

    def __init__(
        self,
        run_one: Callable[[F, int], FlowResult],
        *,
        parallel: int,
        fail_fast: bool = False,
        listener: RunListener | None = None,
    ) -> None:
        self._scheduler: Scheduler[F] = Scheduler(
            run_one, parallel=parallel, fail_fast=fail_fast, listener=listener
        )

    def run(self, flows: Sequence[F]) -> Schedule:
        return self._scheduler.run(flows)

    def stop(self, reason: str) -> None:
        self._scheduler.stop(reason)


def _celery(*args: Any, **kwargs: Any) -> Backend[Any]:
    """Celery workers on other Docker hosts (imports Celery only when chosen)."""
    from nocrud.scheduler.celery_backend import CeleryBackend

    return CeleryBackend(*args, **kwargs)


#: Backends by name; the workflow uses "local" unless told otherwise.
BACKENDS: dict[str, BackendFactory] = {"local": LocalBackend, "celery": _celery}
