"""benchmarks/console_rss.py at a reduced size: it records, serves, walks and reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_console_rss_benchmark_runs_small() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "console_rss.py"),
            "--runs",
            "4",
            "--flows",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("runs recorded:        4 x 3 flows")
    assert any(line.startswith("serve peak RSS, after ") for line in lines)
    assert lines[-1].startswith("target: peak RSS < 150 MB: under (")
