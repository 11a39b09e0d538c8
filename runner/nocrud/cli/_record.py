"""How ``nocrud up`` is recorded: into the run store and/or streamed to a console.

:func:`recording` opens the recorders ``--no-record`` and ``--report-to`` ask for,
brackets the run (started with its selected flows, finished with its exit code and
results) and hands the workflow the listener that hears every flow in between. When
the console asks the run to stop (its Cancel button), :class:`ConsoleCancel` stops it
the way Ctrl-C does, so the one interrupt path tears its environments down.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.scheduler import RunListener
    from nocrud.store import Recorder, Recording
    from nocrud.workflow import UpOptions

__all__ = ["ConsoleCancel", "recording"]


class ConsoleCancel:
    """Stops this process like Ctrl-C when the console asks; called from a recorder's thread.

    SIGINT is what the workflow already turns into "stop scheduling, tear down, exit
    130" (and what Python turns into KeyboardInterrupt before the flows start). A
    process that was started with SIGINT ignored (a background job of a script) gets
    it once the workflow's own handler is in place.
    """

    def __init__(self, say: Callable[[str], None], *, poll: float = 0.2) -> None:
        self._say = say
        self._poll = poll
        self.requested = threading.Event()
        self.over = threading.Event()

    def __call__(self, who: str) -> None:
        if self.requested.is_set() or self.over.is_set():
            return
        self.requested.set()
        self._say(f"\ncancelled by {who}: stopping like Ctrl-C")
        threading.Thread(target=self._interrupt, name="nocrud-cancel", daemon=True).start()

    def _interrupt(self) -> None:
        while signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            if self.over.is_set():
                return
            time.sleep(self._poll)
        if not self.over.is_set():  # a run that has just ended is left to end
            os.kill(os.getpid(), signal.SIGINT)


@contextmanager
def recording(
    config: Config,
    options: UpOptions,
    *,
    record: bool,
    report_to: str | None,
    results: Path,
    selection: dict[str, Any],
    say: Callable[[str], None],
) -> Iterator[tuple[Recording, RunListener | None]]:
    """Record the run of ``options``; yields the bracket (set its ``exit_code``) and a listener."""
    from nocrud import __version__
    from nocrud.store import InBackground, Recording, RunStart

    cancel = ConsoleCancel(say)

    def make() -> Recorder | None:
        from nocrud.store import recorder_for, store_settings

        return recorder_for(
            store_settings(config) if record else None,
            report_to=report_to,
            say=say,
            env=os.environ,
            on_cancel=cancel,
        )

    def with_git(start: RunStart) -> RunStart:
        from nocrud.store import git_info

        return dataclasses.replace(start, git=git_info(config.root))

    # The store opens (SQLAlchemy's import, a migration check) on the recorder's thread
    # while this one gets the run ready; flows only queue their events for it.
    recorder = InBackground(make, with_git) if record or report_to else None
    names = _flow_names(config, options) if recorder else ()
    start = RunStart(
        project=config.project,
        flow_names=names,
        parallel=config.parallel,
        strategy=str(config.run.strategy),
        nocrud_run_id=options.run_id,
        nocrud_version=__version__,
        selection=selection,
    )
    try:
        with Recording(recorder, start, results, cancel.requested) as bracket:
            yield bracket, recorder
    finally:
        cancel.over.set()


def _flow_names(config: Config, options: UpOptions) -> tuple[str, ...]:
    """The flows this run will run: the selection, and of a CI shard only its part."""
    from nocrud import workflow
    from nocrud.sharding import plan_of

    flows = workflow.collect(config, options)
    if options.shard is not None:  # the same split the workflow makes, from the same files
        flows = plan_of(flows, options.shard, options.durations)[0]
    return tuple(f.name for f in flows)
