"""The fourth step of the data path: running flows, in order, on a bounded pool of workers.

:mod:`~nocrud.scheduler.pool` is the thread pool (ordering, the concurrency cap,
fail-fast, interrupts). It knows nothing about Docker: it calls a
``run_one(flow, worker)`` and collects :class:`~nocrud.results.FlowResult` values.
"""

from nocrud.scheduler.pool import FAIL_FAST_MESSAGE, FlowLike, RunListener, Schedule, Scheduler

__all__ = ["FAIL_FAST_MESSAGE", "FlowLike", "RunListener", "Schedule", "Scheduler"]
