"""Flows per minute with one and two Celery workers, each on its own Docker daemon.

The rig (also used by tests/e2e/test_workers_e2e.py): Debian's ``redis-server`` on this
machine's loopback (TCP for the coordinator, a Unix socket for the workers), two
Docker-in-Docker daemons from images/dind (started as docs/ci/dind.md says, without
``--privileged``), the project's images copied into each with ``nocrud images export`` /
``import``, and one ``nocrud worker`` per daemon. A worker runs on this machine inside its
daemon's network namespace (``nsenter -n``), so it reaches its daemon and the ports its
flows publish on that namespace's 127.0.0.1, like a worker on its own host; the
coordinator (``nocrud up --broker``) runs on this machine.

On one 2-core machine the two daemons compete for the same CPUs (and, on a shared
machine, with everyone else's work), so the script also measures what each flow costs
the rig itself: the containers each nested daemon ran (a cgroup of their own, given by
``dockerd --cgroup-parent``), the nested daemon (its container's CPU accounting), the
worker process and the coordinator. A separate host runs what one worker runs alone
here, at most (its cores / those CPU seconds) flows per second.

    v/bin/python benchmarks/workers.py --flows 24 --concurrency 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NOCRUD = [str(Path(sys.executable).parent / "nocrud")]
DIND_IMAGE = "nocrud/dind:1"
#: Per-flow limits of the rig's flows; the workers' visibility timeout must exceed their sum
#: plus the worker's teardown margin (15 s). ``flow`` exceeds the long flows' pause.
TIMEOUTS = {"db_ready": 45, "app_ready": 45, "flow": 120}
VISIBILITY_TIMEOUT = sum(TIMEOUTS.values()) + 15 + 30
#: The long flows' pause: longer than a dead coordinator's heartbeat takes to lapse (30 s)
#: plus the 60 s docs/workers.md promises, so only a teardown on that lapse ends them in time.
LONG_PAUSE = 100.0
DAEMON_READY = 60.0
WORKER_READY = 240.0

FLOWS = '''"""The rig's flows: quick (one request), slow and long (a request, a pause, another).

Slow and long flows leave a marker file once their pause begins, so the tests can
strike while a flow runs, not while its environment starts.
"""

import time
from pathlib import Path

from nocrud import flow

MARKERS = Path({markers!r})


def pausing(name):
    (MARKERS / name).touch()
{defs}
'''
QUICK = """

@flow(tags=["quick"])
def quick_{i:02d}(ctx):
    ctx.api.get("/health", expect=200)
"""
SLOW = """

@flow(tags=["slow"])
def slow_{i:02d}(ctx):
    ctx.api.get("/health", expect=200)
    pausing("slow_{i:02d}")
    time.sleep({pause})
    ctx.api.get("/health", expect=200)
"""
LONG = """

@flow(tags=["long"])
def long_{i:02d}(ctx):
    ctx.api.get("/health", expect=200)
    pausing("long_{i:02d}")
    time.sleep({pause})
    ctx.api.get("/health", expect=200)
"""


def write_project(
    directory: Path, project: str, *, quick: int, slow: int, pause: float, long: int = 0
) -> Path:
    """A nocrud.yaml for example_app under ``project``, with the rig's flows package."""
    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    package = directory / f"rigflows_{project}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    defs = "".join(QUICK.format(i=i) for i in range(quick))
    defs += "".join(SLOW.format(i=i, pause=pause) for i in range(slow))
    defs += "".join(LONG.format(i=i, pause=LONG_PAUSE) for i in range(long))
    markers = directory / "markers"
    markers.mkdir(exist_ok=True)
    (package / "test_rig.py").write_text(FLOWS.format(defs=defs, markers=str(markers)))
    data["flows"] = {"path": str(package)}
    data["timeouts"] = {**data.get("timeouts", {}), **TIMEOUTS}
    path = directory / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **extra}
    env.pop("NOCRUD_CONFIG", None)
    return env


@dataclass
class Host:
    """One worker's "host": a DinD daemon and the worker in its network namespace."""

    name: str
    container: Any
    port: int
    client: Any
    log: Path
    worker: subprocess.Popen[bytes] | None = None
    log_handles: list[Any] = field(default_factory=list)
    #: Where the log of the worker started last begins.
    log_start: int = 0

    @property
    def pid(self) -> int:
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    @property
    def cgroup_parent(self) -> str:
        """The cgroup the nested daemon puts its containers in (``dockerd --cgroup-parent``)."""
        return f"/{self.container.name}"

    def cpu(self) -> HostCpu:
        """CPU seconds this "host" used so far, by part."""
        stats = self.container.stats(stream=False)
        return HostCpu(
            daemon=float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9,
            flows=_cgroup_cpu_seconds(self.cgroup_parent),
            worker=_process_cpu_seconds(self.worker.pid) if self.worker is not None else 0.0,
        )


