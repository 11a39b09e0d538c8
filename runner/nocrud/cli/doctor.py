"""``nocrud doctor``: can this machine run flows, and if not, what to do about it.

:func:`run_checks` looks at what a run depends on, in the order a run needs it:
the Docker engine (reachable, versions), how containers will be reached (local
daemon, ``DOCKER_HOST`` of a Docker-in-Docker service, a container with the
socket mounted), the config, the base images (present, or at least pullable),
the reaper image, free disk, the daemon's clock, and objects left by runs that
died. Each :class:`Check` says ok, warn, fail or skip, what it saw, and for
anything but ok what to do next. Only problems that stop every run are *fail*
(no Docker; an image ``up`` can neither find, pull nor build here: see
:mod:`nocrud.cli.doctor_images`; a config or flows package ``nocrud up`` refuses), and
only they make the command fail: exit 3, the code of every command whose environment
cannot be built, or 2 when only the config or the flows are at fault, ``up``'s code.

The Docker client comes from one seam, the ``connect`` argument, and facts
about the machine (environment, clock, disk, commands, container or not) from a
:class:`Host`, so tests drive every branch with a small fake client.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nocrud.cli._checks import Check, CheckStatus, Host
from nocrud.cli._guard import Command
from nocrud.cli.doctor_images import BASE_IMAGE, DEFAULT_DB_IMAGE, image_checks
from nocrud.cli.doctor_project import config_check, flows_check, strategy_check
from nocrud.docker import cleanup
from nocrud.docker.engine import (
    DockerUnavailableError,
    connect,
    describe_docker_host,
    detect_connection,
)
from nocrud.docker.podman import EngineKind, engine_kind
from nocrud.errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE

__all__ = [
    "BASE_IMAGE",
    "DEFAULT_DB_IMAGE",
    "Check",
    "CheckStatus",
    "Host",
    "broker_checks",
    "doctor_command",
    "exit_code",
    "render",
    "run_checks",
]

#: Below this much free space where Docker keeps images and containers, builds start failing.
DOCKER_DISK_WARN = 5 * 1024**3
#: Below this much free space in the working directory, reports and logs may not fit.
WORKDIR_DISK_WARN = 1 * 1024**3
#: Daemon and runner clocks further apart than this confuse token expiry and log times.
CLOCK_SKEW_WARN = 5.0
#: How long doctor waits for the daemon on any one call.
DOCKER_TIMEOUT = 15.0


def run_checks(
    *,
    connect_docker: Callable[[], Any] | None = None,
    host: Host | None = None,
    config_path: Path | None = None,
    wait: float = 0.0,
) -> list[Check]:
    """Run every check and return them in report order.

    Args:
        connect_docker: Returns a Docker client, or raises
            :class:`~nocrud.docker.engine.DockerUnavailableError`. The real engine when omitted.
        host: Facts about this machine; :meth:`Host.current` when omitted.
        config_path: ``--config``; otherwise ``NOCRUD_CONFIG`` or the nearest ``nocrud.yaml``.
        wait: Seconds to keep trying the real engine (``--wait``: a CI service starting up).

    Returns:
        The checks. Any with status FAIL means no run can work until it is fixed.
    """
    host = host or Host.current()
    checks: list[Check] = []
    configured, images = config_check(host, config_path)
    try:
        client = (connect_docker or (lambda: connect(timeout=DOCKER_TIMEOUT, wait=wait)))()
    except DockerUnavailableError as exc:
        where = host.env.get("DOCKER_HOST") or "the default socket"
        if where.startswith("tcp://"):
            # A remote daemon is a CI service to wire up or wait for, not one to start here.
            fix = (
                f"make DOCKER_HOST ({where}) reach a running daemon: in CI, the "
                "Docker-in-Docker service (its alias, the job's network); "
                "`nocrud doctor --wait 30` waits for one that is still starting"
            )
        else:
            fix = (
                "start the Docker daemon (`sudo systemctl start docker`, or `dockerd &`) or "
                f"point DOCKER_HOST at a running one (now: {where}); then `docker info` "
                "must work"
            )
        checks.append(Check("docker", CheckStatus.FAIL, str(exc), fix))
        checks += [configured, *flows_check(host, config_path), _workdir_disk(host)]
        return checks
    try:
        version: dict[str, Any] = client.version()
        before = host.now()
        info: dict[str, Any] = client.info()
        after = host.now()
        kind = engine_kind(version, info)
        checks.append(_docker(client, host, version, kind))
        checks.append(_connection(client, host, info))
        checks.append(configured)
        checks += flows_check(host, config_path)
        checks += strategy_check(host, config_path)
        checks += image_checks(client, host, images, kind)
        checks.append(_docker_disk(host, info))
        checks.append(_workdir_disk(host))
        checks.append(_clock(info, (before + after) / 2))
        checks.append(_leftovers(client))
    finally:
        client.close()
    return checks


def exit_code(checks: list[Check]) -> int:
    """3 when a check failed (no environment can be built here), else 0; warnings pass.

    A config or flows package that ``nocrud up`` would refuse, and nothing else failing,
    is 2, ``up``'s code.
    """
    failed = {c.name for c in checks if c.status is CheckStatus.FAIL}
    if failed and failed <= {"config", "flows"}:
        return EXIT_USAGE
    return EXIT_INFRASTRUCTURE if failed else EXIT_OK


# ---------------------------------------------------------------- the checks


def _docker(client: Any, host: Host, version: Mapping[str, Any], kind: EngineKind) -> Check:
    import docker

    server = version.get("Version", "?")
    api = version.get("ApiVersion", "?")
    platform = f"{version.get('Os', '?')}/{version.get('Arch', '?')}"
    negotiated = getattr(getattr(client, "api", None), "api_version", "?")
    return Check(
        "docker",
        CheckStatus.OK,
        f"{kind.name} engine {server} (API {api}, {platform}) at "
        f"{describe_docker_host(host.env)}; docker-py {docker.__version__} speaking API "
        f"{negotiated}"
        + (f"; {kind.describe()}, through its Docker-compatible API" if kind.podman else ""),
    )


def _connection(client: Any, host: Host, info: Mapping[str, Any]) -> Check:
    try:
        connection = detect_connection(client, host.env)
    except ValueError as exc:
        return Check("connection", CheckStatus.FAIL, str(exc), "fix or unset the variable named")
    where = "in a container" if host.in_container else "on the host"
    override = host.env.get("NOCRUD_DOCKER_HOST_IP", "").strip()
    if connection.mode == "container-network":
        own = (connection.container or "?")[:12]
        return Check(
            "connection",
            CheckStatus.OK,
            f"Docker-outside-of-Docker: this process runs in container {own} next to the flows' "
            "containers; it joins each flow's network and reaches them there",
        )
    if override:
        detail = f"NOCRUD_DOCKER_HOST_IP={override}: published ports reached at {connection.host}"
    elif connection.mode == "docker-host":
        detail = (
            f"remote daemon ({host.env.get('DOCKER_HOST', '')}, e.g. a docker:dind service): "
            f"ports published on its interfaces, reached at {connection.host}"
        )
    else:
        detail = f"local daemon, runner {where}: ports published on 127.0.0.1"
    daemon_host = str(info.get("Name", ""))
    if (
        connection.mode == "local"
        and host.in_container
        and not override
        and daemon_host not in ("", host.hostname)
    ):
        return Check(
            "connection",
            CheckStatus.WARN,
            f"this process runs in a container, but the daemon (host {daemon_host}) does not "
            "know it: ports published on the daemon's 127.0.0.1 are out of reach from here",
            "set NOCRUD_SELF_CONTAINER=<this container's id> (the runner then joins each "
            "flow's network), or NOCRUD_DOCKER_HOST_IP=<the Docker host's address as seen "
            "from here, e.g. the default gateway>",
        )
    return Check("connection", CheckStatus.OK, detail)


def _docker_disk(host: Host, info: Mapping[str, Any]) -> Check:
    root = str(info.get("DockerRootDir") or "")
    daemon_here = (
        not host.env.get("DOCKER_HOST", "").startswith(("tcp://", "ssh://", "http"))
        and str(info.get("Name", "")) == host.hostname
    )
    if not root or not daemon_here or not host.path_exists(Path(root)):
        return Check(
            "disk: docker",
            CheckStatus.SKIP,
            "the daemon's storage is not on this file system (remote daemon or socket from "
            "another host): check it there with `docker system df`",
        )
    return _disk("disk: docker", host, Path(root), DOCKER_DISK_WARN, "images and containers")


def _workdir_disk(host: Host) -> Check:
    return _disk("disk: working dir", host, host.cwd, WORKDIR_DISK_WARN, "reports and logs")


def _disk(name: str, host: Host, path: Path, threshold: int, what: str) -> Check:
    try:
        free = host.free_bytes(path)
    except OSError as exc:
        return Check(name, CheckStatus.SKIP, f"cannot measure {path}: {exc}")
    detail = f"{_size(free)} free at {path} ({what})"
    if free < threshold:
        return Check(
            name,
            CheckStatus.WARN,
            f"only {detail}; below {_size(threshold)} runs start failing",
            "free space there: `nocrud clean --images` drops nocrud's cached images, "
            "`docker system df` shows what else takes room",
        )
    return Check(name, CheckStatus.OK, detail)


def _clock(info: Mapping[str, Any], local: float) -> Check:
    raw = str(info.get("SystemTime") or "")
    daemon = _parse_time(raw)
    if daemon is None:
        return Check("clock", CheckStatus.SKIP, f"the daemon reports no usable time ({raw!r})")
    skew = daemon - local
    ahead = "ahead of" if skew > 0 else "behind"
    detail = f"daemon {abs(skew):.1f} s {ahead} this machine"
    if abs(skew) > CLOCK_SKEW_WARN:
        return Check(
            "clock",
            CheckStatus.WARN,
            detail + ": token expiry and log times will disagree",
            "sync the clocks (`timedatectl set-ntp true`, or restart the Docker VM / "
            "dind service, whose clock drifts after a host sleeps)",
        )
    return Check("clock", CheckStatus.OK, detail)


def _parse_time(text: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds, as epoch seconds."""
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip()
    )
    if match is None:
        return None
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _leftovers(client: Any) -> Check:
    dead: set[str] = set()
    containers = networks = kept = live = 0
    objects = [
        (c.labels or {}, "container")
        # ignore_removed: on a shared daemon other runs remove containers while we list them.
        for c in client.containers.list(
            all=True, filters={"label": cleanup.LABEL_RUN}, ignore_removed=True
        )
    ]
    objects += [
        (n.attrs.get("Labels") or {}, "network")
        for n in client.networks.list(filters={"label": cleanup.LABEL_RUN})
    ]
    for labels, kind in objects:
        if labels.get(cleanup.LABEL_KEEP) == "true":
            kept += 1
        elif cleanup.owner_is_gone(labels.get(cleanup.LABEL_OWNER, ""), client):
            dead.add(labels.get(cleanup.LABEL_RUN, "?"))
            containers += int(kind == "container")
            networks += int(kind == "network")
        else:
            live += 1
    others = []
    if live:
        others.append(f"{live} object(s) of runs still going, or of other hosts")
    if kept:
        others.append(f"{kept} kept by --keep-failed")
    tail = f" ({'; '.join(others)})" if others else ""
    if dead:
        return Check(
            "leftovers",
            CheckStatus.WARN,
            f"{containers} container(s) and {networks} network(s) of {len(dead)} run(s) whose "
            f"process is gone{tail}",
            "`nocrud clean` removes them (so does the next `nocrud up`, at its start)",
        )
    return Check("leftovers", CheckStatus.OK, f"nothing left by dead runs{tail}")


