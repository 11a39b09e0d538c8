"""`nocrud doctor` with a fake Docker client at its one seam, plus one run on the real daemon.

The fake answers the few calls doctor makes (version, info, images, the registry,
labelled containers and networks); the machine's facts come from a
:class:`~nocrud.cli.doctor.Host` built per test. The last section checks that the CI
examples in docs/ci are valid YAML of the shape GitLab and GitHub expect.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from nocrud.cli.doctor import (
    BASE_IMAGE,
    DEFAULT_DB_IMAGE,
    Check,
    CheckStatus,
    Host,
    doctor_command,
    exit_code,
    render,
    run_checks,
)
from nocrud.docker import cleanup
from nocrud.docker.engine import DockerUnavailableError

REPO = Path(__file__).resolve().parents[3]
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAEMON_NOW = "2027-01-15T08:00:00.250000000Z"
GiB = 1024**3


class _Object:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.name = name
        self.id = name * 4
        self.labels = labels
        self.attrs: dict[str, Any] = {"Labels": labels, "Size": 120_000_000}


class _Images:
    def __init__(self, present: Iterable[str]) -> None:
        self.present = set(present)

    def get(self, ref: str) -> _Object:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return _Object(ref, {})


class _Api:
    api_version = "1.41"

    def __init__(self, pullable: Iterable[str]) -> None:
        self.pullable = set(pullable)

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        if ref not in self.pullable:
            raise docker.errors.APIError(
                "500 Server Error",
                explanation='Get "https://registry-1.docker.io/v2/": dial tcp: no such host',
            )
        return {"Descriptor": {}}


class _Listing:
    def __init__(self, objects: Iterable[_Object], known: Iterable[str] = ()) -> None:
        self.objects = list(objects)
        self.known = set(known)

    def list(
        self, *, all: bool = False, filters: dict[str, Any], ignore_removed: bool = False
    ) -> list[_Object]:
        key = filters["label"]
        return [o for o in self.objects if key in o.labels]

    def get(self, ident: str) -> _Object:
        if ident not in self.known:
            raise docker.errors.NotFound(f"No such container: {ident}")
        return _Object(ident, {})


class FakeDocker:
    """Just what doctor asks the Docker SDK for."""

    def __init__(
        self,
        *,
        images: Iterable[str] = (BASE_IMAGE, DEFAULT_DB_IMAGE, "nocrud/reaper:1"),
        pullable: Iterable[str] = (),
        info: dict[str, Any] | None = None,
        containers: Iterable[_Object] = (),
        networks: Iterable[_Object] = (),
        known_containers: Iterable[str] = (),
    ) -> None:
        self.images = _Images(images)
        self.api = _Api(pullable)
        self.containers = _Listing(containers, known_containers)
        self.networks = _Listing(networks)
        self._info = {
            "Name": socket.gethostname(),
            "DockerRootDir": "/var/lib/docker",
            "SystemTime": DAEMON_NOW,
            **(info or {}),
        }
        self.closed = False

    def version(self) -> dict[str, Any]:
        return {"Version": "26.1.4", "ApiVersion": "1.45", "Os": "linux", "Arch": "amd64"}

    def info(self) -> dict[str, Any]:
        return self._info

    def close(self) -> None:
        self.closed = True


def host(tmp_path: Path, *, free: int = 50 * GiB, **changes: Any) -> Host:
    env = changes.pop("env", {})
    return Host(
        env=env,
        cwd=changes.pop("cwd", tmp_path),
        now=lambda: NOW,
        in_container=changes.pop("in_container", False),
        hostname=socket.gethostname(),
        free_bytes=lambda _path: free,
        path_exists=lambda _path: True,
        which=changes.pop("which", lambda command: f"/usr/bin/{command}"),
        is_root=changes.pop("is_root", True),
        **changes,
    )


def checks_with(client: FakeDocker, machine: Host, **kwargs: Any) -> dict[str, Check]:
    found = run_checks(connect_docker=lambda: client, host=machine, **kwargs)
    assert client.closed
    return {c.name: c for c in found}


def write_config(directory: Path, **app: Any) -> Path:
    (directory / "flows").mkdir()
    (directory / "flows" / "__init__.py").write_text("")
    data = {
        "project": "shop",
        "app": app or {"image": "registry.example.com/shop:1"},
        "database": {"image": "postgres:16"},
    }
    path = directory / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---------------------------------------------------------------- everything fine


def test_a_ready_machine_passes_every_check_and_exits_0(tmp_path: Path) -> None:
    checks = checks_with(FakeDocker(), host(tmp_path))

    assert [c.name for c in checks.values()] == [
        "docker",
        "connection",
        "config",
        f"image {BASE_IMAGE}",
        f"image {DEFAULT_DB_IMAGE}",
        "reaper",
        "disk: docker",
        "disk: working dir",
        "clock",
        "leftovers",
    ]
    assert checks["config"].status is CheckStatus.SKIP  # no nocrud.yaml in tmp_path
    assert all(c.status is CheckStatus.OK for n, c in checks.items() if n != "config"), checks
    assert "engine 26.1.4 (API 1.45, linux/amd64)" in checks["docker"].detail
    assert f"docker-py {docker.__version__}" in checks["docker"].detail
    assert "local daemon" in checks["connection"].detail
    assert "127.0.0.1" in checks["connection"].detail
    assert "nocrud/reaper:1 present" in checks["reaper"].detail
    assert "50.0 GiB free at /var/lib/docker" in checks["disk: docker"].detail
    assert "0.2 s ahead" in checks["clock"].detail
    assert exit_code(list(checks.values())) == 0


def test_the_config_names_the_images_to_check(tmp_path: Path) -> None:
    write_config(tmp_path)
    client = FakeDocker(
        images=[BASE_IMAGE, "postgres:16"], pullable=["registry.example.com/shop:1"]
    )

    checks = checks_with(client, host(tmp_path))

    assert checks["config"].status is CheckStatus.OK
    assert "project shop" in checks["config"].detail
    assert checks["image postgres:16"].status is CheckStatus.OK
    assert "database.image" in checks["image postgres:16"].detail
    assert f"image {DEFAULT_DB_IMAGE}" not in checks
    app = checks["image registry.example.com/shop:1"]
    assert app.status is CheckStatus.OK
    assert "not present, pullable" in app.detail


def test_a_broken_config_fails_naming_the_key_with_ups_exit_code(tmp_path: Path) -> None:
    """Issue 21 item 9: doctor fails where `nocrud up` refuses the config (exit 2)."""
    write_config(tmp_path, image="shop:1", port="eighty")

    checks = checks_with(FakeDocker(), host(tmp_path))

    assert checks["config"].status is CheckStatus.FAIL
    assert "app.port" in checks["config"].detail
    assert "docs/config.md" in checks["config"].fix
    assert exit_code(list(checks.values())) == 2


# ---------------------------------------------------------------- blocking problems


def test_docker_unreachable_fails_with_where_it_looked_and_exits_1(tmp_path: Path) -> None:
    def unreachable() -> Any:
        raise DockerUnavailableError(
            "cannot reach Docker at tcp://127.0.0.1:1: is it running? (Connection refused)."
        )

    found = run_checks(
        connect_docker=unreachable, host=host(tmp_path, env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    )
    checks = {c.name: c for c in found}

    assert checks["docker"].status is CheckStatus.FAIL
    assert "cannot reach Docker at tcp://127.0.0.1:1" in checks["docker"].detail
    assert "DOCKER_HOST" in checks["docker"].fix
    assert "tcp://127.0.0.1:1" in checks["docker"].fix
    assert set(checks) == {"docker", "config", "disk: working dir"}
    assert exit_code(found) == 3


def test_docker_unreachable_through_the_real_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

    found = run_checks(host=host(tmp_path, env=dict(os.environ)))

    assert found[0].status is CheckStatus.FAIL
    assert "cannot reach Docker at tcp://127.0.0.1:1: nothing answers there" in found[0].detail
    assert "doctor --wait" in found[0].fix
    assert exit_code(found) == 3


def test_a_base_image_neither_present_nor_pullable_is_built_by_nocrud_not_blocking(
    tmp_path: Path,
) -> None:
    # A fresh Docker-in-Docker service lacks nocrud's own images in every CI job: the job's
    # first step (`nocrud doctor --wait 30`) must pass, and `nocrud build` makes them.
    checks = checks_with(FakeDocker(images=[DEFAULT_DB_IMAGE]), host(tmp_path))

    base = checks[f"image {BASE_IMAGE}"]
    assert base.status is CheckStatus.WARN
    assert "not present and not pullable" in base.detail
    assert "no such host" in base.detail  # the registry's own answer
    assert "`nocrud build`" in base.fix
    assert "debootstrap" in base.fix
    assert exit_code(list(checks.values())) == 0


def test_a_missing_but_pullable_base_image_is_fine(tmp_path: Path) -> None:
    client = FakeDocker(images=[DEFAULT_DB_IMAGE, "nocrud/reaper:1"], pullable=[BASE_IMAGE])

    checks = checks_with(client, host(tmp_path))

    assert checks[f"image {BASE_IMAGE}"].status is CheckStatus.OK
    assert exit_code(list(checks.values())) == 0


def test_a_missing_app_image_of_the_users_says_to_pull_or_load_it(tmp_path: Path) -> None:
    write_config(tmp_path)
    client = FakeDocker(images=[BASE_IMAGE, "postgres:16"])

    checks = checks_with(client, host(tmp_path))

    app = checks["image registry.example.com/shop:1"]
    assert app.status is CheckStatus.FAIL
    assert "docker pull registry.example.com/shop:1" in app.fix
    assert "app.image" in app.fix


# ---------------------------------------------------------------- connection modes


def test_docker_host_tcp_is_docker_in_docker_and_skips_the_local_disk_check(
    tmp_path: Path,
) -> None:
    machine = host(tmp_path, env={"DOCKER_HOST": "tcp://docker:2375"}, in_container=True)

    checks = checks_with(FakeDocker(info={"Name": "dind-7f3a"}), machine)

    assert checks["connection"].status is CheckStatus.OK
    assert "tcp://docker:2375" in checks["connection"].detail
    assert "reached at docker" in checks["connection"].detail
    assert checks["disk: docker"].status is CheckStatus.SKIP
    assert "docker system df" in checks["disk: docker"].detail
    assert "at tcp://docker:2375" in checks["docker"].detail


def test_the_host_ip_override_is_reported(tmp_path: Path) -> None:
    machine = host(tmp_path, env={"NOCRUD_DOCKER_HOST_IP": "172.17.0.1"}, in_container=True)

    checks = checks_with(FakeDocker(info={"Name": "buildhost"}), machine)

    assert checks["connection"].status is CheckStatus.OK
    assert "NOCRUD_DOCKER_HOST_IP=172.17.0.1" in checks["connection"].detail


def test_socket_mounted_in_a_known_container_joins_the_flows_networks(tmp_path: Path) -> None:
    own = "c0ffee" * 10 + "c0ff"
    machine = host(tmp_path, env={"NOCRUD_SELF_CONTAINER": own}, in_container=True)

    checks = checks_with(FakeDocker(known_containers=[own], info={"Name": "ci-host"}), machine)

    assert checks["connection"].status is CheckStatus.OK
    assert "Docker-outside-of-Docker" in checks["connection"].detail
    assert checks["disk: docker"].status is CheckStatus.SKIP


def test_socket_mounted_in_a_container_the_daemon_does_not_know_is_a_warning(
    tmp_path: Path,
) -> None:
    machine = host(tmp_path, env={"NOCRUD_SELF_CONTAINER": "unknown"}, in_container=True)

    checks = checks_with(FakeDocker(info={"Name": "ci-host"}), machine)

    assert checks["connection"].status is CheckStatus.WARN
    assert "out of reach" in checks["connection"].detail
    assert "NOCRUD_DOCKER_HOST_IP" in checks["connection"].fix
    assert exit_code(list(checks.values())) == 0


def test_a_bad_connection_mode_fails(tmp_path: Path) -> None:
    machine = host(tmp_path, env={"NOCRUD_CONNECTION_MODE": "carrier-pigeon"})

    checks = checks_with(FakeDocker(), machine)

    assert checks["connection"].status is CheckStatus.FAIL
    assert "NOCRUD_CONNECTION_MODE" in checks["connection"].detail


# ---------------------------------------------------------------- warnings


def test_no_reaper_image_is_a_warning_saying_how_to_build_one(tmp_path: Path) -> None:
    checks = checks_with(FakeDocker(images=[BASE_IMAGE, DEFAULT_DB_IMAGE]), host(tmp_path))

    reaper = checks["reaper"]
    assert reaper.status is CheckStatus.WARN
    assert "SIGKILL" in reaper.detail
    assert "images/build-all.sh" in reaper.fix
    assert "RYUK_CONTAINER_IMAGE" in reaper.fix
    assert exit_code(list(checks.values())) == 0


def test_the_users_reaper_image_wins(tmp_path: Path) -> None:
    client = FakeDocker(images=[BASE_IMAGE, DEFAULT_DB_IMAGE, "mirror.example.com/ryuk:0.8.1"])
    machine = host(tmp_path, env={"RYUK_CONTAINER_IMAGE": "mirror.example.com/ryuk:0.8.1"})

    checks = checks_with(client, machine)

    assert checks["reaper"].status is CheckStatus.OK
    assert "mirror.example.com/ryuk:0.8.1 (RYUK_CONTAINER_IMAGE) present" in checks["reaper"].detail


def test_a_disabled_reaper_is_a_warning(tmp_path: Path) -> None:
    machine = host(tmp_path, env={"TESTCONTAINERS_RYUK_DISABLED": "true"})

    checks = checks_with(FakeDocker(), machine)

    assert checks["reaper"].status is CheckStatus.WARN
    assert "unset TESTCONTAINERS_RYUK_DISABLED" in checks["reaper"].fix


def test_little_free_disk_is_a_warning(tmp_path: Path) -> None:
    checks = checks_with(FakeDocker(), host(tmp_path, free=300 * 1024**2))

    for name in ("disk: docker", "disk: working dir"):
        assert checks[name].status is CheckStatus.WARN, checks[name]
        assert "300.0 MiB free" in checks[name].detail
        assert "nocrud clean --images" in checks[name].fix
    assert exit_code(list(checks.values())) == 0


@pytest.mark.parametrize(
    ("daemon_time", "status", "words"),
    [
        ("2027-01-15T08:00:30.000000001Z", CheckStatus.WARN, "30.0 s ahead of"),
        ("2027-01-15T09:59:50+02:00", CheckStatus.WARN, "10.0 s behind"),
        ("2027-01-15T08:00:04Z", CheckStatus.OK, "4.0 s ahead of"),
        ("", CheckStatus.SKIP, "no usable time"),
    ],
)
def test_clock_skew_beyond_five_seconds_is_a_warning(
    tmp_path: Path, daemon_time: str, status: CheckStatus, words: str
) -> None:
    checks = checks_with(FakeDocker(info={"SystemTime": daemon_time}), host(tmp_path))

    assert checks["clock"].status is status, checks["clock"]
    assert words in checks["clock"].detail


def _owned_by(owner: str, run: str, **extra: str) -> dict[str, str]:
    return {cleanup.LABEL_RUN: run, cleanup.LABEL_OWNER: owner, **extra}


def test_objects_of_dead_runs_are_a_warning_pointing_at_nocrud_clean(tmp_path: Path) -> None:
    dead = f"{socket.gethostname()}:4194999:123"  # above Linux's highest pid: never running
    client = FakeDocker(
        containers=[
            _Object("nocrud-a-db", _owned_by(dead, "a")),
            _Object("nocrud-a-app", _owned_by(dead, "a")),
            _Object("nocrud-b-db", _owned_by(cleanup.owner(), "b")),
            _Object("nocrud-c-db", _owned_by(dead, "c", **{cleanup.LABEL_KEEP: "true"})),
            _Object("unrelated", {}),
        ],
        networks=[_Object("nocrud-a", _owned_by(dead, "a"))],
    )

    checks = checks_with(client, host(tmp_path))

    left = checks["leftovers"]
    assert left.status is CheckStatus.WARN
    assert "2 container(s) and 1 network(s) of 1 run(s) whose process is gone" in left.detail
    assert "1 object(s) of runs still going, or of other hosts" in left.detail
    assert "1 kept by --keep-failed" in left.detail
    assert "nocrud clean" in left.fix


def test_objects_of_live_runs_are_fine(tmp_path: Path) -> None:
    client = FakeDocker(containers=[_Object("nocrud-b-db", _owned_by(cleanup.owner(), "b"))])

    checks = checks_with(client, host(tmp_path))

    assert checks["leftovers"].status is CheckStatus.OK


# ---------------------------------------------------------------- output


def test_the_report_is_a_table_with_a_fix_per_problem_and_no_colour_off_a_tty() -> None:
    checks = [
        Check("docker", CheckStatus.OK, "engine 26.1.4"),
        Check("image debian:bookworm-slim", CheckStatus.FAIL, "not present", "run build-all.sh"),
        Check("clock", CheckStatus.WARN, "daemon 9.0 s ahead", "sync the clocks"),
        Check("disk: docker", CheckStatus.SKIP, "remote daemon", "check it there"),
    ]
    out = io.StringIO()

    render(checks, Console(file=out, width=100, force_terminal=False))

    text = out.getvalue()
    assert "\x1b[" not in text
    assert text.splitlines()[0].split() == ["check", "status", "detail"]
    assert "FAIL image debian:bookworm-slim: fix: run build-all.sh" in text
    assert "warn clock: fix: sync the clocks" in text
    assert "check it there" not in text  # skipped checks need no fixing
    assert "1 blocking problem(s), 1 warning(s)" in text


@pytest.mark.docker
def test_the_command_prints_json_and_exits_0_on_a_ready_machine(
    docker_client: Any, base_images: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real daemon of this machine (marked docker): ready, whatever the warnings."""
    # As in a new process: a `flows` package another test imported (from its temporary
    # directory, first on sys.path) would shadow the repository's own.
    monkeypatch.setattr(sys, "path", [str(REPO), *sys.path])
    for name in [n for n in sys.modules if n == "flows" or n.startswith("flows.")]:
        monkeypatch.delitem(sys.modules, name)
    result = CliRunner().invoke(doctor_command, ["--json"], obj={"config_path": None})

    checks = {c["name"]: c for c in json.loads(result.output)}
    assert result.exit_code == 0, result.output
    assert checks["docker"]["status"] == "ok"
    assert checks["connection"]["status"] in ("ok", "warn")
    assert checks[f"image {BASE_IMAGE}"]["status"] == "ok"


