"""The context-manager contract every provisioning strategy's environment keeps, written once.

``__enter__`` starts the environment; when starting fails it tears down what had
started, and a :class:`~nocrud.environment.ProvisionError` leaves carrying the app's
log lines saved at teardown. ``__exit__`` always tears down. :meth:`kill` tears down
from another thread. The part of the :class:`~nocrud.environment.Target` protocol every
environment answers the same way (``base_url``, ``database``, ``killed``, ``kept``) is
here too, with the rules every environment's teardown follows: it runs once, leaves a
kept environment alone, and saves the app's last log lines first. Subclasses provide
:meth:`start` (which fills ``_base_url`` and ``_database``) and :meth:`teardown`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from nocrud.docker import cleanup
from nocrud.docker.postgres import DatabaseAddress
from nocrud.docker.resources import Container
from nocrud.environment import ProvisionError
from nocrud.errors import one_line

__all__ = ["APP_LOG_LINES", "EnvironmentLifecycle", "kill_in_parallel"]

#: How many of the app's last log lines an environment gives (and saves at teardown).
APP_LOG_LINES = 200


class EnvironmentLifecycle:
    """Start on enter (cleaning up a half-started environment), tear down on exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._torn_down = False
        self._killed = False
        self._kept = False
        self._base_url = ""
        self._database: DatabaseAddress | None = None
        #: The app's last log lines, saved by teardown: they outlive the containers.
        self._logs_at_teardown = ""

    def start(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException as exc:
            try:
                self.teardown()  # keeps the app's log lines, which the error then carries
            except Exception as cleanup:  # noqa: BLE001 - the start's failure is the one to tell
                exc.add_note(f"tearing down what had started failed too: {one_line(cleanup)}")
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

    @property
    def kept(self) -> bool:
        """``keep`` was called: the environment outlives the run."""
        return self._kept

    @property
    def torn_down(self) -> bool:
        return self._torn_down

    def check_not_killed(self) -> None:
        """Raise ProvisionError when the environment was torn down while starting."""
        if self._killed:
            raise ProvisionError(
                "environment torn down while starting (run interrupted or timed out)"
            )

    def _claim_teardown(self) -> bool:
        """Whether this caller removes the environment: the first one, unless it is kept."""
        with self._lock:
            if self._torn_down:
                return False
            self._torn_down = True
        return not self._kept

    def _remove(self, removals: Sequence[Callable[[], None]]) -> None:
        """Save the app's last log lines, then run every removal; raise the first failure."""
        with contextlib.suppress(Exception):
            self._logs_at_teardown = self.app_logs()
        errors = cleanup.remove_all(list(removals))
        if errors:
            raise errors[0]

    def app_logs(self, tail: int = APP_LOG_LINES) -> str:
        """The app's last log lines (stdout and stderr), or what was saved at teardown."""
        raise NotImplementedError

    def _app_logs(self, app: Container | None, tail: int, since: float | None = None) -> str:
        """``app``'s last log lines, or those saved at teardown once it is gone."""
        if app is None or not app.created:
            return self._logs_at_teardown
        logs = app.logs(tail, since=since)
        return self._logs_at_teardown if logs.startswith("(no logs") else logs


def kill_in_parallel(environments: Sequence[EnvironmentLifecycle]) -> None:
    """Kill environments side by side on the interrupt path, waiting up to 10 s for each.

    A failure is passed over: the run's label sweep removes what a kill misses.
    """

    def kill_quietly(environment: EnvironmentLifecycle) -> None:
        with contextlib.suppress(Exception):
            environment.kill()

    threads = [threading.Thread(target=kill_quietly, args=(e,), daemon=True) for e in environments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