# ---------------------------------------------------------------- output


_STYLE = {
    CheckStatus.OK: ("ok", "green"),
    CheckStatus.WARN: ("warn", "yellow"),
    CheckStatus.FAIL: ("FAIL", "bold red"),
    CheckStatus.SKIP: ("skip", "dim"),
}


def render(checks: list[Check], console: Console) -> None:
    """Print the checks as a table, then what to do about each one that is not ok."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in checks:
        text, style = _STYLE[check.status]
        table.add_row(escape(check.name), f"[{style}]{text}[/]", escape(check.detail))
    console.print(table)
    to_fix = [c for c in checks if c.fix and c.status in (CheckStatus.FAIL, CheckStatus.WARN)]
    if to_fix:
        console.print()
        for check in to_fix:
            text, style = _STYLE[check.status]
            console.print(f"[{style}]{text}[/] {escape(check.name)}: fix: {escape(check.fix)}")
    failed = sum(c.status is CheckStatus.FAIL for c in checks)
    warned = sum(c.status is CheckStatus.WARN for c in checks)
    console.print()
    if failed:
        console.print(f"{failed} blocking problem(s), {warned} warning(s): nocrud cannot run yet")
    else:
        console.print(f"ready to run flows ({warned} warning(s))")


@click.command(name="doctor", cls=Command)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option(
    "--wait",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Wait up to SECONDS for the Docker daemon to answer (a CI service starting up), "
    "then fail (exit 3) saying why it did not.",
)
@click.option(
    "--broker",
    metavar="URL",
    default=None,
    help="Also check this Redis broker of `nocrud up --broker` and list its live workers.",
)
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool, wait: float, broker: str | None) -> None:
    """Check that this machine can run flows, and say how to fix what is missing.

    \b
    Checks: Docker reachable and its version, how containers are reached (local
    daemon, DOCKER_HOST / Docker-in-Docker, socket mounted in a container), the
    config and the flows package (as `up` loads them), the images a run needs
    (present, pullable, or buildable on this host), the reaper image, free disk, the
    daemon's clock, and containers left by runs that died.

    \b
    Examples:
      nocrud doctor
      DOCKER_HOST=tcp://docker:2375 nocrud doctor
      nocrud doctor --json
      nocrud doctor --wait 30        # first step of a CI job with a dind service
      nocrud doctor --broker redis://ci-redis:6379/0   # the broker and its live workers

    Exit codes: 0 ready (warnings allowed), 3 a problem that stops every run, 2 a config
    or flows package that `nocrud up` refuses (and nothing else).
    """
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    if wait and not as_json:
        click.echo(f"waiting up to {wait:g} s for Docker at {describe_docker_host()}")
    checks = run_checks(config_path=obj.get("config_path"), wait=wait)
    if broker is not None:
        checks = [*checks, *broker_checks(broker)]
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        render(checks, Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False))
    sys.exit(exit_code(checks))


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def broker_checks(broker: str) -> list[Check]:
    """``--broker``: the broker answers, and which workers listen with what capacity."""
    from nocrud.masking import mask_url
    from nocrud.scheduler.celery_backend import BrokerError, live_workers

    shown = mask_url(broker)
    try:
        workers = live_workers(broker)
    except BrokerError as exc:
        fix = "start redis-server there, or fix --broker"
        return [Check("broker", CheckStatus.FAIL, str(exc), fix)]
    checks = [Check("broker", CheckStatus.OK, f"{shown} answers")]
    if not workers:
        checks.append(
            Check(
                "workers",
                CheckStatus.WARN,
                f"no worker answers on {shown}",
                "start `nocrud worker --broker URL` on each Docker host",
            )
        )
    for worker in workers:
        queues = ", ".join(worker.queues) or "no queue"
        detail = f"{worker.capacity} flow(s) at a time, queue {queues}"
        checks.append(Check(f"worker {worker.name}", CheckStatus.OK, detail))
    return checks
