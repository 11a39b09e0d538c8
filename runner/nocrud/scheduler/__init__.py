"""The fourth step of the data path: running flows, in order, on a bounded set of workers.

:mod:`~nocrud.scheduler.backend` is the seam (:class:`Backend`: flows in, results
out) with this machine's thread pool as :class:`LocalBackend`;
:mod:`~nocrud.scheduler.pool` is that pool (ordering, the concurrency cap,
fail-fast, interrupts). Neither knows about Docker: the pool calls a
``run_one(flow, worker)`` and collects :class:`~nocrud.results.FlowResult` values.
"""

from nocrud.scheduler.backend import BACKENDS, Backend, LocalBackend
from nocrud.scheduler.pool import FAIL_FAST_MESSAGE, FlowLike, RunListener, Schedule, Scheduler

__all__ = [
    "BACKENDS",
    "FAIL_FAST_MESSAGE",
    "Backend",
    "FlowLike",
    "LocalBackend",
    "RunListener",
    "Schedule",
    "Scheduler",
]
