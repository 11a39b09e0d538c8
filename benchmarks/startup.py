"""Benchmark: how long the ``nocrud`` command takes to start, against a bare Python.

Runs ``nocrud --help``, ``nocrud list`` (on the bundled example's nocrud.yaml) and
``nocrud --version`` N times each, round-robin with ``python -c pass`` so a busy
machine slows all of them alike, and prints per command the wall-clock p50 and
minimum in milliseconds and the ratio of its p50 to the bare interpreter's. A last
run of each command under ``-X importtime`` shows which heavy packages it imported
(Docker, testcontainers, psycopg2 and requests belong only to the commands that
talk to Docker or to an app). Usage::

    v/bin/python benchmarks/startup.py -n 20
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Packages whose import a start-up pays for; the first four are the Docker/HTTP stack.
HEAVY = ("docker", "testcontainers", "psycopg2", "requests", "pydantic", "rich", "yaml")
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(?P<name>[\w.]+)\s*$")


def nocrud_command() -> list[str]:
    """The installed console script next to this interpreter, run by this interpreter."""
    script = Path(sys.executable).parent / "nocrud"
    if not script.is_file():
        sys.exit(f"no nocrud console script at {script}: install the package (pip install -e .)")
    return [sys.executable, str(script)]


def commands(config: Path) -> dict[str, list[str]]:
    """What is timed, by the label printed for it."""
    nocrud = nocrud_command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "nocrud --help": [*nocrud, "--help"],
        "nocrud list": [*nocrud, "-c", str(config), "list"],
        "nocrud --version": [*nocrud, "--version"],
    }


def run(argv: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one run; a failing command stops the benchmark."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return elapsed


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """The HEAVY packages a run of ``argv`` imported (read from ``-X importtime``)."""
    if argv[1:] == ["-c", "pass"]:
        return []
    traced = [argv[0], "-X", "importtime", *argv[1:]]
    proc = subprocess.run(traced, capture_output=True, env=env, cwd=REPO, check=False, text=True)
    found = set()
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            found.add(match.group("name").split(".", 1)[0])
    return [name for name in HEAVY if name in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="runs of each command")
    parser.add_argument(
        "--config", type=Path, default=REPO / "nocrud.yaml", help="nocrud.yaml for `list`"
    )
    args = parser.parse_args()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("NOCRUD_CONFIG", None)
    timed = commands(args.config.resolve())
    for argv in timed.values():  # warm the file cache and .pyc files; not counted
        run(argv, env)
    samples: dict[str, list[float]] = {label: [] for label in timed}
    for _ in range(args.runs):
        for label, argv in timed.items():
            samples[label].append(run(argv, env))
    base = statistics.median(samples["python -c pass"])
    print(
        f"start-up over {args.runs} run(s) each: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), list on {args.config}"
    )
    print(f"{'command':<18} {'p50 ms':>8} {'min ms':>8} {'x python':>9}  heavy imports")
    for label, argv in timed.items():
        p50 = statistics.median(samples[label])
        heavy = ", ".join(heavy_imports(argv, env)) or "-"
        print(
            f"{label:<18} {p50 * 1000:8.1f} {min(samples[label]) * 1000:8.1f} "
            f"{p50 / base:9.2f}  {heavy}"
        )


if __name__ == "__main__":
    main()
