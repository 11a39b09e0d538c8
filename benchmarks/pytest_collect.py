"""Benchmark: does nocrud's pytest plugin slow down a suite that does not use it?

Makes a throw-away project of N trivial tests (no nocrud.yaml, no nocrud fixture) and
times ``pytest --collect-only`` on it with the plugin (as installed) and without it
(``-p no:nocrud``), round-robin so a busy machine slows both alike. Prints the p50 and
minimum of each, their ratio, nocrud's modules a collection imported, and the heavy
packages (Docker, requests, pydantic, SQLAlchemy, rich, psycopg2) it imported with the
plugin and not without it (there should be none). Usage::

    v/bin/python benchmarks/pytest_collect.py -n 10 --tests 300
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("docker", "requests", "pydantic", "sqlalchemy", "rich", "psycopg2", "testcontainers")
PROBE = (
    "import sys, pytest\n"
    "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', *sys.argv[1].split()])\n"
    "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2:]))),"
    " '|', ' '.join(sorted(m for m in sys.modules if m.startswith('nocrud'))))\n"
)


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--runs", type=int, default=10, help="timed runs of each")
    parser.add_argument("--tests", type=int, default=300, help="trivial tests in the project")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nocrud-collect-") as tmp:
        project = Path(tmp)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(args.tests))
        (project / "test_many.py").write_text(body)
        base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        variants = {"with nocrud": base, "without (-p no:nocrud)": [*base, "-p", "no:nocrud"]}
        for argv in variants.values():  # warm the file cache and .pyc files
            timed(argv, project)
        samples: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.runs):
            for label, argv in variants.items():
                samples[label].append(timed(argv, project))
        # Other plugins (Schemathesis's, say) import what they import: what counts is what
        # a collection imports with nocrud's plugin and not without it.
        probes = [
            subprocess.run(
                [sys.executable, "-c", PROBE, flag, *HEAVY],
                cwd=project,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            for flag in ("-q", "-p no:nocrud")
        ]
    print(f"pytest --collect-only of {args.tests} trivial tests, {args.runs} run(s) each")
    print(f"{'':<24} {'p50 ms':>8} {'min ms':>8}")
    for label, values in samples.items():
        print(f"{label:<24} {statistics.median(values) * 1000:8.1f} {min(values) * 1000:8.1f}")
    with_, without = (statistics.median(v) for v in samples.values())
    print(f"with / without: {with_ / without:.2f}x")
    found = []
    for out in probes:
        line = next((x for x in out.splitlines() if x.startswith("MODULES")), "MODULES ?|?")
        heavy, _, ours = line.removeprefix("MODULES").partition("|")
        found.append((set(heavy.split()), ours.strip()))
    (with_heavy, ours), (without_heavy, _) = found
    added = sorted(with_heavy - without_heavy)
    print(f"heavy packages imported because of nocrud: {', '.join(added) or 'none'}")
    print(f"nocrud modules imported: {ours or '?'}")


if __name__ == "__main__":
    main()
