"""What a person watching ``nocrud up`` sees: live progress, one block per flow, a summary.

:class:`TerminalReporter` is a :class:`~nocrud.scheduler.RunListener`. On a
terminal it keeps a live display at the bottom (a bar with done/total, counts,
elapsed time and the flows running now) and prints each finished flow's block
above it; elsewhere (CI logs, pipes) it prints the blocks only. A block is
printed in one piece, so parallel flows never interleave: a header line with
status, name, CRUD steps and timings, and for a FAILED or ERROR flow its
message, traceback, captured output and the app's last log lines, secrets
masked by :mod:`nocrud.masking` as in every report. The run ends
with a table of every flow and a pytest-style totals line. Colours appear only
on a terminal and never with ``NO_COLOR``.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from nocrud.logs import collapse_repeats
from nocrud.masking import mask_text
from nocrud.results import FlowResult, RunResult, Status, StepResult

__all__ = [
    "TerminalReporter",
    "format_steps",
    "format_totals",
    "indent",
    "logs_in_message",
    "plural",
    "print_wide",
    "running",
    "without_repeated_message",
]

#: Lines of a FAILED or ERROR flow's app logs shown in its block (all are in --json).
APP_LOG_LINES = 40
#: Lines of a traceback, and of captured output, shown unless verbose.
TRIM_LINES = 40

_STATUS_STYLE = {
    Status.PASSED: "bold green",
    Status.FAILED: "bold red",
    Status.ERROR: "bold magenta",
    Status.SKIPPED: "bold yellow",
}
_EN_DASH = "\u2013"  # written escaped: ruff rightly flags a literal one as ambiguous
_STEP_MARK = {Status.PASSED: "✔", Status.FAILED: "✘", Status.ERROR: "✘", Status.SKIPPED: _EN_DASH}
_STEP_MARK_ASCII = {Status.PASSED: "+", Status.FAILED: "x", Status.ERROR: "x", Status.SKIPPED: "-"}


class TerminalReporter:
    """Reports a run to a console as it happens. Thread-safe.

    Call :meth:`start` before the run, pass the reporter to the scheduler as its
    listener, and call :meth:`finish` with the run's result (or :meth:`close` if
    the run never produced one). Also usable as a context manager that starts
    the live display and closes it on exit.

    Args:
        console: Where to write; by default stdout, coloured only on a terminal
            and without ``NO_COLOR``.
        verbose: Show passed flows' details and untrimmed tracebacks and output.
        total: How many flows the run will report.
    """

    def __init__(
        self, console: Console | None = None, *, verbose: bool = False, total: int
    ) -> None:
        self.console = console or Console(
            no_color=bool(os.environ.get("NO_COLOR")), highlight=False
        )
        self.verbose = verbose
        self.total = total
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # flow name -> worker, in start order
        self._counts = dict.fromkeys(Status, 0)
        self._live: Live | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._running_line = Text("")  # replaced whole: read by the refresh thread

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the live progress display, on a terminal only; elsewhere do nothing."""
        with self._lock:
            if not self.console.is_terminal or self._live is not None:
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(
                "flows", total=self.total, counts=self._counts_markup()
            )
            self._live = Live(
                console=self.console,
                get_renderable=self._render_live,
                refresh_per_second=8,
                transient=True,
                # Leave sys.stdout alone: the runner swaps it to capture each flow's
                # prints, and rich's proxy would route those to the terminal instead.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def close(self) -> None:
        """Stop the live display, if any; the blocks already printed stay."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def __enter__(self) -> TerminalReporter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- RunListener -----------------------------------------------------------

    def flow_started(self, name: str, worker: int) -> None:
        """Show ``name`` among the running flows."""
        with self._lock:
            self._running[name] = worker
            self._update_live()

    def flow_finished(self, result: FlowResult) -> None:
        """Print the flow's block and count it."""
        block = self.render_flow(result)
        with self._lock:
            self._running.pop(result.name, None)
            self._counts[result.status] += 1
            self._update_live(advance=1)
            self.console.print(block, soft_wrap=True)

    # -- the end ---------------------------------------------------------------

    def finish(self, run: RunResult) -> None:
        """Stop the live display and print the summary table and the totals line.

        Args:
            run: The finished run.
        """
        self.close()
        with self._lock:
            if run.flows:
                self.console.print()
                print_wide(self.console, self.render_summary(run))
            line = Text(format_totals(run), style=self._style(_totals_style(run)))
            self.console.print(line, soft_wrap=True)

    # -- rendering (pure: reads values only) -------------------------------------

    def render_flow(self, result: FlowResult) -> Text:
        """The block printed for one finished flow."""
        block = self._render_flow(_masked(result))
        # Undecodable bytes of captured output survive as lone surrogates, which
        # no stream can encode; "?" keeps the length, hence the styles' spans.
        block.plain = block.plain.encode("utf-8", "replace").decode("utf-8")
        return block

    def _render_flow(self, result: FlowResult) -> Text:
        block = Text()
        block.append(f"{result.status.name:<7} ", style=self._style(_STATUS_STYLE[result.status]))
        block.append(result.name, style=self._style("bold"))
        steps = format_steps(result.steps, ascii_only=not self._unicode())
        if steps:
            block.append(f"  {steps}")
        if result.status is Status.SKIPPED:
            if result.message:
                block.append(f"  {result.message}", style=self._style("yellow"))
            return block
        t = result.timings
        block.append(f"  ({t.total:.2f} s)")
        block.append(
            f"  provision {t.provision:.2f} s · run {t.run:.2f} s · teardown {t.teardown:.2f} s"
            f" · worker {result.worker}" + (f" on {result.host}" if result.host else ""),
            style=self._style("dim"),
        )
        if result.attempt > 1:
            # Why the earlier attempts did not count: shown even for a passing flow.
            block.append(
                f"\n  attempt {result.attempt}: " + result.retried.replace("\n", "\n  "),
                style=self._style("yellow"),
            )
        failed = not result.status.ok
        if not failed and not self.verbose:
            return block
        self._evidence(block, result, failed=failed)
        if "\n" in block.plain:
            block.append("\n")  # a blank line sets a detailed block apart from the next
        return block

    def _evidence(self, block: Text, result: FlowResult, *, failed: bool) -> None:
        """What a failed (or, verbose, any) flow's block shows below its header line."""
        # Every line of a block is indented, so a CI log reads it as one block.
        step_message = _failing_step_message(result.steps)
        # A CRUD flow's message lists every failed step: the first one's line is in it.
        if step_message and step_message not in result.message:
            block.append("\n" + indent(step_message, "  "), style=self._style("red"))
        if result.message:
            style = self._style("red" if failed else "")
            block.append("\n" + indent(result.message, "  "), style=style)
        keep = None if self.verbose else TRIM_LINES
        if failed and result.traceback:
            traceback = without_repeated_message(result.traceback, result.message)
            self._section(block, "traceback", traceback, keep)
        if result.output:
            self._section(block, "output", result.output, keep)
        if failed and result.app_logs:
            if logs_in_message(result.app_logs, result.message):
                block.append(
                    "\n  app logs: their last lines are in the message above (all in --json)",
                    style=self._style("dim"),
                )
            else:
                self._section(block, "app logs", collapse_repeats(result.app_logs), APP_LOG_LINES)

    def render_summary(self, run: RunResult) -> Table:
        """The table of every flow of ``run`` with its status and timings."""
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            header_style=self._style("bold"),
        )
        # Never cut or wrap a name: without a terminal, finish() widens the table instead.
        table.add_column("flow", no_wrap=True)
        table.add_column("status")
        for phase in ("provision", "run", "teardown", "total"):
            table.add_column(phase, justify="right")
        for flow in run.flows:
            t = flow.timings
            times = [t.provision, t.run, t.teardown, t.total]
            cells = (
                [_EN_DASH] * 4 if flow.status is Status.SKIPPED else [f"{s:.2f} s" for s in times]
            )
            status = Text(flow.status.value, style=self._style(_STATUS_STYLE[flow.status]))
            table.add_row(escape(flow.name), status, *cells)
        return table

    # -- helpers -----------------------------------------------------------------

    def _style(self, style: str) -> str:
        # NO_COLOR users get plain text, not merely colourless bold and dim.
        return "" if self.console.no_color else style

    def _from_ansi(self, line: str) -> Text:
        text = Text.from_ansi(line)
        return Text(text.plain) if self.console.no_color else text

    def _unicode(self) -> bool:
        return self.console.encoding.lower().startswith("utf")

    def _section(self, block: Text, title: str, body: str, keep: int | None) -> None:
        lines = body.rstrip("\n").splitlines()
        heading = f"\n  {title}:"
        if keep is not None and len(lines) > keep:
            heading = f"\n  {title} (last {keep} of {len(lines)} lines; all of them in --json):"
            lines = lines[-keep:]
        block.append(heading, style=self._style("bold"))
        for line in lines:
            # App logs are often coloured: keep the colours, never the raw escapes.
            block.append("\n    ")
            block.append_text(self._from_ansi(line) if "\x1b" in line else Text(line))

    def _counts_markup(self) -> str:
        c = self._counts
        return (
            f"[green]{c[Status.PASSED]} passed[/] [red]{c[Status.FAILED]} failed[/] "
            f"[magenta]{c[Status.ERROR]} error[/]"
        )

    def _update_live(self, advance: int = 0) -> None:
        """Refresh what the live display shows; call with the lock held."""
        names = ", ".join(f"{name} (w{w})" for name, w in self._running.items())
        self._running_line = Text(
            f"running: {names}" if names else "", no_wrap=True, overflow="ellipsis"
        )
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=advance, counts=self._counts_markup())
        if self._live is not None:
            # Now, not at the next tick: a block printed next redraws the display below it.
            self._live.refresh()

    def _render_live(self) -> RenderableType:
        # Called from rich's refresh thread: reads only attributes replaced whole.
        progress = self._progress
        if progress is None:
            return Text("")
        return Group(progress.make_tasks_table(progress.tasks), self._running_line)


