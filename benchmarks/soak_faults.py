"""Soak under fire (``benchmarks/soak.py --faults``): every flow counted once, whatever breaks.

Two runs of the soak's flows (each writes rows and must see only its own, here with a
pause mid-flow) at ``-j 8`` on a Docker-in-Docker daemon started for the soak:

1. while it runs, random app and database containers are killed mid-flow; once a third
   of its flows have reported, the DinD daemon is restarted: the run must exit 3;
2. a second run on the same (restarted) daemon, killed containers again: it must finish
   (exit 0, or 1 when a kill made a flow fail).

After each run every flow must appear exactly once, with the same status, in the terminal
summary, the JSON, the JUnit file and the run store (under the run's one id); the counts
of each must add up. After both: no labelled object left on the daemon, and no flow saw
another's rows. Usage::

    v/bin/python benchmarks/soak.py --faults                 # 300 flows, -j 8
    v/bin/python benchmarks/soak.py --faults -n 16 --json faults.json
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
#: Seconds each flow pauses between writing its rows and reading them back: the window
#: in which its containers are killed.
PAUSE = 2.0
#: Seconds between two kills.
KILL_INTERVAL = 1.5
_ROW = re.compile(r"^(soak_\d{4})\s+(passed|failed|error|skipped)\s")
_TOTAL = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def _module(name: str) -> ModuleType:
    """A sibling benchmark script as a module (they are scripts, not a package)."""
    key = f"nocrud_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@dataclass
class FaultRun:
    """One run under fire, as every report of it counted it."""

    name: str
    flows: int
    exit_code: int
    wall_time: float
    run_id: str = ""
    statuses: dict[str, int] = field(default_factory=dict)
    kills: list[str] = field(default_factory=list)
    restarted_after: int = 0
    cross_flow_flows: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Killer(threading.Thread):
    """Kills a random running app or database container of the project now and then."""

    def __init__(self, client: Any, project: str, *, limit: int, seed: int) -> None:
        super().__init__(name="soak-killer", daemon=True)
        self.client = client
        self.project = project
        self.limit = limit
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.kills: list[str] = []

    def run(self) -> None:
        while len(self.kills) < self.limit and not self.stop.wait(KILL_INTERVAL):
            try:
                running = [
                    c
                    for c in self.client.api.containers(
                        filters={"label": f"nocrud.project={self.project}", "status": "running"}
                    )
                    if c["Labels"].get("nocrud.role") in ("app", "db")
                ]
                if not running:
                    continue
                victim = self.random.choice(running)
                self.client.api.kill(victim["Id"])
            except (docker.errors.DockerException, OSError):
                continue  # the daemon is restarting, or the container already went
            labels = victim["Labels"]
            self.kills.append(f"{labels['nocrud.role']} of {labels.get('nocrud.flow', '?')}")


def account(run: FaultRun, workdir: Path, output: str) -> None:
    """Every flow once, with one status, in the terminal, JSON, JUnit and the store."""
    expected = {f"soak_{n:04d}" for n in range(1, run.flows + 1)}
    results = workdir / f"{run.name}.json"
    if not results.exists():
        run.problems.append(f"no results file {results.name}")
        return
    data = json.loads(results.read_text())
    run.run_id = str(data["run_id"])
    names = [f["name"] for f in data["flows"]]
    json_map = {f["name"]: f["status"] for f in data["flows"]}
    if len(names) != len(set(names)):
        run.problems.append(f"JSON: a flow twice: {sorted(n for n in names if names.count(n) > 1)}")
    if set(names) != expected:
        run.problems.append(f"JSON: flows missing: {sorted(expected - set(names))[:5]}")
    counted = Counter(json_map.values())
    run.statuses = dict(counted)
    totals = data["totals"]
    if any(totals.get(s, 0) != counted.get(s, 0) for s in ("passed", "failed", "error", "skipped")):
        run.problems.append(f"JSON: totals {totals} do not match its flows {dict(counted)}")
    for where, found in (
        ("JUnit", _junit(workdir / f"{run.name}.xml", run)),
        ("terminal", _terminal(output, run)),
        ("store", _store(workdir, run)),
    ):
        if found != json_map:
            differ = sorted(n for n in expected if found.get(n) != json_map.get(n))
            run.problems.append(
                f"{where} and JSON disagree on {len(differ)} flow(s), e.g. "
                + ", ".join(f"{n}: {found.get(n)} vs {json_map.get(n)}" for n in differ[:3])
            )
    for flow in data["flows"]:
        foreign = re.search(r"foreign=(\d+)", flow.get("output", ""))
        if "another flow's rows" in flow.get("message", "") or (
            foreign and foreign.group(1) != "0"
        ):
            run.cross_flow_flows.append(flow["name"])
    if run.cross_flow_flows:
        run.problems.append(f"cross-flow data seen by {run.cross_flow_flows[:5]}")


def _junit(path: Path, run: FaultRun) -> dict[str, str]:
    if not path.exists():
        run.problems.append(f"no JUnit file {path.name}")
        return {}
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    found: dict[str, str] = {}
    for case in suite.iter("testcase"):
        status = next((s for tag, s in _JUNIT_TAGS.items() if case.find(tag) is not None), "passed")
        name = str(case.get("name"))
        if name in found:
            run.problems.append(f"JUnit: {name} twice")
        found[name] = status
    counted = Counter(found.values())
    for attribute, status in (("failures", "failed"), ("errors", "error"), ("skipped", "skipped")):
        if int(suite.get(attribute, "0")) != counted.get(status, 0):
            run.problems.append(f"JUnit: {attribute}={suite.get(attribute)} but {counted}")
    if int(suite.get("tests", "0")) != len(found):
        run.problems.append(f"JUnit: tests={suite.get('tests')} but {len(found)} test cases")
    return found


_JUNIT_TAGS = {"failure": "failed", "error": "error", "skipped": "skipped"}


def _terminal(output: str, run: FaultRun) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in output.splitlines():
        match = _ROW.match(line)
        if match:
            if match.group(1) in found:
                run.problems.append(f"terminal: {match.group(1)} twice in the summary")
            found[match.group(1)] = match.group(2)
    totals = next((x for x in reversed(output.splitlines()) if re.search(r" in [\d.]+s", x)), "")
    said = {
        w.rstrip("s") if w.startswith("error") else w: int(n) for n, w in _TOTAL.findall(totals)
    }
    counted = Counter(found.values())
    if said != dict(counted):
        run.problems.append(f"terminal: totals line {totals!r} but its table has {dict(counted)}")
    return found


def _store(workdir: Path, run: FaultRun) -> dict[str, str]:
    path = workdir / ".nocrud" / "history.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute(
            "SELECT total, passed, failed, errors, skipped, nocrud_run_id FROM runs WHERE id = ?",
            (run.run_id,),
        ).fetchone()
        flows = db.execute(
            "SELECT name, status FROM flows WHERE run_id = ?", (run.run_id,)
        ).fetchall()
    if row is None:
        run.problems.append(f"store: no run {run.run_id} (the id the terminal and JSON show)")
        return {}
    found = {str(name): str(status) for name, status in flows}
    counted = Counter(found.values())
    stored = dict(zip(("total", "passed", "failed", "error", "skipped"), row[:5], strict=True))
    if stored["total"] != len(found) or any(
        stored[s] != counted.get(s, 0) for s in ("passed", "failed", "error", "skipped")
    ):
        run.problems.append(f"store: counts {stored} but its flows {dict(counted)}")
    if row[5] != run.run_id:
        run.problems.append(f"store: nocrud_run_id {row[5]!r}, not {run.run_id}")
    return found


def _up(
    name: str, config: Path, workdir: Path, env: dict[str, str], parallel: int
) -> subprocess.Popen[str]:
    command = [
        str(Path(sys.executable).parent / "nocrud"), "-c", str(config), "up",
        "-j", str(parallel),
        "--json", str(workdir / f"{name}.json"),
        "--junit", str(workdir / f"{name}.xml"),
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        env=env,
        stdout=(workdir / f"{name}.txt").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _passed(workdir: Path, name: str) -> int:
    return (workdir / f"{name}.txt").read_text(errors="replace").count("\nPASSED ")


@dataclass
class Daemon:
    """The soak's DinD daemon: its container, where the host reaches it, a client of it."""

    container: Any
    port: int
    ip: str
    client: Any

    def env(self, base: dict[str, str]) -> dict[str, str]:
        # Its published ports live on the DinD container: reached at its address on the
        # soak's own network (DOCKER_HOST alone would say 127.0.0.1).
        return {
            **base,
            "DOCKER_HOST": f"tcp://127.0.0.1:{self.port}",
            "NOCRUD_DOCKER_HOST_IP": self.ip,
        }

    def close(self) -> None:
        self.client.close()

    def refresh(self, network: str) -> None:
        """After a restart: the port and address may have changed; a new client."""
        workers = _module("workers")
        self.container.reload()
        if not self.container.attrs["NetworkSettings"]["Ports"].get("2375/tcp"):
            logs = self.container.logs(tail=30).decode(errors="replace")
            raise RuntimeError(
                f"the DinD daemon did not come back ({self.container.status}):\n{logs}"
            )
        self.port = int(self.container.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"])
        self.ip = self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        self.client.close()
        self.client = workers._wait_for_daemon(f"tcp://127.0.0.1:{self.port}", self.container)


def run_faults(
    *, flows: int, parallel: int, project: str, workdir: Path, deadline: float, dind_image: str
) -> tuple[bool, list[FaultRun]]:
    """The two runs under fire; True when every check held."""
    soak = _module("soak")
    workers = _module("workers")
    workdir.mkdir(parents=True, exist_ok=True)
    config = soak.write_project(workdir, project, flows, pause=PAUSE)
    config = config.rename(workdir / "nocrud.yaml")  # the store: workdir/.nocrud/history.db
    host = docker.from_env(timeout=120)
    labels = {"nocrud.soak": project}
    runs: list[FaultRun] = []
    with contextlib.ExitStack() as stack:
        stack.callback(host.close)
        archive = workdir / "images.tar"
        stack.callback(archive.unlink, missing_ok=True)
        base = soak._env()
        _check(["-c", str(config), "images", "export", str(archive)], base, deadline)
        network = host.networks.create(f"nocrud-soak-{project}", labels=labels)
        stack.callback(network.remove)
        container, port, nested = workers.start_dind(
            host, stack, f"nocrud-soak-{project}-dind", labels, network.name, image=dind_image,
            own_cgroup=False, restartable=True,
        )  # fmt: skip
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        daemon = Daemon(container, port, ip, nested)
        stack.callback(daemon.close)  # the client of the day: a restart replaces it
        _check(["-c", str(config), "images", "import", str(archive)], daemon.env(base), deadline)
        print(f"soak --faults: {flows} flows at -j {parallel} on DinD (files in {workdir})")

        first = FaultRun("run-1", flows, exit_code=-1, wall_time=0.0)
        killer = Killer(daemon.client, project, limit=max(2, flows // 10), seed=1)
        started = time.monotonic()
        proc = _up(first.name, config, workdir, daemon.env(base), parallel)
        killer.start()
        restart_after = max(2, flows // 3)
        while proc.poll() is None and _passed(workdir, first.name) < restart_after:
            if time.monotonic() - started > deadline:
                break
            time.sleep(0.2)
        first.restarted_after = _passed(workdir, first.name)
        killer.stop.set()
        # The daemon dies, as a crashed or OOM-killed dind does, and comes back on the
        # same volume (its images kept); the run's containers go with it.
        container.kill()
        container.start()
        first.exit_code = _wait(proc, started + deadline)
        first.wall_time = round(time.monotonic() - started, 1)
        killer.join()
        first.kills = killer.kills
        daemon.refresh(network.name)
        account(first, workdir, (workdir / f"{first.name}.txt").read_text(errors="replace"))
        if first.exit_code != 3:
            first.problems.append(f"exit {first.exit_code} after the daemon's restart, not 3")
        if not first.statuses.get("error"):
            first.problems.append("no flow was in flight at the restart: it tested nothing")
        runs.append(first)
        print(f"  run 1: exit {first.exit_code} in {first.wall_time} s, {first.statuses}")

        second = FaultRun("run-2", flows, exit_code=-1, wall_time=0.0)
        killer = Killer(daemon.client, project, limit=max(2, flows // 10), seed=2)
        started = time.monotonic()
        proc = _up(second.name, config, workdir, daemon.env(base), parallel)
        killer.start()
        second.exit_code = _wait(proc, started + deadline)
        second.wall_time = round(time.monotonic() - started, 1)
        killer.stop.set()
        killer.join()
        second.kills = killer.kills
        account(second, workdir, (workdir / f"{second.name}.txt").read_text(errors="replace"))
        if second.exit_code not in (0, 1):
            second.problems.append(f"the second run exited {second.exit_code}, not 0 or 1")
        if not second.kills:
            second.problems.append("nothing was killed during the second run")
        left = soak.labelled(daemon.client, project)
        if left:
            second.problems.append(f"left on the daemon: {left[:5]}")
        runs.append(second)
        print(f"  run 2: exit {second.exit_code} in {second.wall_time} s, {second.statuses}")
    ok = all(not r.problems for r in runs)
    for r in runs:
        print(f"  {r.name}: killed {len(r.kills)}: {', '.join(r.kills[:6])}")
        for problem in r.problems:
            print(f"PROBLEM ({r.name}): {problem}")
    print("soak --faults: OK" if ok else "soak --faults: FAILED")
    return ok, runs


def _check(args: list[str], env: dict[str, str], deadline: float) -> None:
    command = [str(Path(sys.executable).parent / "nocrud"), *args]
    proc = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=deadline, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _wait(proc: subprocess.Popen[str], deadline: float) -> int:
    try:
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def write_json(path: Path, ok: bool, runs: list[FaultRun]) -> None:
    path.write_text(json.dumps({"ok": ok, "runs": [asdict(r) for r in runs]}, indent=2))
