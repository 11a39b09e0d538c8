"""Benchmark: the seconds ``nocrud up`` spends around its flows, with everything cached.

A developer's loop (edit, run five flows, edit again) pays these seconds on every run:
from the moment ``nocrud up`` is started to the moment its first flow starts, and from
the moment its last flow ends to the moment the process exits. The flows' own time (the
first flow's environment included) is not counted. The run's JSON report says when the
flows started (``started_at``) and how long they took (``wall_time``); the process's
start and exit are taken here, so::

    before = started_at - spawned
    after  = exited - (started_at + wall_time)

Each case (an example and the flow it runs) is measured under each strategy: one
unmeasured run first builds what is missing, warms the file cache and the .pyc files;
then N runs of each, taken in turn (case after case, N rounds) so a machine that gets
busier slows all of them alike. Prints, per example and strategy side by side, the p50
and minimum of ``before`` and ``after``, the flows' p50 and the whole command's p50 (so
time moved from "before" into the first flow would show), against the target of at most
1 s each on a quiet machine. ``--profile`` runs the first case once more under cProfile
and prints the slowest calls. Usage::

    v/bin/python benchmarks/run_overhead.py -n 3         # bundled + Django, image + pool
    v/bin/python benchmarks/run_overhead.py -n 1 --examples bundled --strategies image
    v/bin/python benchmarks/run_overhead.py -n 5 --against main   # and main's code, in turn
    v/bin/python benchmarks/run_overhead.py -c path/to/nocrud.yaml -f some_flow --profile 15
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
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.0
#: The examples measured by default: their nocrud.yaml and the one flow each run runs.
EXAMPLES = {
    "bundled": (REPO / "nocrud.yaml", "site_crud"),
    "django": (REPO / "examples" / "django" / "nocrud.yaml", "product_crud"),
}
STRATEGIES = ("image", "pool")


@dataclass
class Case:
    """One example under one strategy (and code), and what its timed runs measured."""

    example: str
    config: Path
    flow: str
    strategy: str
    #: The code measured: "" for this checkout, else a git ref (``--against``).
    code: str = ""
    source: Path | None = None
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def argv(self, nocrud: list[str]) -> list[str]:
        return [*nocrud, "-c", str(self.config), "up", "-f", self.flow]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = {**base, "NOCRUD_STRATEGY": self.strategy}
        if self.source is not None:  # ahead of the editable install's path
            env["PYTHONPATH"] = str(self.source)
        return env


def export(ref: str, into: Path) -> Path:
    """``runner/`` of git ref ``ref``, written under ``into``; the path to put first."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "runner"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        sys.exit(f"--against {ref}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "runner"


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


def cases_of(args: argparse.Namespace) -> list[Case]:
    """The cases asked for: ``-c``/``-f``'s one example, else the named examples."""
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.config is not None:
        examples = {args.config.parent.name or "example": (args.config.resolve(), args.flow)}
    else:
        names = [n.strip() for n in args.examples.split(",") if n.strip()]
        unknown = [n for n in names if n not in EXAMPLES]
        if unknown:
            sys.exit(f"--examples {','.join(unknown)}: unknown (known: {', '.join(EXAMPLES)})")
        examples = {n: EXAMPLES[n] for n in names}
    codes = ["", *([args.against] if args.against else [])]
    return [
        Case(name, config, args.flow or flow, strategy, code)
        for name, (config, flow) in examples.items()
        for strategy in strategies
        for code in codes
    ]


def verdict(value: float) -> str:
    return "met" if value <= TARGET else "NOT met"


def report(cases: list[Case], runs: int) -> None:
    """One row per example and strategy: before and after against the target, side by side."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"nocrud up around its flows, everything cached: {runs} timed run(s) each, "
        f"{os.cpu_count()} CPU(s), load average {load:.1f} at the end; target at most "
        f"{TARGET:.1f} s before and after (p50)"
    )
    flows = {case.example: case.flow for case in cases}
    print("each run: nocrud up -f " + ", ".join(f"{f} ({e})" for e, f in flows.items()))
    header = (
        f"{'example':<10} {'strategy':<9} {'code':<10} {'before p50':>10} {'min':>6} "
        f"{'after p50':>9} {'min':>6} {'flows p50':>9} {'whole p50':>9}  verdict"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        before = [s[0] for s in case.samples]
        flows = [s[1] for s in case.samples]
        after = [s[2] for s in case.samples]
        whole = [sum(s) for s in case.samples]
        p50b, p50a = statistics.median(before), statistics.median(after)
        print(
            f"{case.example:<10} {case.strategy:<9} {case.code or 'this':<10} {p50b:10.2f} "
            f"{min(before):6.2f} {p50a:9.2f} {min(after):6.2f} {statistics.median(flows):9.2f} "
            f"{statistics.median(whole):9.2f}  before {verdict(p50b)}, after {verdict(p50a)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="timed runs of each case")
    parser.add_argument(
        "--examples",
        default=",".join(EXAMPLES),
        help=f"comma-separated, of: {', '.join(EXAMPLES)} (default: all)",
    )
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated run.strategy values"
    )
    parser.add_argument(
        "-c", "--config", type=Path, default=None, help="another project's nocrud.yaml instead"
    )
    parser.add_argument("-f", "--flow", default=None, help="the flow each run runs")
    parser.add_argument(
        "--against",
        metavar="REF",
        default=None,
        help="also measure git ref REF's code (e.g. main), in turn with this checkout's",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="profile one run")
    args = parser.parse_args()
    if args.config is not None and args.flow is None:
        args.flow = "site_crud"
    base = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    for name in ("NOCRUD_CONFIG", "NOCRUD_STRATEGY"):
        base.pop(name, None)
    nocrud = nocrud_command()
    cases = cases_of(args)
    with tempfile.TemporaryDirectory(prefix="nocrud-overhead-") as tmp:
        workdir = Path(tmp)
        if args.against:
            source = export(args.against, workdir)
            for case in cases:
                case.source = source if case.code else None
        for case in cases:  # builds what is missing; warms caches; not counted
            one_run(case.argv(nocrud), case.env(base), workdir)
        for _ in range(args.runs):
            for case in cases:
                case.samples.append(one_run(case.argv(nocrud), case.env(base), workdir))
        report(cases, args.runs)
        if args.profile:
            first = cases[0]
            profile(first.argv(nocrud), first.env(base), workdir, args.profile)


if __name__ == "__main__":
    main()
