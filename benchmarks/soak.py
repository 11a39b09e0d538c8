"""Soak: many flows through the real ``nocrud up``, checking what must never happen.

Runs N flows (default 200) at ``-j 8`` on the bundled example app. Every flow
logs in, writes rows through the API, then reads the API's list and its own
database and asserts it sees only its own rows (like flows/isolation.py), and
logs the addresses it used and when. Afterwards the script reports:

* passed / failed / errored flows, wall time, provision p50/p95;
* **leaked objects**: containers and networks labelled with the soak's project
  once ``nocrud up`` has exited (must be 0);
* **cross-flow data**: rows of another flow seen by any flow (must be 0);
* **port collisions**: two flows running at the same time that reached their app
  or database at the same address (from the flows' own logs), or two running
  containers publishing the same host port (sampled from Docker while the run
  goes on) (must be 0);
* the runner's **peak RSS** (``wait4`` of the ``nocrud`` child), at a baseline
  size (N/4 by default) and at N, to show that memory does not grow with the
  number of flows.

Bounded: every run has a deadline after which it is interrupted (SIGINT, then
SIGKILL). Exit status 0 when every check holds. Usage::

    v/bin/python benchmarks/soak.py                    # 50 then 200 flows at -j 8
    v/bin/python benchmarks/soak.py -n 24 --baseline 0 --json soak.json
    v/bin/python benchmarks/soak.py --faults        # under fire: see soak_faults.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

REPO = Path(__file__).resolve().parent.parent
NOCRUD = str(Path(sys.executable).parent / "nocrud")
SAMPLE_INTERVAL = 0.5
#: Memory is "flat" when N flows peak at most this much above the baseline run...
FLAT_RATIO = 1.15
#: ...or at most this many bytes per extra flow (results kept for the report are small).
FLAT_BYTES_PER_FLOW = 64 * 1024

SOAK_FLOWS = '''
"""Soak flows: each writes rows and must see only its own, and logs what it reached and when."""

import time
import uuid
from urllib.parse import urlparse

from nocrud.flows import flow

COUNT = {count}
ROWS = 3
#: Seconds between writing the rows and reading them back (``--faults`` kills in it).
PAUSE = {pause}


def _make(number):
    @flow(name=f"soak_{{number:04d}}", tags=["soak"])
    def soak(ctx):
        started = time.time()
        app = urlparse(ctx.base_url)
        token = ctx.api.post(
            "/api/auth/login", json={{"username": "editor", "password": "editor-password"}}
        ).data["token"]
        headers = {{"Authorization": f"Bearer {{token}}"}}
        marker = f"soak-{{number:04d}}-{{uuid.uuid4().hex[:8]}}"
        for index in range(ROWS):
            ctx.api.post(
                "/api/sites",
                json={{
                    "name": f"{{marker}}-{{index}}",
                    "contact": "Soak Flow",
                    "address": f"{{index}} Soak Street",
                    "state_or_region": "Soakshire",
                    "country": "Testland",
                    "postcode_or_zip": f"S{{number:04d}} {{index}}",
                }},
                headers=headers,
                expect=201,
            )
        time.sleep(PAUSE)
        page = ctx.api.get("/api/sites", params={{"limit": 100}}).data
        listed = [site["name"] for site in page["items"]]
        with ctx.db.cursor() as cur:
            cur.execute("SELECT name FROM site WHERE name LIKE 'soak-%'")
            stored = [row[0] for row in cur.fetchall()]
        db = ctx.db.info
        foreign = sorted(
            {{n for n in listed + stored if n.startswith("soak-") and not n.startswith(marker)}}
        )
        ctx.log(
            f"soak app={{app.hostname}}:{{app.port}} db={{db.host}}:{{db.port}} "
            f"t0={{started:.3f}} t1={{time.time():.3f}} foreign={{len(foreign)}}"
        )
        assert not foreign, f"another flow's rows are visible: {{foreign}}"
        mine = sorted(f"{{marker}}-{{i}}" for i in range(ROWS))
        assert sorted(n for n in listed if n.startswith(marker)) == mine, listed
        assert sorted(stored) == mine, stored

    globals()[f"soak_{{number:04d}}"] = soak


for _number in range(1, COUNT + 1):
    _make(_number)
'''


@dataclass
class RunFigures:
    """What one ``nocrud up`` of the soak produced."""

    flows: int
    parallel: int
    exit_code: int
    wall_time: float
    passed: int = 0
    failed: int = 0
    errors: int = 0
    other: int = 0
    leaked: list[str] = field(default_factory=list)
    cross_flow_rows: int = 0
    cross_flow_flows: list[str] = field(default_factory=list)
    unreported_flows: list[str] = field(default_factory=list)
    port_collisions: list[str] = field(default_factory=list)
    live_port_collisions: list[str] = field(default_factory=list)
    peak_live_containers: int = 0
    peak_rss_bytes: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    provision_p50: float = 0.0
    provision_p95: float = 0.0
    timed_out: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def write_project(workdir: Path, project: str, count: int, *, pause: float = 0.0) -> Path:
    """A nocrud.yaml for example_app and a flows package of ``count`` soak flows."""
    package = workdir / f"soakflows{count}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "soak.py").write_text(SOAK_FLOWS.format(count=count, pause=pause))
    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    data["flows"]["path"] = str(package)
    data["timeouts"]["flow"] = 120
    path = workdir / f"nocrud-{count}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def labelled(client: Any, project: str) -> list[str]:
    """Containers and networks labelled with the project (low-level lists: no inspect races)."""
    label = f"nocrud.project={project}"
    found = [
        f"container {c['Names'][0].lstrip('/')}"
        for c in client.api.containers(all=True, filters={"label": label})
    ]
    found += [f"network {n['Name']}" for n in client.api.networks(filters={"label": label})]
    return found


def _env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("NOCRUD_CONFIG", None)
    return env


def build(config: Path, deadline: float) -> None:
    """``nocrud build`` first, so the runs measure flows, not image builds."""
    proc = subprocess.run(
        [NOCRUD, "-c", str(config), "build"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=deadline,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"nocrud build failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


class _Sampler(threading.Thread):
    """Samples the runner's RSS and the host ports of the project's running containers."""

    def __init__(self, client: Any, project: str, pid: int) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.client = client
        self.project = project
        self.pid = pid
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.rss: list[tuple[float, int]] = []
        self.collisions: list[str] = []
        self.peak_live = 0

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_INTERVAL):
            rss = _vm_rss(self.pid)
            if rss is not None:
                self.rss.append((round(time.monotonic() - self.started, 2), rss))
            try:
                running = self.client.api.containers(
                    filters={"label": f"nocrud.project={self.project}", "status": "running"}
                )
            except docker.errors.DockerException:
                continue
            self.peak_live = max(self.peak_live, len(running))
            ports = Counter(
                (p.get("IP", ""), p["PublicPort"])
                for c in running
                for p in c.get("Ports") or []
                if p.get("PublicPort")
            )
            self.collisions += [f"{ip}:{port} x{n}" for (ip, port), n in ports.items() if n > 1]


def _vm_rss(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def run_once(
    client: Any, config: Path, project: str, count: int, parallel: int, workdir: Path, limit: float
) -> RunFigures:
    """One ``nocrud up`` of ``count`` soak flows, watched and then checked."""
    results = workdir / f"results-{count}.json"
    log = workdir / f"output-{count}.txt"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [NOCRUD, "-c", str(config), "up", "-j", str(parallel), "--json", str(results)],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        sampler = _Sampler(client, project, proc.pid)
        sampler.start()
        timed_out = _wait_or_interrupt(proc, started + limit)
        sampler.stop.set()
        sampler.join()
        # wait4 reaps the child and gives its own peak RSS (ru_maxrss is in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    figures = RunFigures(
        flows=count,
        parallel=parallel,
        exit_code=proc.returncode,
        wall_time=round(wall, 2),
        peak_rss_bytes=usage.ru_maxrss * 1024,
        rss_samples=sampler.rss,
        peak_live_containers=sampler.peak_live,
        live_port_collisions=sorted(set(sampler.collisions)),
        timed_out=timed_out,
    )
    figures.leaked = labelled(client, project)
    _read_results(figures, results, count)
    _judge(figures, log)
    return figures


def _wait_or_interrupt(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for the child without reaping it; past the deadline interrupt it. True if it had to."""
    while time.monotonic() < deadline:
        if _exited(proc.pid):
            return False
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # nocrud tears its environments down and exits 130
    grace = time.monotonic() + 30
    while time.monotonic() < grace:
        if _exited(proc.pid):
            return True
        time.sleep(0.2)
    proc.kill()
    return True


