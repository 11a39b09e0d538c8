"""Benchmark: peak memory (RSS) of ``nocrud serve`` over a history of many recorded runs.

Records N runs (default 500) of F flows each into a fresh SQLite store the way
``nocrud up`` does (every flow's result, steps, requests, its own 40-line app log, one
2,000-line log that every run repeats and the store keeps once, the run's log lines),
then starts a real
``nocrud serve`` process on it and walks what a user walks: the runs page (every page
of it, with filters), the JSON API, each of the last 50 runs' pages, their flows'
pages, a stored log page by page and a live stream. It prints the serve process's peak
RSS (VmHWM) after start-up and after the walk, the store's size, and whether the peak
stays under the target (150 MB). Usage::

    v/bin/python benchmarks/console_rss.py              # 500 runs
    v/bin/python benchmarks/console_rss.py --runs 20    # what the test runs
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from nocrud.results import FlowResult, RequestRecord, RunResult, Status, StepResult, Timings
from nocrud.store import RunStatus, RunStore

TARGET_MB = 150.0


def record(store: RunStore, runs: int, flows: int) -> None:
    shared_log = "".join(f"[app] GET /api/sites 200 in {i % 97} ms\n" for i in range(2000))
    rng = random.Random(7)
    for r in range(runs):
        run_id, _ = store.create_run(project="bench", trigger="cli", parallel=4, strategy="image")
        names = [f"flow_{i:02d}" for i in range(flows)]
        store.start_run(
            run_id, flow_names=names, commit=f"{r // 5:040x}", branch=("main", "dev")[r % 2]
        )
        results = []
        for name in names:
            failed = rng.random() < 0.05
            result = FlowResult(
                name=name,
                status=Status.FAILED if failed else Status.PASSED,
                message=(
                    f"GET http://127.0.0.1:5000/api/sites/{r} -> 404 NOT FOUND (expected 200)\n"
                    'response body (application/json):\n  {"error": "not found"}'
                )
                if failed
                else "",
                timings=Timings(1.0 + rng.random(), rng.random(), 0.3),
                app_logs=shared_log
                if name == "flow_00"
                else "".join(f"[app {r}/{name}] GET /api/sites/{i} 200\n" for i in range(40)),
                output=f"created site {r}\n",
                steps=(StepResult("create", Status.PASSED, duration=0.1),),
                requests=tuple(
                    RequestRecord("GET", f"/api/sites/{i}", 200, 0.01) for i in range(10)
                ),
                worker=rng.randrange(4),
            )
            store.flow_started(run_id, name, result.worker)
            store.flow_finished(run_id, result)
            results.append(result)
        store.append_log(run_id, [f"PASSED {n}" for n in names])
        outcome = RunResult(run_id, "bench", tuple(results), time.time(), 12.5, 4)
        store.finish_run(
            run_id,
            status=RunStatus.PASSED if outcome.ok else RunStatus.FAILED,
            result=outcome,
            exit_code=0 if outcome.ok else 1,
        )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: this benchmark needs Linux")


def walk(url: str, pages: int) -> int:
    session = requests.Session()
    count = 0

    def get(path: str, **kwargs: object) -> requests.Response:
        nonlocal count
        answer = session.get(url + path, timeout=60, **kwargs)  # type: ignore[arg-type]
        answer.raise_for_status()
        count += 1
        return answer

    listing = get("/api/runs", params={"per_page": 50}).json()
    for page in range(1, min(pages, 40) + 1):
        get("/", params={"page": page})
    get("/", params={"status": "failed"})
    get("/", params={"branch": "main", "flow": "flow_03"})
    for run in listing["runs"]:
        get(f"/runs/{run['id']}")
        get(f"/api/runs/{run['id']}")
        get(f"/api/runs/{run['id']}/log")
    for i in range(20):
        get(f"/flows/flow_{i:02d}")
    flows = get(f"/api/runs/{listing['runs'][0]['id']}/flows").json()
    digest = flows[0]["app_logs"]
    first = get(f"/api/blobs/{digest}").json()
    for page in range(first["pages"]):
        get(f"/blobs/{digest}", params={"page": page})
    with session.get(
        f"{url}/api/runs/{listing['runs'][0]['id']}/stream", stream=True, timeout=30
    ) as stream:
        for _ in stream.iter_lines():
            pass
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--flows", type=int, default=10, help="flows per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "flows").mkdir()
        (root / "flows" / "__init__.py").write_text("")
        (root / "nocrud.yaml").write_text(
            'project: bench\napp:\n  image: bench/app:1\ndatabase:\n  migrate: ["true"]\n'
        )
        db = root / ".nocrud" / "history.db"
        store = RunStore(f"sqlite:///{db}")
        t0 = time.monotonic()
        record(store, args.runs, args.flows)
        store.close()
        recorded = time.monotonic() - t0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        nocrud = Path(sys.executable).parent / "nocrud"
        env = {**os.environ, "NO_COLOR": "1", "NOCRUD_STORE_KEEP_RUNS": str(args.runs * 2)}
        serve = subprocess.Popen(
            [str(nocrud), "-c", str(root / "nocrud.yaml"), "serve", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(url + "/api/meta", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("nocrud serve did not start")
                time.sleep(0.1)
            started = peak_rss_mb(serve.pid)
            t1 = time.monotonic()
            requests_made = walk(url, pages=-(-args.runs // 25))
            walked = time.monotonic() - t1
            peak = peak_rss_mb(serve.pid)
        finally:
            serve.terminate()
            serve.wait(timeout=30)
        size = sum(p.stat().st_size for p in db.parent.glob("history.db*")) / 1e6
    print(f"runs recorded:        {args.runs} x {args.flows} flows in {recorded:.1f} s")
    print(f"store size:           {size:.1f} MB (SQLite, WAL)")
    print(f"serve peak RSS, idle: {started:.1f} MB")
    print(f"serve peak RSS, after {requests_made} requests ({walked:.1f} s): {peak:.1f} MB")
    verdict = "under" if peak < TARGET_MB else "OVER"
    print(f"target: peak RSS < {TARGET_MB:.0f} MB: {verdict} ({peak:.1f} MB)")
    return 0 if peak < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
