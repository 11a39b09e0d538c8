"""What ``nocrud watch`` prints for a rerun: one line per flow, a summary, the failures kept.

:class:`WatchReporter` is ``up``'s :class:`~nocrud.report.TerminalReporter` (the same live
progress on a terminal, the same masked blocks) with a compact result: each finished
flow is one line (status, name, time, the message's first line); at the end come the
full blocks of every flow that is failing now, this rerun's and earlier reruns' alike
(:class:`Failures` remembers them until the flow passes), then one summary line that
starts with ``watch:``. On a terminal the screen is cleared before each rerun, so what
stays on screen is the last result with the details of what still fails.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.text import Text

from nocrud.report import TerminalReporter
from nocrud.report.terminal import format_totals
from nocrud.results import FlowResult, RunResult, Status

__all__ = ["SUMMARY_PREFIX", "Failures", "WatchReporter", "flow_line"]

#: How every rerun's summary line starts (the benchmark and the e2e test wait for it).
SUMMARY_PREFIX = "watch:"

_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "bold red",
    Status.ERROR: "bold red",
    Status.SKIPPED: "yellow",
}


class Failures:
    """The blocks of the flows failing now, by name, in the order they first failed."""

    def __init__(self) -> None:
        self._blocks: dict[str, Text] = {}
        self._lock = threading.Lock()

    def update(self, result: FlowResult, block: Text) -> None:
        with self._lock:
            if result.status.ok:
                self._blocks.pop(result.name, None)
            else:
                self._blocks[result.name] = block

    def forget_except(self, names: set[str]) -> None:
        """Drop the failures of flows that no longer exist (a removed flow)."""
        with self._lock:
            for name in [n for n in self._blocks if n not in names]:
                del self._blocks[name]

    def blocks(self) -> list[tuple[str, Text]]:
        with self._lock:
            return list(self._blocks.items())


def flow_line(result: FlowResult) -> str:
    """One flow's compact line: status, name, seconds, and the message's first line."""
    seconds = result.timings.provision + result.timings.run
    line = f"  {result.status.name:<7} {result.name}  {seconds:.2f}s"
    if not result.status.ok and result.message.strip():
        first = result.message.strip().splitlines()[0]
        line += f"  {first[:160]}"
    return line


class WatchReporter(TerminalReporter):
    """``up``'s reporter with a compact result and the failures kept (see the module).

    Args:
        console: Where to write.
        total: Flows in this rerun.
        failures: What still fails, shared by every rerun of one ``watch``.
        why: What changed, shown in the summary line.
    """

    def __init__(self, console: Console, *, total: int, failures: Failures, why: str = "") -> None:
        super().__init__(console, total=total)
        self.failures = failures
        self.why = why

    def flow_finished(self, result: FlowResult) -> None:
        block = self.render_flow(result)
        self.failures.update(result, block)
        line = Text(flow_line(result))
        line.stylize(self._style(_STYLE[result.status]), 2, 9)
        with self._lock:
            self._running.pop(result.name, None)
            self._counts[result.status] += 1
            self._update_live(advance=1)
            self.console.print(line, soft_wrap=True)

    def finish(self, run: RunResult) -> None:
        self.close()
        with self._lock:
            earlier = {r.name for r in run.flows}
            for name, block in self.failures.blocks():
                self.console.print()
                if name not in earlier:
                    self.console.print(f"still failing since an earlier rerun: {name}")
                self.console.print(block, soft_wrap=True)
            why = f" ({self.why})" if self.why else ""
            failing = len(self.failures.blocks())
            still = f"; {failing} failing" if failing else ""
            style = "bold red" if failing else "bold green"
            line = Text(f"{SUMMARY_PREFIX} {format_totals(run)}{why}{still}")
            line.stylize(self._style(style))
            self.console.print(line, soft_wrap=True)
