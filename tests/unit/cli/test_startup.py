"""``nocrud --help`` and ``nocrud list`` start without the Docker and HTTP stack.

Checked in a fresh interpreter (what a module imports is invisible in this test
process, which has imported everything already), by the modules loaded, not by
timing: benchmarks/startup.py measures the time, and its last test runs it small.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("docker", "testcontainers", "psycopg2", "requests")
#: Runs the CLI in-process, then prints which HEAVY packages got imported, at exit.
CHILD = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print("HEAVY=" + json.dumps(sorted(h for h in heavy if h in sys.modules))))
from nocrud.cli import main
main({args!r})
"""


def heavy_imports(*args: str, cwd: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(heavy=HEAVY, args=list(args))],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "runner")},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    marker = [line for line in proc.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker, proc.stdout + proc.stderr
    return list(json.loads(marker[-1].removeprefix("HEAVY=")))


def test_help_imports_no_heavy_package(tmp_path: Path) -> None:
    assert heavy_imports("--help", cwd=tmp_path) == []
    assert heavy_imports("up", "--help", cwd=tmp_path) == []


def test_list_imports_no_heavy_package(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "flows" / "health.py").write_text(
        "from nocrud import FlowContext, flow\n\n\n"
        "@flow\ndef health(ctx: FlowContext) -> None:\n"
        '    """The app answers."""\n'
    )
    (tmp_path / "nocrud.yaml").write_text("project: demo\napp:\n  image: demo/app:1\n")
    assert heavy_imports("list", cwd=tmp_path) == []


@pytest.mark.timeout(300)
def test_the_startup_benchmark_prints_its_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "startup.py"), "-n", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        for label in ("python -c pass", "nocrud --help", "nocrud list", "nocrud --version"):
            if line.startswith(label):
                rows[label] = line[len(label) :].split()
    assert set(rows) == {"python -c pass", "nocrud --help", "nocrud list", "nocrud --version"}
    for label, (p50, minimum, ratio, *heavy) in rows.items():
        assert float(p50) > 0 and float(minimum) > 0 and float(ratio) > 0, label
        assert heavy, f"{label}: no heavy-imports column"
    assert rows["nocrud --help"][3:] == ["-"], rows["nocrud --help"]