def format_steps(steps: tuple[StepResult, ...], *, ascii_only: bool = False) -> str:
    """Steps as ``C✔ R✔ U✔ L✔ D✘``: each step's label and how it went.

    A label is the step's initial while the initials tell the steps apart; when two
    share one (``database`` and ``delete``), every step shows its full name instead
    (``database✔ delete✘``), so a mark is never pinned on the wrong step.
    """
    marks = _STEP_MARK_ASCII if ascii_only else _STEP_MARK
    initials = [s.name[:1].upper() for s in steps]
    labels = initials if len(set(initials)) == len(initials) else [s.name for s in steps]
    return " ".join(f"{label}{marks[s.status]}" for label, s in zip(labels, steps, strict=True))


def format_totals(run: RunResult) -> str:
    """The pytest-style totals line, e.g. ``3 passed, 1 failed, 1 error in 12.34s``."""
    parts = [f"{run.count(Status.PASSED)} passed"] if run.count(Status.PASSED) else []
    if run.count(Status.FAILED):
        parts.append(f"{run.count(Status.FAILED)} failed")
    errors = run.count(Status.ERROR)
    if errors:
        parts.append(f"{errors} error{'s' if errors > 1 else ''}")
    if run.count(Status.SKIPPED):
        parts.append(f"{run.count(Status.SKIPPED)} skipped")
    if not parts:
        parts.append("no flows ran")
    if run.interrupted:
        parts.append("interrupted")
    return f"{', '.join(parts)} in {run.wall_time:.2f}s"


