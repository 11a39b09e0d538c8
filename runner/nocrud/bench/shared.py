"""The ``shared`` baseline of ``nocrud bench``: one environment serves every flow.

This is what a team runs without nocrud: one app and one database for the whole suite,
nothing reset between tests. It is the price floor of any isolation, not a strategy a
run may choose: flows see each other's rows, so isolation flows may fail under it and
only its time counts. :class:`SharedProvisioner` starts one environment from the
``image`` strategy (the same images, the same readiness checks) when it is prepared,
hands that one environment to every flow, and removes it when the run closes. Its start
is counted in ``prepare``, as a template server's is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from nocrud.environment import PrepareError, ProvisionError, Run, Target
from nocrud.environment.image import ImageProvisioner

__all__ = ["SHARED", "SharedProvisioner"]

#: The shared baseline's name in ``--strategies`` and the reports.
SHARED = "shared"


class SharedProvisioner:
    """One environment for the whole run: every :meth:`acquire` yields the same one."""

    name = SHARED

    def __init__(self) -> None:
        self._inner = ImageProvisioner()
        self._stack = contextlib.ExitStack()
        self._target: Target | None = None

    def prepare(self, run: Run) -> None:
        self._inner.prepare(run)
        try:
            self._target = self._stack.enter_context(self._inner.acquire("shared"))
        except ProvisionError as exc:
            self.close()
            raise PrepareError(f"the shared environment did not start: {exc}") from exc

    @contextlib.contextmanager
    def _lend(self) -> Iterator[Target]:
        if self._target is None:
            raise RuntimeError("SharedProvisioner.acquire() before prepare()")
        # Nothing is reset or torn down between flows: that is the baseline.
        yield self._target

    def acquire(self, flow: str, *, fresh: bool = False) -> contextlib.AbstractContextManager[Any]:
        return self._lend()

    def kill_all(self) -> int:
        return self._inner.kill_all()

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._target = None
            self._inner.close()
