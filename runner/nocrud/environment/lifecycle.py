"""The context-manager contract every provisioning strategy's environment keeps, written once.

``__enter__`` starts the environment; when starting fails it tears down what had
started, and a :class:`~nocrud.environment.ProvisionError` leaves carrying the app's
log lines saved at teardown. ``__exit__`` always tears down. Subclasses provide
:meth:`start`, :meth:`teardown` and the ``_logs_at_teardown`` that teardown fills.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from nocrud.environment import ProvisionError

__all__ = ["EnvironmentLifecycle"]


class EnvironmentLifecycle:
    """Start on enter (cleaning up a half-started environment), tear down on exit."""

    _logs_at_teardown: str

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
