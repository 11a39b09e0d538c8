"""The context-manager contract every provisioning strategy's environment keeps, written once.

``__enter__`` starts the environment; when starting fails it tears down what had
started, and a :class:`~nocrud.environment.ProvisionError` leaves carrying the app's
log lines saved at teardown. ``__exit__`` always tears down. :meth:`kill` tears down
from another thread. The part of the :class:`~nocrud.environment.Target` protocol every
environment answers the same way (``base_url``, ``database``, ``killed``) is here too.
Subclasses provide :meth:`start`, :meth:`teardown`, the ``_logs_at_teardown`` that
teardown fills, and ``_base_url``, ``_database`` and ``_killed``, which start fills.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from nocrud.docker.postgres import DatabaseAddress
from nocrud.environment import ProvisionError

__all__ = ["EnvironmentLifecycle"]


class EnvironmentLifecycle:
    """Start on enter (cleaning up a half-started environment), tear down on exit."""

    _logs_at_teardown: str
    _base_url: str
    _database: DatabaseAddress | None
    _killed: bool

    def start(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException as exc:
            self.teardown()  # keeps the app's log lines, which the error then carries
            if isinstance(exc, ProvisionError) and not exc.app_logs:
                exc.app_logs = self._logs_at_teardown
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def kill(self) -> None:
        """Tear down from another thread (interrupt, timeout): the flow's requests fail fast."""
        self._killed = True
        self.teardown()

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def database(self) -> DatabaseAddress:
        if self._database is None:
            raise RuntimeError("the environment has not started")
        return self._database

    @property
    def killed(self) -> bool:
        return self._killed
