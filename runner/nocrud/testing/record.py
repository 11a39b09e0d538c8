"""How a pytest run that used nocrud's fixtures is recorded, like a ``nocrud up`` run.

:class:`PytestRecording` lives in the process that reports (pytest itself, or the
pytest-xdist controller that hears every worker's reports). It starts a run in the run
store (and/or streams it to a console with ``--nocrud-report-to``) when the first report
of a test that used ``nocrud_env`` arrives, records each such test as one flow of kind
``pytest`` when its teardown is reported, and finishes the run with pytest's exit status.
A pytest run that never used the fixtures is never recorded. Recording goes through the
same recorders as ``nocrud up`` (:func:`nocrud.store.recorder_for`); a store that cannot
be opened is one warning, never a failed test run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nocrud.results import FlowResult, Status
    from nocrud.store import Recorder
    from nocrud.testing.session import Settings

__all__ = ["NOCRUD_REPORT", "PytestRecording", "exit_code_for", "selection_of"]

#: The attribute a test report carries when its test used ``nocrud_env``: a dict of basic
#: types (pytest-xdist sends a report's extra attributes from worker to controller).
NOCRUD_REPORT = "nocrud"

#: pytest's exit status -> nocrud's exit code (runner/nocrud/errors.py): tests failed is 1,
#: Ctrl-C is 130, a usage or internal error is 2.
_EXIT_CODES = {0: 0, 1: 1, 2: 130, 5: 0}


def exit_code_for(status: int) -> int:
    """nocrud's exit code for pytest's exit status (``pytest.ExitCode``)."""
    return _EXIT_CODES.get(int(status), 2)


@dataclass
class _Phases:
    """One test's reports so far (setup, call, teardown)."""

    worker: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)