# ---------------------------------------------------------------- the CI examples in docs/ci


def test_the_gitlab_example_runs_nocrud_against_a_dind_service_and_keeps_the_junit_report() -> None:
    document = yaml.safe_load((REPO / "docs" / "ci" / "gitlab-ci.yml").read_text())

    jobs = {k: v for k, v in document.items() if isinstance(v, dict) and "script" in v}
    assert len(jobs) == 1, document
    job = next(iter(jobs.values()))
    variables = {**document.get("variables", {}), **job.get("variables", {})}
    assert variables["DOCKER_HOST"] == "tcp://docker:2375"
    assert variables["DOCKER_TLS_CERTDIR"] == ""
    services = job.get("services", document.get("services"))
    assert any(
        (s if isinstance(s, str) else s["name"]).startswith("docker:") and "dind" in str(s)
        for s in services
    ), services
    script = "\n".join(job["script"])
    assert "nocrud up -j 8 --junit report.xml" in script
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "report.xml"


def test_the_github_example_runs_nocrud_and_publishes_the_junit_report() -> None:
    document = yaml.safe_load((REPO / "docs" / "ci" / "github-actions.yml").read_text())

    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    assert "on" in document or True in document
    (job,) = document["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    assert any(
        u.startswith(("mikepenz/action-junit-report@", "dorny/test-reporter@")) for u in uses
    )
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "pip install" in runs
    assert "nocrud up -j 8 --junit report.xml --json results.json" in runs
    for step in steps:
        if step.get("uses", "").startswith(("actions/upload-artifact@", "mikepenz/", "dorny/")):
            assert step.get("if") == "always()", step


