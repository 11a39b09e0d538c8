"""``nocrud watch`` driven as a user drives it: save a flow file, read the rerun, Ctrl-C.

One watch process on the bundled example app (pool strategy, one pair) with a flows
package of one file: a save that adds a second flow reruns both on the warm pair (the
package is imported again), a save that removes it and breaks the first shows the
failure and no trace of the removed flow, and SIGINT exits 130 leaving nothing.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ONE = '''from nocrud import flow


@flow
def probe(ctx):
    """The app answers."""
    ctx.api.get("/health").expect(200)
'''

TWO = (
    ONE
    + '''

@flow
def probe_two(ctx):
    """Added while watching."""
    ctx.api.get("/health").expect(200)
'''
)

BROKEN = '''from nocrud import flow


@flow
def probe(ctx):
    """The app answers, and this save breaks the flow."""
    ctx.api.get("/health").expect(200)
    raise AssertionError("broken while watching")
'''


class Output:
    """The watch's merged output, read line by line on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.put(line)

    def close(self) -> None:
        """After the process ended: the rest of its output read, the pipe closed."""
        self._reader.join(10)
        self._stream.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())

    def until_summary(self, timeout: float) -> list[str]:
        """The lines up to and including the next ``watch:`` summary line."""
        block: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("no rerun result in time; output so far:\n" + "".join(self.seen))
            self.seen.append(line)
            block.append(line.rstrip())
            if line.startswith("watch:"):
                return block


def test_a_saved_flow_file_reruns_its_flows_and_ctrl_c_leaves_nothing(harness: Any) -> None:
    flows = harness.flows(ONE)
    module = flows / "test_flows.py"
    harness.config(flows__path=str(flows))
    proc = subprocess.Popen(
        [*harness.command, "watch", "-j", "1", "--warm", "0"],  # one pair: the least to boot
        cwd=harness.dir,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        first = out.until_summary(timeout=300)
        assert first[-1].startswith("watch: 1 passed"), first

        time.sleep(0.5)  # a save right at the summary line is caught too; this is a human's
        _save(module, TWO)
        both = out.until_summary(timeout=60)
        assert both[-1].startswith("watch: 2 passed"), both
        assert [line.split()[:2] for line in both if line.startswith("  PASSED")] == [
            ["PASSED", "probe"], ["PASSED", "probe_two"],
        ]  # fmt: skip

        _save(module, BROKEN)
        broken = out.until_summary(timeout=60)
        assert broken[-1].startswith("watch: 1 failed"), broken
        text = "\n".join(broken)
        assert "FAILED  probe" in text and "broken while watching" in text, text
        assert "probe_two" not in text, "a removed flow is gone, not rerun"

        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        # The failed flow's pair is being rebuilt: Ctrl-C kills that boot (pool.kill_all
        # reaches it). Generous for a loaded CI machine; the time is printed.
        code = proc.wait(timeout=150)
        print(f"\nwatch: exited {time.monotonic() - interrupted:.1f} s after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
    assert code == 130, "".join(out.seen)
    assert harness.leftovers() == []


def _save(path: Path, source: str) -> None:
    """Save as an editor does: a temporary file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(source)
    temporary.replace(path)