def _totals_style(run: RunResult) -> str:
    if run.count(Status.FAILED) or run.count(Status.ERROR):
        return "bold red"
    if run.interrupted or not run.flows:
        return "bold yellow"
    return "bold green"


def _masked(result: FlowResult) -> FlowResult:
    """``result`` with its texts masked by :mod:`nocrud.masking`, as JUnit and JSON show them."""
    return dataclasses.replace(
        result,
        message=mask_text(result.message),
        traceback=mask_text(result.traceback),
        output=mask_text(result.output),
        app_logs=mask_text(result.app_logs),
        steps=tuple(dataclasses.replace(s, message=mask_text(s.message)) for s in result.steps),
    )


def _failing_step_message(steps: tuple[StepResult, ...]) -> str:
    for step in steps:
        if step.status in (Status.FAILED, Status.ERROR):
            return f"{step.name}: {step.message}" if step.message else f"{step.name} failed"
    return ""


def indent(text: str, prefix: str) -> str:
    """``text`` with every line, not only the first, behind ``prefix``."""
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def without_repeated_message(traceback: str, message: str) -> str:
    """``traceback`` without its last lines when they repeat ``message`` already shown.

    An exception's text (a request and its response, say) ends its traceback too; the
    block shows it once, above, and the traceback's last line only names the exception.
    Reports written to files keep both: they are read one field at a time.
    """
    first = message.split("\n", 1)[0].strip()
    if not first or "\n" not in message.strip():
        return traceback  # one line: the last line of a traceback is where it is expected
    at = traceback.rfind(first)
    if at < 0:
        return traceback
    tail = traceback[at:].strip()
    repeated = [line.strip() for line in tail.splitlines()]
    shown = [line.strip() for line in message.strip().splitlines()]
    if repeated != shown[: len(repeated)]:
        return traceback
    return traceback[:at] + "(the message above)\n"


def logs_in_message(app_logs: str, message: str, lines: int = 3) -> bool:
    """Whether ``message`` already quotes the app's last log lines (an app that crashed)."""
    last = [line.strip() for line in app_logs.strip().splitlines()[-lines:] if line.strip()]
    return bool(last) and all(line in message for line in last)


def print_wide(console: Console, renderable: RenderableType) -> None:
    """Print a table; without a terminal at the width of its content, so nothing wraps.

    Without a terminal, lines carry no trailing padding.

    A CI log has no width to fit: a name folded at column 80 can no longer be searched
    for or copied into ``-f``. On a terminal, the terminal's width still rules.
    """
    if console.is_terminal:
        console.print(renderable)
        return
    needed = Measurement.get(console, console.options.update(width=10_000), renderable).maximum
    width = console.width
    console.width = max(width, needed)
    try:
        with console.capture() as captured:
            console.print(renderable)
    finally:
        console.width = width
    # A table pads every row to its widest one (180 columns for one long description);
    # trailing blanks only make a log harder to read and diff.
    lines = "\n".join(line.rstrip() for line in captured.get().splitlines())
    console.print(Text.from_ansi(lines), soft_wrap=True)


def plural(count: int, word: str) -> str:
    """``1 flow``, ``2 flows``: a count people read without ``(s)``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def running(flows: int, parallel: int) -> str:
    """What a run is about to do: ``1 flow``, or ``38 flows with 8 in parallel``.

    Never more in parallel than there are flows: 3 flows with ``-j 4`` run 3 at once.
    """
    shown = plural(flows, "flow")
    at_once = min(flows, parallel)
    return shown if at_once <= 1 else f"{shown} with {at_once} in parallel"