# ---------------------------------------------------------------- what `up` would refuse


def test_a_host_that_cannot_build_nocruds_images_fails_as_up_would(tmp_path: Path) -> None:
    """Issue 21 item 9: no base image, no registry, and no way to make the base offline
    (not root, no debootstrap): `up` stops with exit 3 building the reaper, so does doctor."""
    client = FakeDocker(images=[])
    machine = host(tmp_path, is_root=False, which=lambda c: None if c == "debootstrap" else c)

    checks = checks_with(client, machine)

    base = checks[f"image {BASE_IMAGE}"]
    assert base.status is CheckStatus.FAIL
    assert f"`nocrud up` must build {DEFAULT_DB_IMAGE}, nocrud/reaper:1 from it" in base.detail
    assert "this host lacks debootstrap (and not root to install it)" in base.detail
    assert "nocrud images import FILE" in base.fix and "apt-get install debootstrap" in base.fix
    db = checks[f"image {DEFAULT_DB_IMAGE}"]
    assert db.status is CheckStatus.FAIL
    assert f"its base {BASE_IMAGE} cannot be had" in db.detail
    assert exit_code(list(checks.values())) == 3
    # A job image without the docker command cannot `docker import` the base either.
    no_cli = host(tmp_path, which=lambda c: None if c == "docker" else c)
    detail = checks_with(FakeDocker(images=[]), no_cli)[f"image {BASE_IMAGE}"].detail
    assert "this host lacks docker" in detail