def _exited(pid: int) -> bool:
    """Whether the child has exited, leaving it to be reaped by ``wait4`` (no WNOHANG reap)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _read_results(figures: RunFigures, path: Path, count: int) -> None:
    if not path.exists():
        figures.problems.append(f"no results file {path.name} (the run did not finish)")
        return
    data = json.loads(path.read_text())
    flows = data["flows"]
    statuses = Counter(f["status"] for f in flows)
    figures.passed = statuses["passed"]
    figures.failed = statuses["failed"]
    figures.errors = statuses["error"]
    figures.other = len(flows) - figures.passed - figures.failed - figures.errors
    names = {f["name"] for f in flows}
    figures.unreported_flows = [
        f"soak_{n:04d}" for n in range(1, count + 1) if f"soak_{n:04d}" not in names
    ]
    provision = [f["timings"]["provision"] for f in flows if f["timings"]["provision"] > 0]
    if provision:
        figures.provision_p50 = round(statistics.median(provision), 3)
        figures.provision_p95 = round(sorted(provision)[int(0.95 * (len(provision) - 1))], 3)
    spans = []
    for flow in flows:
        line = next(
            (x for x in flow.get("output", "").splitlines() if x.startswith("soak app=")), None
        )
        if "another flow's rows" in flow.get("message", ""):
            figures.cross_flow_flows.append(flow["name"])
        if line is None:
            continue
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        figures.cross_flow_rows += int(fields["foreign"])
        if int(fields["foreign"]) and flow["name"] not in figures.cross_flow_flows:
            figures.cross_flow_flows.append(flow["name"])
        spans.append(
            (flow["name"], float(fields["t0"]), float(fields["t1"]), fields["app"], fields["db"])
        )
    for (a, a0, a1, a_app, a_db), (b, b0, b1, b_app, b_db) in itertools.combinations(spans, 2):
        overlap = a0 < b1 and b0 < a1
        shared = {a_app, a_db} & {b_app, b_db}
        if overlap and shared:
            figures.port_collisions.append(f"{a} and {b} both reached {', '.join(sorted(shared))}")


def _judge(figures: RunFigures, log: Path) -> None:
    if figures.timed_out:
        figures.problems.append("the run hit the soak's deadline and was interrupted")
    if figures.exit_code != 0:
        figures.problems.append(f"nocrud up exited {figures.exit_code} (output in {log})")
    if figures.passed != figures.flows:
        figures.problems.append(
            f"{figures.flows - figures.passed} of {figures.flows} flows did not pass"
        )
    if figures.unreported_flows:
        figures.problems.append(f"{len(figures.unreported_flows)} flows missing from the results")
    if figures.leaked:
        figures.problems.append(f"leaked: {', '.join(figures.leaked[:5])}")
    if figures.cross_flow_rows or figures.cross_flow_flows:
        figures.problems.append(
            f"cross-flow data: {figures.cross_flow_rows} row(s) seen by "
            f"{', '.join(figures.cross_flow_flows[:5])}"
        )
    if figures.port_collisions or figures.live_port_collisions:
        figures.problems.append(
            "port collisions: "
            + "; ".join((figures.port_collisions + figures.live_port_collisions)[:5])
        )


def memory_verdict(small: RunFigures, large: RunFigures) -> tuple[bool, str]:
    """Whether the runner's peak RSS stayed flat from the baseline size to the full size."""
    extra = large.flows - small.flows
    growth = large.peak_rss_bytes - small.peak_rss_bytes
    per_flow = growth / extra if extra > 0 else 0.0
    flat = (
        large.peak_rss_bytes <= small.peak_rss_bytes * FLAT_RATIO or per_flow <= FLAT_BYTES_PER_FLOW
    )
    text = (
        f"peak RSS {_mib(small.peak_rss_bytes)} at {small.flows} flows, "
        f"{_mib(large.peak_rss_bytes)} at {large.flows} flows "
        f"({growth / 2**20:+.1f} MiB, {per_flow / 1024:+.1f} KiB per extra flow): "
        + ("flat" if flat else "GROWS with the number of flows")
    )
    return flat, text


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB"


