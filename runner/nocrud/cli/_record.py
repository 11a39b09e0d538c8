"""How ``nocrud up`` is recorded: into the run store and/or streamed to a console.

:func:`recording` opens the recorders ``--no-record`` and ``--report-to`` ask for,
brackets the run (started with its selected flows, finished with its exit code and
results) and hands the workflow the listener that hears every flow in between.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.scheduler import RunListener
    from nocrud.store import Recording
    from nocrud.workflow import UpOptions

__all__ = ["recording"]


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
    from nocrud import __version__, workflow
    from nocrud.store import GitInfo, Recording, RunStart, git_info, recorder_for

    recorder = recorder_for(
        config.root, record=record, report_to=report_to, say=say, env=os.environ
    )
    names = tuple(f.name for f in workflow.collect(config, options)) if recorder else ()
    start = RunStart(
        project=config.project,
        flow_names=names,
        parallel=config.parallel,
        strategy=str(config.run.strategy),
        nocrud_run_id="",
        nocrud_version=__version__,
        selection=selection,
        git=git_info(config.root) if recorder else GitInfo(),
    )
    with Recording(recorder, start, results) as bracket:
        yield bracket, recorder
