"""Benchmark: a pytest suite on one shared database against the same suite isolated by nocrud.

The suite is tests/e2e/strangers/fastapi_items's (a FastAPI app in the shape of its
full-stack template), copied ``--copies`` times so it is long enough to matter:

- ``shared``: ``tests_shared/``, the suite as teams run it today: one app and one
  database for every test (one environment nocrud starts, not counted), ``-p no:nocrud``.
  Its tests that count rows fail there; only its time counts.
- ``image`` and ``pool``: ``tests_nocrud/``, the same tests on nocrud's ``api``/``db``
  fixtures, each test in its own environment from that strategy.
- ``kept``: ``pool``'s second session, as a developer's loop runs it: ``run.keep_pool`` on
  and one warm pair per worker (``run.warm: 1``), after a first session (not counted) that
  left its pairs.

Each runs at ``-n 1`` and ``-n 4`` (pytest-xdist), side by side in one run, after one
``nocrud build`` that is not counted, ``--repeat`` times in turn (rows interleaved, so a
busy moment of a shared machine hits them alike); each row shows its median run. Prints
wall time, per-test set-up p50/p95 (from pytest's ``--durations``), and each row as a
multiple of ``shared`` at the same ``-n``.
The target: ``pool`` at ``-n 4`` costs at most 1.5x ``shared`` at ``-n 4``. Usage::

    v/bin/python benchmarks/pytest_suite.py --copies 4 --strategies image,pool,kept
    v/bin/python benchmarks/pytest_suite.py --copies 1 --workers 2 --strategies pool
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "tests" / "e2e" / "strangers" / "fastapi_items"
_SETUP = re.compile(r"^\s*(?P<seconds>[\d.]+)s setup\s+\S+")
_COUNTS = re.compile(r"(\d+) (passed|failed|error)")
TARGET = 1.5
#: The row of pool's second session, on the pairs the first one kept.
KEPT = "kept"


def prepare(directory: Path, project: str, copies: int) -> Path:
    """The app copied into ``directory`` under ``project``, each suite file ``copies`` times."""
    import yaml

    app = directory / "fastapi_items"
    shutil.copytree(APP, app)
    config = yaml.safe_load((app / "nocrud.yaml").read_text())
    config["project"] = project
    (app / "nocrud.yaml").write_text(yaml.safe_dump(config))
    for suite in ("tests_shared", "tests_nocrud"):
        source = (app / suite / "test_items.py").read_text()
        for copy in range(1, copies):
            (app / suite / f"test_items_{copy}.py").write_text(source)
    return app


def pytest_run(app: Path, argv: list[str], env: dict[str, str]) -> tuple[float, list[float], str]:
    """Wall seconds, per-test set-up seconds, and the counts line of one pytest run."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--durations=0",
         "--durations-min=0", *argv],
        cwd=app, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest {' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    setups = [float(m["seconds"]) for m in map(_SETUP.match, proc.stdout.splitlines()) if m]
    counts = ", ".join(f"{n} {word}" for n, word in _COUNTS.findall(proc.stdout.splitlines()[-1]))
    return wall, setups, counts


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of the suite's test file")
    parser.add_argument("--workers", type=int, default=4, help="the -n of the parallel rows")
    parser.add_argument("--strategies", default="image,pool", help="nocrud's rows")
    parser.add_argument("--project", default="bench-pytest", help="project name of the copy")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (its median shows)")
    args = parser.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOCRUD_CONFIG", None)
    nocrud = [sys.executable, str(Path(sys.executable).parent / "nocrud")]
    rows: list[tuple[str, int, float, list[float], str]] = []
    with tempfile.TemporaryDirectory(prefix="nocrud-pytest-bench-") as tmp:
        app = prepare(Path(tmp), args.project, args.copies)
        try:
            built = subprocess.run(
                [*nocrud, "build"], cwd=app, env=env, capture_output=True, text=True, check=False
            )
            if built.returncode != 0:
                sys.exit(f"nocrud build failed:\n{built.stdout}{built.stderr}")
            for workers in sorted({1, args.workers}):
                xdist = ["-n", str(workers)] if workers > 1 else []
                runs: dict[str, list[tuple[float, list[float], str]]] = {}
                if KEPT in strategies:  # its first session leaves the pairs the others take
                    pytest_run(app, [*xdist, *_argv(app, KEPT)], env)
                for _ in range(max(1, args.repeat)):
                    runs.setdefault("shared", []).append(shared_run(app, xdist, env))
                    for strategy in strategies:
                        argv = [*xdist, *_argv(app, strategy)]
                        runs.setdefault(strategy, []).append(pytest_run(app, argv, env))
                for name, measured in runs.items():
                    rows.append((name, workers, *sorted(measured)[len(measured) // 2]))
        finally:
            subprocess.run([*nocrud, "clean", "--images"], cwd=app, env=env,
                           capture_output=True, check=False)  # fmt: skip
    tests = len(rows[0][3]) or 7 * args.copies
    print(
        f"the fastapi_items suite x{args.copies} ({tests} tests), {os.cpu_count()} CPU(s), "
        f"median of {max(1, args.repeat)} run(s) per row"
    )
    print(
        f"{'run':<14} {'wall s':>7} {'setup p50 s':>12} {'setup p95 s':>12} {'x shared':>9}  tests"
    )
    base = {workers: wall for name, workers, wall, _, _ in rows if name == "shared"}
    for name, workers, wall, setups, counts in rows:
        label = f"{name} -n {workers}"
        print(
            f"{label:<14} {wall:7.1f} {statistics.median(setups or [0]):12.3f} "
            f"{percentile(setups, 95):12.3f} {wall / base[workers]:9.2f}  {counts}"
        )
    for strategy in ("pool", KEPT):
        walls = [w for name, n, w, _, _ in rows if name == strategy and n == args.workers]
        if walls:
            ratio = walls[0] / base[args.workers]
            verdict = "met" if ratio <= TARGET else "not met"
            print(f"{strategy} -n {args.workers} / shared -n {args.workers}: {ratio:.2f}x "
                  f"(target at most {TARGET}x): {verdict}")  # fmt: skip


def _argv(app: Path, strategy: str) -> list[str]:
    """The nocrud suite's pytest arguments for one of nocrud's rows."""
    if strategy == KEPT:
        return ["--nocrud-config", str(kept_config(app)), "tests_nocrud"]
    return ["--nocrud-strategy", strategy, "tests_nocrud"]


def kept_config(app: Path) -> Path:
    """A config beside the app's own: the pool, kept between sessions, one warm pair ahead."""
    import yaml

    config = yaml.safe_load((app / "nocrud.yaml").read_text())
    config.setdefault("run", {}).update(
        {"strategy": "pool", "keep_pool": "5m", "warm": 0, "keep_pool_max": 8}
    )
    path = app / "nocrud-kept.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def shared_run(app: Path, xdist: list[str], env: dict[str, str]) -> tuple[float, list[float], str]:
    """tests_shared against one environment that every test shares (its start not counted)."""
    from nocrud.testing.session import EnvironmentSession, Settings

    settings = Settings(config=app / "nocrud.yaml", strategy="image")
    session = EnvironmentSession(settings, lambda line: None)
    try:
        with session.acquire("shared") as shared:
            run_env = {**env, "API_URL": shared.base_url}
            return pytest_run(app, [*xdist, "-p", "no:nocrud", "tests_shared"], run_env)
    finally:
        session.close()


if __name__ == "__main__":
    main()
