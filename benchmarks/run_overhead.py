"""Benchmark: the seconds ``nocrud up`` spends around its flows, with everything cached.

A developer's loop (edit, run five flows, edit again) pays these seconds on every run:
from the moment ``nocrud up`` is started to the moment its first flow starts, and from
the moment its last flow ends to the moment the process exits. The flows' own time (the
first flow's environment included) is not counted. The run's JSON report says when the
flows started (``started_at``) and how long they took (``wall_time``); the process's
start and exit are taken here, so::

    before = started_at - spawned
    after  = exited - (started_at + wall_time)

One unmeasured run first builds what is missing, warms the file cache and the .pyc files;
then N runs of the same selection are timed. Prints the p50 and minimum of ``before`` and
``after``, and the target (at most 1 s each on a quiet machine). ``--profile`` runs one more
time under cProfile and prints the slowest calls outside the flows. Usage::

    v/bin/python benchmarks/run_overhead.py -n 5
    v/bin/python benchmarks/run_overhead.py -c examples/django/nocrud.yaml -f product_crud
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.0


def nocrud_command() -> list[str]:
    """The installed console script next to this interpreter, run by this interpreter."""
    script = Path(sys.executable).parent / "nocrud"
    if not script.is_file():
        sys.exit(f"no nocrud console script at {script}: install the package (pip install -e .)")
    return [sys.executable, str(script)]


def one_run(argv: list[str], env: dict[str, str], workdir: Path) -> tuple[float, float, float]:
    """``(before, flows, after)`` seconds of one ``nocrud up``; a failing run stops the bench."""
    report = workdir / "run.json"
    report.unlink(missing_ok=True)
    spawned = time.time()
    proc = subprocess.run(
        [*argv, "--json", str(report)], capture_output=True, text=True, env=env, check=False
    )
    exited = time.time()
    if proc.returncode != 0 or not report.is_file():
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(report.read_text())
    started, wall = float(data["started_at"]), float(data["wall_time"])
    return started - spawned, wall, exited - (started + wall)


def profile(argv: list[str], env: dict[str, str], workdir: Path, top: int) -> None:
    """One more run under cProfile: the calls that took longest, the flows' own left out."""
    out = workdir / "up.prof"
    subprocess.run(
        [argv[0], "-m", "cProfile", "-o", str(out), *argv[1:]],
        capture_output=True,
        env=env,
        check=False,
    )
    stats = pstats.Stats(str(out))
    rows = []
    for (path, line, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "nocrud" in path and name not in {"<module>", "main", "invoke", "up", "run_flows"}:
            rows.append((cumulative, f"{Path(path).name}:{line} {name}"))
    print(f"\nslowest nocrud calls of one run (cumulative seconds, flows included), top {top}:")
    for cumulative, where in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative:6.3f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="timed runs")
    parser.add_argument(
        "-c", "--config", type=Path, default=REPO / "nocrud.yaml", help="the project's nocrud.yaml"
    )
    parser.add_argument("-f", "--flow", default="site_crud", help="the flow each run runs")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="profile one run")
    args = parser.parse_args()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("NOCRUD_CONFIG", None)
    argv = [*nocrud_command(), "-c", str(args.config.resolve()), "up", "-f", args.flow]
    with tempfile.TemporaryDirectory(prefix="nocrud-overhead-") as tmp:
        workdir = Path(tmp)
        one_run(argv, env, workdir)  # builds what is missing; warms caches; not counted
        samples = [one_run(argv, env, workdir) for _ in range(args.runs)]
        before = [s[0] for s in samples]
        flows = [s[1] for s in samples]
        after = [s[2] for s in samples]
        print(
            f"nocrud up -f {args.flow} on {args.config}, everything cached, {args.runs} run(s), "
            f"{os.cpu_count()} CPU(s)"
        )
        print(f"{'part':<28} {'p50 s':>7} {'min s':>7}")
        for label, values in (
            ("start -> first flow starts", before),
            ("the flows", flows),
            ("last flow ends -> exit", after),
        ):
            print(f"{label:<28} {statistics.median(values):7.2f} {min(values):7.2f}")
        for label, values in (("before", before), ("after", after)):
            p50 = statistics.median(values)
            verdict = "met" if p50 <= TARGET else "not met"
            print(f"{label} the flows: p50 {p50:.2f} s, target at most {TARGET:.1f} s: {verdict}")
        if args.profile:
            profile(argv, env, workdir, args.profile)


if __name__ == "__main__":
    main()