@dataclass(frozen=True)
class HostCpu:
    """CPU seconds of one rig host: its nested daemon (dockerd, containerd, shims), the
    containers it ran (PostgreSQL and the app of each flow), and its ``nocrud worker``."""

    daemon: float = 0.0
    flows: float = 0.0
    worker: float = 0.0

    def __add__(self, other: HostCpu) -> HostCpu:
        return HostCpu(
            self.daemon + other.daemon, self.flows + other.flows, self.worker + other.worker
        )

    def __sub__(self, other: HostCpu) -> HostCpu:
        return HostCpu(
            self.daemon - other.daemon, self.flows - other.flows, self.worker - other.worker
        )

    @property
    def total(self) -> float:
        return self.daemon + self.flows + self.worker


class Rig:
    """Redis, ``hosts`` DinD daemons with a worker each; a context manager that removes it all.

    Args:
        client: The outer Docker daemon.
        project: Project name (images, labels); every object carries ``nocrud.e2e=<project>``.
        directory: Where the config, flows, logs, socket and image archive go.
        hosts: How many daemons and workers.
        concurrency: Each worker's ``-j``.
        quick, slow, pause, long: The flows package (see :func:`write_project`).
        say: Progress lines.
    """

    def __init__(
        self,
        client: Any,
        project: str,
        directory: Path,
        *,
        hosts: int = 2,
        concurrency: int = 2,
        quick: int = 16,
        slow: int = 2,
        pause: float = 6.0,
        long: int = 0,
        say: Any = print,
    ) -> None:
        self.client = client
        self.project = project
        self.dir = directory
        self.count = hosts
        self.concurrency = concurrency
        self.say = say
        self.labels = {"nocrud.e2e": project}
        self.config = write_project(
            directory, project, quick=quick, slow=slow, pause=pause, long=long
        )
        self.hosts: list[Host] = []
        self.redis_port = _free_port()
        self.socket = directory / "redis.sock"
        self._stack = contextlib.ExitStack()

    # -- URLs ------------------------------------------------------------------------

    @property
    def broker(self) -> str:
        """The coordinator's broker URL: TCP on loopback."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def worker_broker(self) -> str:
        """The workers' broker URL: the same server through its socket (they live elsewhere)."""
        return f"unix://{self.socket}?db=0"

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Rig:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        started = time.monotonic()
        self._start_redis()
        archive = self.dir / "images.tar"
        self._stack.callback(archive.unlink, missing_ok=True)
        self._nocrud("images", "export", str(archive), timeout=1200)
        self.say(f"rig: images exported ({archive.stat().st_size / 2**20:.0f} MiB)")
        network = self.client.networks.create(f"nocrud-rig-{self.project}", labels=self.labels)
        self._stack.callback(network.remove)
        self.hosts = [self._start_daemon(i, network.name) for i in range(1, self.count + 1)]
        # Both daemons load at once: most of the time goes to writing layers, per daemon.
        with concurrent.futures.ThreadPoolExecutor(len(self.hosts)) as pool:
            loads = [
                pool.submit(
                    self._nocrud,
                    "images",
                    "import",
                    str(archive),
                    env={"DOCKER_HOST": f"tcp://127.0.0.1:{host.port}"},
                    timeout=3600,
                )
                for host in self.hosts
            ]
            for load in loads:
                load.result()
        for host in self.hosts:
            self.start_worker(host)
        for host in self.hosts:
            self.wait_for_worker(host)
        self.say(f"rig: {self.count} worker(s) ready in {time.monotonic() - started:.0f} s")

    def _start_redis(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        proc = subprocess.Popen(
            [
                server,
                "--bind", "127.0.0.1",
                "--port", str(self.redis_port),
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self._stack.callback(_stop, proc)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def _start_daemon(self, index: int, network: str) -> Host:
        name = f"nocrud-rig-{self.project}-{index}"
        container, port, nested = start_dind(self.client, self._stack, name, self.labels, network)
        host = Host(
            f"w{index}@rig-{index}", container, port, nested, self.dir / f"worker{index}.log"
        )
        self._stack.callback(self.stop_worker, host)
        return host

    # -- workers ---------------------------------------------------------------------

    def start_worker(self, host: Host) -> None:
        """``nocrud worker`` in the daemon's network namespace, talking to it at 127.0.0.1."""
        out = host.log.open("ab")
        host.log_handles.append(out)
        host.log_start = out.tell()
        host.worker = subprocess.Popen(
            [
                "nsenter", "-t", str(host.pid), "-n", "--",
                *NOCRUD, "-c", str(self.config), "worker",
                "--broker", self.worker_broker,
                "--name", host.name,
                "-j", str(self.concurrency),
                "--visibility-timeout", str(VISIBILITY_TIMEOUT),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(DOCKER_HOST="tcp://127.0.0.1:2375"),
            start_new_session=True,
        )  # fmt: skip

    def wait_for_worker(self, host: Host) -> None:
        ready = f"worker {host.name}: up to"
        deadline = time.monotonic() + WORKER_READY
        while ready not in self.worker_log(host):
            assert host.worker is not None
            if host.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"worker {host.name} did not start:\n{self.worker_log(host)[-4000:]}"
                )
            time.sleep(0.2)

    def worker_log(self, host: Host) -> str:
        """What the worker started last has written."""
        with host.log.open("rb") as log:
            log.seek(host.log_start)
            return log.read().decode(errors="replace")

    def stop_worker(self, host: Host, sig: int = signal.SIGTERM) -> None:
        """Stop the worker (warm shutdown on SIGTERM); SIGKILL it if it lingers."""
        proc, host.worker = host.worker, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for handle in host.log_handles:
            handle.close()
        host.log_handles.clear()

    def restart_daemon(self, host: Host) -> None:
        """Start a killed DinD daemon again (its volume keeps the images) and a new worker."""
        self.stop_worker(host, signal.SIGKILL)
        host.container.start()
        host.client.close()
        host.client = _wait_for_daemon(f"tcp://127.0.0.1:{host.port}", host.container)
        self.start_worker(host)
        self.wait_for_worker(host)

    # -- running ---------------------------------------------------------------------

    def _nocrud(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*NOCRUD, "-c", str(self.config), *args],
            cwd=self.dir,
            env=_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"nocrud {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def up_command(self, *args: str) -> list[str]:
        return [*NOCRUD, "-c", str(self.config), "up", "--broker", self.broker, *args]

    def up(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.up_command(*args),
            cwd=self.dir,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_up(self, *args: str, output: Path) -> subprocess.Popen[bytes]:
        """``nocrud up --broker`` in the background, its output going to ``output``."""
        with output.open("wb") as out:
            return subprocess.Popen(
                self.up_command(*args), cwd=self.dir, env=_env(), stdout=out, stderr=out
            )

    def redis(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.redis_port, decode_responses=True)

    def pausing_on(self, host: Host) -> list[str]:
        """The slow or long flows in their pause on ``host``: running there, marker left."""
        return [f for f in self.running_on(host) if (self.dir / "markers" / f).exists()]

    def clear_markers(self) -> None:
        for marker in (self.dir / "markers").iterdir():
            marker.unlink()

    def running_on(self, host: Host) -> list[str]:
        """The flows whose attempt runs on ``host`` now: their lease names its worker."""
        client = self.redis()
        try:
            return sorted(
                str(key).rsplit(":", 1)[1]
                for key in client.scan_iter("nocrud:*:lease:*")
                if str(client.get(key) or "").endswith(f" {host.name}")
            )
        finally:
            client.close()

    def leftovers(self, host: Host) -> list[str]:
        """Containers and networks of this project still on a nested daemon."""
        label = f"nocrud.project={self.project}"
        found = [
            f"container {c['Names'][0]}"
            for c in host.client.api.containers(all=True, filters={"label": label})
        ]
        found += [
            f"network {n['Name']}" for n in host.client.api.networks(filters={"label": label})
        ]
        return found


def start_dind(
    client: Any,
    stack: contextlib.ExitStack,
    name: str,
    labels: dict[str, str],
    network: str,
    *,
    image: str = DIND_IMAGE,
    aliases: Sequence[str] = (),
    own_cgroup: bool = True,
    restartable: bool = False,
) -> tuple[Any, int, Any]:
    """A DinD daemon (overlay2, on a volume of its own) as docs/ci/dind.md starts it.

    Also the stand-in for GitLab's ``docker:dind`` service in tests/e2e/test_ci_shapes.py
    (``aliases=["docker"]``). With ``own_cgroup``, the containers it runs are charged to
    a cgroup of their own, ``/<name>``. With ``restartable``, ``/run`` is a tmpfs, so a
    daemon killed and started again does not find its old pid file and refuse to start.

    Returns its container, the port its API is published on at 127.0.0.1, and a client of
    it; ``stack`` removes them all (and that cgroup).
    """
    volume = client.volumes.create(name=f"{name}-lib", labels=labels)
    stack.callback(volume.remove, force=True)
    host_config = client.api.create_host_config(
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        binds={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            volume.name: {"bind": "/var/lib/docker", "mode": "rw"},
        },
        port_bindings={2375: ("127.0.0.1", None)},
        network_mode=network,
        tmpfs={"/run": ""} if restartable else None,
    )
    # `--security-opt systempaths=unconfined`, as the API spells it (docs/ci/dind.md).
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    # The nested containers' CPU adds up in a cgroup of their own (cgroup v1 charges
    # every ancestor, so removed containers still count), to be told from the rest of
    # the machine's load.
    created = client.api.create_container(
        image,
        command=[f"--cgroup-parent=/{name}"] if own_cgroup else None,
        name=name,
        labels=labels,
        ports=[2375],
        host_config=host_config,
        networking_config=client.api.create_networking_config(
            {network: client.api.create_endpoint_config(aliases=list(aliases))}
        )
        if aliases
        else None,
    )
    if own_cgroup:
        stack.callback(_remove_cgroup, f"/{name}")
    container = client.containers.get(created["Id"])
    stack.callback(container.remove, force=True, v=True)
    container.start()
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"])
    nested = _wait_for_daemon(f"tcp://127.0.0.1:{port}", container)
    stack.callback(nested.close)
    return container, port, nested


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for_daemon(base_url: str, container: Any) -> Any:
    import docker
    import docker.errors
    import requests.exceptions

    deadline = time.monotonic() + DAEMON_READY
    while True:
        try:
            return docker.DockerClient(base_url=base_url, timeout=120)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        container.reload()
        if container.status in ("exited", "dead") or time.monotonic() > deadline:
            logs = container.logs(tail=40).decode(errors="replace")
            raise RuntimeError(f"the DinD daemon did not answer ({problem}):\n{logs}")
        time.sleep(0.2)


def build_dind_image(client: Any) -> bool:
    """Build images/dind as nocrud/dind:1 unless present; True when it was built now."""
    import docker.errors

    try:
        client.images.get(DIND_IMAGE)
    except docker.errors.ImageNotFound:
        client.images.build(path=str(REPO / "images" / "dind"), tag=DIND_IMAGE, rm=True)
        return True
    return False


# ---------------------------------------------------------------- measuring


def _cgroup_dirs(parent: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    return [
        d for d in [root / parent.lstrip("/"), *root.glob(f"*/{parent.lstrip('/')}")] if d.is_dir()
    ]


def _cgroup_cpu_seconds(parent: str) -> float:
    """CPU used in cgroup ``parent`` and below: cgroup v1's cpuacct, or v2's cpu.stat."""
    for directory in _cgroup_dirs(parent):
        if (directory / "cpuacct.usage").exists():
            return int((directory / "cpuacct.usage").read_text()) / 1e9
        if (directory / "cpu.stat").exists():
            for line in (directory / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    return 0.0  # no container ran there yet


def _remove_cgroup(parent: str) -> None:
    """Remove the (by now empty) cgroup directories a nested daemon made, deepest first."""
    for directory in _cgroup_dirs(parent):
        for sub in sorted(directory.rglob("*"), key=lambda d: len(d.parts), reverse=True):
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()
        with contextlib.suppress(OSError):
            directory.rmdir()


def _process_cpu_seconds(pid: int) -> float:
    """User and system CPU of a live process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_cpu_seconds() -> float:
    """Seconds all CPUs of this machine spent not idle, since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measurement:
    """One run of the quick flows on the rig."""

    workers: int
    flows: int
    wall: float
    #: What the rig itself used: the active hosts' daemons, flow containers and workers.
    host_cpu: HostCpu
    coordinator_cpu: float
    #: The whole machine's busy CPU seconds, other people's work included (context only).
    busy_cpu: float
    load: float
    per_host: dict[str, int]

    @property
    def per_minute(self) -> float:
        return 60 * self.flows / self.wall

    @property
    def cpu_per_flow(self) -> float:
        """CPU seconds one flow costs, coordinator included."""
        return (self.host_cpu.total + self.coordinator_cpu) / self.flows


def measure(rig: Rig, workers: int, flows: int) -> Measurement:
    """Run ``flows`` quick flows on the first ``workers`` workers (the others stopped)."""
    for host in rig.hosts[workers:]:
        rig.stop_worker(host)
    for host in rig.hosts[:workers]:
        if host.worker is None:
            rig.start_worker(host)
            rig.wait_for_worker(host)
    active = rig.hosts[:workers]
    names = [arg for i in range(flows) for arg in ("-f", f"quick_{i:02d}")]
    results = rig.dir / f"measure-{workers}.json"
    cpu_before = sum((h.cpu() for h in active), HostCpu())
    busy_before = _busy_cpu_seconds()
    children_before = os.times()
    start = time.monotonic()
    proc = subprocess.Popen(
        rig.up_command(*names, "--json", str(results)),
        cwd=rig.dir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = proc.communicate(timeout=1800)
    wall = time.monotonic() - start
    busy = _busy_cpu_seconds() - busy_before
    load = os.getloadavg()[0]
    time.sleep(2)  # the workers remove the last environments in the background
    host_cpu = sum((h.cpu() for h in active), HostCpu()) - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"the measured run exited {proc.returncode}:\n{output.decode()[-3000:]}")
    data = json.loads(results.read_text())
    per_host: dict[str, int] = {}
    for flow in data["flows"]:
        per_host[flow["host"]] = per_host.get(flow["host"], 0) + 1
    children = os.times()
    coordinator = (children.children_user - children_before.children_user) + (
        children.children_system - children_before.children_system
    )
    return Measurement(
        workers=workers,
        flows=flows,
        wall=wall,
        host_cpu=host_cpu,
        coordinator_cpu=coordinator,
        busy_cpu=busy,
        load=load,
        per_host=per_host,
    )


def report(
    one: Measurement, two: Measurement, cores: int, concurrency: int, say: Any = print
) -> None:
    """Print the two rates, what a flow costs, and what N separate hosts would give."""
    for m in (one, two):
        spread = ", ".join(f"{h}: {n}" for h, n in sorted(m.per_host.items()))
        cpu = m.host_cpu
        say(
            f"{m.workers} worker(s): {m.flows} flows in {m.wall:.1f} s = {m.per_minute:.1f} "
            f"flows/min  ({spread}); load average {m.load:.1f}"
        )
        say(
            f"  per flow: {m.cpu_per_flow:.2f} CPU s = containers {cpu.flows / m.flows:.2f} + "
            f"nested daemon {cpu.daemon / m.flows:.2f} + worker {cpu.worker / m.flows:.2f} + "
            f"coordinator {m.coordinator_cpu / m.flows:.3f}; the whole machine was busy "
            f"{m.busy_cpu / m.flows:.2f} CPU s per flow (other work on it included)"
        )
    ratio = two.per_minute / one.per_minute
    say(f"ratio 2 workers / 1 worker on this one {cores}-core machine: {ratio:.2f}")
    host_cpu = one.host_cpu.total / one.flows
    ceiling = 60 * cores / host_cpu
    coordinator = one.coordinator_cpu / one.flows
    say(
        f"one {cores}-core host of its own: {one.per_minute:.0f} flows/min measured here with "
        f"one worker at -j {concurrency}, at most {ceiling:.0f} when its {cores} "
        f"cores do nothing else ({cores} / {host_cpu:.2f} CPU s per flow)"
    )
    for hosts in (2, 5, 10):
        say(
            f"{hosts} separate hosts: ~{hosts * one.per_minute:.0f} flows/min ({hosts} x one "
            f"worker alone), at most {hosts * ceiling:.0f}"
        )
    say(
        f"the coordinator's {coordinator:.3f} CPU s per flow caps one run at "
        f"{60 / coordinator:.0f} flows/min on one core"
    )


def main(argv: list[str] | None = None) -> int:
    import docker

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=24, help="quick flows per measured run")
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's -j")
    args = parser.parse_args(argv)
    client = docker.from_env(timeout=300)
    project = f"b{uuid.uuid4().hex[:8]}"
    built = build_dind_image(client)
    directory = Path(f"/tmp/nocrud-bench-{project}")
    directory.mkdir()
    try:
        with Rig(
            client, project, directory, concurrency=args.concurrency, quick=args.flows, slow=0
        ) as rig:
            print(f"nocrud workers benchmark: {args.flows} quick flows, -j {args.concurrency} each")
            one = measure(rig, 1, args.flows)
            two = measure(rig, 2, args.flows)
            report(one, two, os.cpu_count() or 1, args.concurrency)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        for image in client.images.list(filters={"label": f"nocrud.project={project}"}):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        for image in client.images.list(name=f"nocrud/{project}-db"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        if built:
            client.images.remove(DIND_IMAGE, force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