def _quarters(samples: list[tuple[float, int]]) -> str:
    if not samples:
        return "no samples"
    picks = [
        samples[min(len(samples) - 1, int(q * (len(samples) - 1)))] for q in (0, 0.25, 0.5, 0.75, 1)
    ]
    return "  ".join(f"{t:.0f}s:{_mib(rss)}" for t, rss in picks)


def print_table(runs: list[RunFigures]) -> None:
    header = (
        f"{'flows':>6} {'passed':>6} {'failed':>6} {'error':>6} {'wall':>8} "
        f"{'prov p50':>8} {'prov p95':>8} {'peak RSS':>10} {'leaked':>6} "
        f"{'cross':>5} {'ports':>5} {'live':>4}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.flows:>6} {r.passed:>6} {r.failed:>6} {r.errors:>6} {r.wall_time:>7.1f}s "
            f"{r.provision_p50:>7.2f}s {r.provision_p95:>7.2f}s {_mib(r.peak_rss_bytes):>10} "
            f"{len(r.leaked):>6} {r.cross_flow_rows:>5} "
            f"{len(r.port_collisions) + len(r.live_port_collisions):>5} "
            f"{r.peak_live_containers:>4}"
        )
    print(
        "leaked = labelled containers/networks after exit; cross = other flows' rows seen; "
        "ports = collisions; live = peak running containers"
    )
    for r in runs:
        print(f"RSS over the {r.flows}-flow run: {_quarters(r.rss_samples)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n", "--flows", type=int, default=None, help="flows in the full run (200; --faults 300)"
    )
    parser.add_argument("-j", "--parallel", type=int, default=8)
    parser.add_argument(
        "--baseline",
        type=int,
        default=None,
        help="flows in the baseline run for the memory comparison (default N/4; 0: none)",
    )
    parser.add_argument("--project", default="soak", help="project name (images, labels)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds any one run may take")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="under fire instead (benchmarks/soak_faults.py): kill app and database "
        "containers mid-flow and restart a DinD daemon once; default -n 300",
    )
    parser.add_argument("--dind-image", default="nocrud/dind:1", help="the DinD image (--faults)")
    args = parser.parse_args(argv)
    if args.faults:
        return _faults(args)
    args.flows = args.flows or 200
    baseline = args.flows // 4 if args.baseline is None else args.baseline
    sizes = [n for n in (baseline, args.flows) if n > 0]

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nocrud-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    client = docker.from_env(timeout=60)
    try:
        before = labelled(client, args.project)
        if before:
            print(f"objects of project {args.project!r} exist before the soak: {before[:5]}")
            print("use another --project, or remove them (`nocrud clean` removes every run's)")
            return 2
        configs = {n: write_project(workdir, args.project, n) for n in sizes}
        build(configs[sizes[-1]], args.deadline)
        print(
            f"soak: {' then '.join(map(str, sizes))} flows at -j {args.parallel} "
            f"(project {args.project}, files in {workdir})",
            flush=True,
        )
        runs = []
        for n in sizes:
            runs.append(
                run_once(client, configs[n], args.project, n, args.parallel, workdir, args.deadline)
            )
            print(f"  {n} flows: {runs[-1].wall_time:.1f}s, exit {runs[-1].exit_code}", flush=True)
    finally:
        client.close()

    print()
    print_table(runs)
    ok = all(r.ok for r in runs)
    memory = None
    if len(runs) == 2:
        flat, memory = memory_verdict(runs[0], runs[1])
        print(f"memory: {memory}")
        ok = ok and flat
    for r in runs:
        for problem in r.problems:
            print(f"PROBLEM ({r.flows} flows): {problem}")
    print("soak: OK" if ok else "soak: FAILED")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"ok": ok, "memory": memory, "runs": [asdict(r) for r in runs]}, indent=2)
        )
    return 0 if ok else 1


def _faults(args: argparse.Namespace) -> int:
    """``--faults``: the soak under fire, with its own checks (see soak_faults.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "nocrud_bench_soak_faults", Path(__file__).with_name("soak_faults.py")
    )
    assert spec is not None and spec.loader is not None
    faults = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = faults  # dataclasses look their module up while being defined
    spec.loader.exec_module(faults)
    flows = args.flows or 300
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nocrud-soak-faults-"))
    ok, runs = faults.run_faults(
        flows=flows,
        parallel=args.parallel,
        project=args.project,
        workdir=workdir,
        deadline=args.deadline,
        dind_image=args.dind_image,
    )
    if args.json is not None:
        faults.write_json(args.json, ok, runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