class PytestRecording:
    """Records one pytest run's nocrud tests in the run store and/or a console.

    Args:
        settings: The plugin's settings (which nocrud.yaml; its store section decides where).
        record: False with ``--nocrud-no-record``.
        report_to: ``--nocrud-report-to``: a console's URL, or None.
        parallel: How many processes run tests (pytest-xdist's workers, else 1).
        selection: What the command line selected, kept with the run.
        say: Prints one line for the user.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        record: bool,
        report_to: str | None,
        parallel: int,
        selection: dict[str, Any],
        say: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._record = record
        self._report_to = report_to
        self._parallel = parallel
        self._selection = selection
        self._say = say
        self._recorder: Recorder | None = None
        self._started = False
        self._t0 = time.time()
        self._project = ""
        self._run_id = ""
        self._tests: dict[str, _Phases] = {}
        self._results: list[FlowResult] = []

    @property
    def run_id(self) -> str:
        """The run's id (empty until the first nocrud test was reported)."""
        return self._run_id

    def report(self, report: Any) -> None:
        """Hear one test report (``pytest_runtest_logreport``); only nocrud tests count."""
        marks = getattr(report, NOCRUD_REPORT, None)
        if not isinstance(marks, dict):
            return
        if not self._started:
            self._start()
        phases = self._tests.setdefault(report.nodeid, _Phases(worker=int(marks.get("worker", 0))))
        if report.when == "setup" and report.passed and self._recorder is not None:
            self._recorder.flow_started(report.nodeid, phases.worker)
        phases.durations[report.when] = float(report.duration)
        phases.outcomes[report.when] = str(report.outcome)
        if not report.passed:
            phases.texts[report.when] = str(report.longreprtext)
            crash = getattr(report.longrepr, "reprcrash", None)
            message = str(getattr(crash, "message", "") or "")
            phases.messages[report.when] = message or _last_line(phases.texts[report.when])
        for name, text in report.sections:
            if name.startswith("nocrud "):
                phases.sections[name] = text
        if report.when == "teardown":
            self._finished(report.nodeid, self._tests.pop(report.nodeid))

    def finish(self, exit_status: int) -> None:
        """Finish the run with pytest's exit status (``pytest_sessionfinish``)."""
        if self._recorder is None:
            return
        from nocrud import __version__
        from nocrud.results import RunResult

        for nodeid, phases in self._tests.items():  # interrupted before their teardown
            self._finished(nodeid, phases)
        self._tests.clear()
        code = exit_code_for(exit_status)
        result = RunResult(
            run_id=self._run_id,
            project=self._project,
            flows=tuple(self._results),
            started_at=self._t0,
            wall_time=time.time() - self._t0,
            parallel=self._parallel,
            interrupted=code == 130,
            nocrud_version=__version__,
        )
        recorder, self._recorder = self._recorder, None
        try:
            recorder.run_finished(result, code, "interrupted" if code == 130 else "")
        finally:
            recorder.close()

    def _start(self) -> None:
        from nocrud import __version__
        from nocrud.docker.cleanup import new_run_id
        from nocrud.errors import NocrudError
        from nocrud.store import InBackground, RunStart, git_info, recorder_for, store_settings
        from nocrud.testing.session import load

        self._started = True
        try:
            config = load(self._settings)
            self._run_id = new_run_id()
        except NocrudError as exc:  # the tests' own setup errors say this in full
            self._say(f"warning: this run is not recorded: {exc}")
            return
        self._project = config.project
        if not self._record and not self._report_to:
            return
        settings = store_settings(config) if self._record else None
        # Opened, fed and closed on a thread of its own, as `nocrud up` records: pytest (or
        # xdist's controller, which hands the workers their tests) never waits for the store.
        self._recorder = InBackground(
            lambda: recorder_for(
                settings, report_to=self._report_to, say=self._say, env=os.environ
            ),
            lambda start: replace(start, git=git_info(config.root)),
        )
        self._recorder.run_started(
            RunStart(
                project=config.project,
                flow_names=(),
                parallel=self._parallel,
                strategy=str(config.run.strategy),
                nocrud_run_id=self._run_id,
                nocrud_version=__version__,
                selection=self._selection,
            )
        )

    def _finished(self, nodeid: str, phases: _Phases) -> None:
        from nocrud.results import FlowResult, Timings

        status, message = _outcome(phases)
        result = FlowResult(
            name=nodeid,
            status=status,
            message=message,
            traceback="\n".join(phases.texts.values()),
            timings=Timings(
                provision=phases.durations.get("setup", 0.0),
                run=phases.durations.get("call", 0.0),
                teardown=phases.durations.get("teardown", 0.0),
            ),
            app_logs=phases.sections.get("nocrud app log", ""),
            output=_output(phases.sections),
            kind="pytest",
            worker=phases.worker,
        )
        self._results.append(result)
        if self._recorder is not None:
            self._recorder.flow_finished(result)


def _outcome(phases: _Phases) -> tuple[Status, str]:
    """A test's one status, as pytest counts it: a broken setup or teardown is an ERROR."""
    from nocrud.results import Status

    outcomes = phases.outcomes
    for when, status in (("setup", Status.ERROR), ("call", Status.FAILED)):
        if outcomes.get(when) == "failed":
            return status, phases.messages.get(when, "")
        if outcomes.get(when) == "skipped":
            return Status.SKIPPED, phases.messages.get(when, "")
    if outcomes.get("teardown") == "failed":
        return Status.ERROR, phases.messages.get("teardown", "")
    if "call" not in outcomes:
        return Status.SKIPPED, "not run to the end (interrupted)"
    return Status.PASSED, ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _output(sections: dict[str, str]) -> str:
    """The requests and curl sections a failing test's report showed, for the console."""
    parts = [
        f"{name}:\n{sections[name]}"
        for name in ("nocrud requests", "nocrud curl")
        if name in sections
    ]
    return "\n\n".join(parts)


def selection_of(args: Sequence[str]) -> dict[str, Any]:
    """What the run store keeps of the command line: pytest's arguments."""
    return {"pytest": list(args), "python": sys.executable}