def test_a_missing_base_does_not_matter_when_nocruds_images_are_here(tmp_path: Path) -> None:
    client = FakeDocker(images=[DEFAULT_DB_IMAGE, "nocrud/reaper:1"])
    machine = host(tmp_path, is_root=False, which=lambda c: None)

    checks = checks_with(client, machine)

    assert checks[f"image {BASE_IMAGE}"].status is CheckStatus.OK
    assert "not needed: nocrud's own images are here" in checks[f"image {BASE_IMAGE}"].detail
    assert exit_code(list(checks.values())) == 0


def test_postgres_17_needs_the_trixie_base(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        "project: shop\napp:\n  image: shop:1\ndatabase:\n  version: 17\n"
    )
    client = FakeDocker(images=[BASE_IMAGE, "shop:1", "nocrud/reaper:1"])
    machine = host(tmp_path, is_root=False, which=lambda c: None if c == "debootstrap" else c)

    checks = checks_with(client, machine)

    assert checks["image debian:trixie-slim"].status is CheckStatus.FAIL
    assert "must build nocrud/postgres:17 from it" in checks["image debian:trixie-slim"].detail
    assert checks[f"image {BASE_IMAGE}"].status is CheckStatus.OK


def test_a_flows_package_that_up_refuses_fails_with_ups_exit_code(tmp_path: Path) -> None:
    """Issue 21 item 9: `up` exits 2 on a flows package that does not import; so does doctor."""
    name = f"flows_{tmp_path.name[-8:].replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "broken.py").write_text("from nocrud import no_such_thing\n")
    (tmp_path / "nocrud.yaml").write_text(
        f"project: shop\napp:\n  image: shop:1\nflows:\n  path: {name}\n"
    )

    checks = checks_with(
        FakeDocker(images=[BASE_IMAGE, DEFAULT_DB_IMAGE, "nocrud/reaper:1", "shop:1"]),
        host(tmp_path),
    )

    assert checks["flows"].status is CheckStatus.FAIL
    assert "no_such_thing" in checks["flows"].detail
    assert exit_code(list(checks.values())) == 2
    assert not [m for m in sys.modules if m == name or m.startswith(f"{name}.")]
    (tmp_path / name / "broken.py").write_text(
        "from nocrud import flow\n\n@flow\ndef ok(ctx):\n    pass\n"
    )
    fixed = checks_with(
        FakeDocker(images=[BASE_IMAGE, DEFAULT_DB_IMAGE, "nocrud/reaper:1", "shop:1"]),
        host(tmp_path),
    )
    assert (fixed["flows"].status, fixed["flows"].detail) == (
        CheckStatus.OK,
        f"1 flow(s) in {tmp_path / name}",
    )
