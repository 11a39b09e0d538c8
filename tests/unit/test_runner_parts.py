"""Unit tests for the runner's small parts: the Docker seam, labels, cache keys, names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nocrud.config import load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import publish_address, published_host
from nocrud.environment.image import safe_name
from nocrud.images.build import _ignored, app_key, db_key

# ---------------------------------------------------------------- engine


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "127.0.0.1"),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, "127.0.0.1"),
        ({"DOCKER_HOST": "tcp://docker:2375"}, "docker"),
        ({"DOCKER_HOST": "tcp://10.1.2.3:2376"}, "10.1.2.3"),
        ({"DOCKER_HOST": "tcp://docker:2375", "NOCRUD_DOCKER_HOST_IP": "172.17.0.1"}, "172.17.0.1"),
    ],
)
def test_published_host_follows_docker_host_and_override(
    env: dict[str, str], expected: str
) -> None:
    assert published_host(env) == expected


def test_ports_bind_loopback_for_a_local_daemon_and_all_interfaces_for_a_remote_one() -> None:
    assert publish_address({}) == "127.0.0.1"
    assert publish_address({"DOCKER_HOST": "tcp://docker:2375"}) == "0.0.0.0"


# ---------------------------------------------------------------- labels and owners


def test_run_labels_carry_run_owner_project_role_and_flow() -> None:
    labels = cleanup.run_labels("abc", "shop", flow="x" * 500, role="db")
    assert labels[cleanup.LABEL_RUN] == "abc"
    assert labels[cleanup.LABEL_PROJECT] == "shop"
    assert labels[cleanup.LABEL_ROLE] == "db"
    assert len(labels[cleanup.LABEL_FLOW]) == 200
    assert labels[cleanup.LABEL_OWNER] == cleanup.owner()


def test_this_process_is_not_gone_but_a_dead_one_is() -> None:
    assert not cleanup.owner_is_gone(cleanup.owner())
    child = subprocess.run(
        [sys.executable, "-c", "from nocrud.docker.cleanup import owner; print(owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert cleanup.owner_is_gone(child.stdout.strip())


def test_a_reused_pid_is_recognised_by_its_start_tick() -> None:
    host, pid, _start = cleanup.owner().split(":")
    assert cleanup.owner_is_gone(f"{host}:{pid}:1")  # same pid, different process start


def test_owners_on_other_hosts_are_never_judged_gone() -> None:
    assert not cleanup.owner_is_gone("some-other-ci-runner:1:1")
    assert not cleanup.owner_is_gone("garbage")


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["site_crud", "Ünïcode flow ✓", "a/b\\c:d*e", "x" * 300, "---", "test[param-1]", ""],
)
def test_safe_name_is_docker_safe_and_bounded(name: str) -> None:
    cleaned = safe_name(name)
    assert cleaned
    assert len(cleaned) <= 40
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in cleaned)
    assert not cleaned.startswith(("-", "."))


# ---------------------------------------------------------------- cache keys


def _project(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "migrations").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (app / "main.py").write_text("print('hi')\n")
    (app / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    (app / "tests").mkdir()
    (app / "tests" / "test_x.py").write_text("")
    (app / ".dockerignore").write_text("tests/\n**/*.pyc\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        "project: shop\napp:\n  build: app\n"
        "database:\n  migrate: [migrate]\n  migrations: [app/migrations]\n"
    )
    return tmp_path


def test_app_key_ignores_dockerignored_files_and_migration_contents(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "tests" / "test_x.py").write_text("changed")
    (root / "app" / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id bigint);\n")
    assert app_key(config) == key
    (root / "app" / "main.py").write_text("print('changed')\n")
    assert app_key(config) != key


def test_a_new_migration_file_changes_the_app_key(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "migrations" / "0002_more.sql").write_text("SELECT 1;\n")
    assert app_key(config) != key


def test_db_key_covers_migrations_app_image_base_image_and_command(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = db_key(config, "sha256:app", "sha256:base")
    assert db_key(config, "sha256:app", "sha256:base") == key
    assert db_key(config, "sha256:app2", "sha256:base") != key
    assert db_key(config, "sha256:app", "sha256:base2") != key
    other = load_config(
        root / "nocrud.yaml", env={}, overrides={"database.migrate": ["migrate", "--fast"]}
    )
    assert db_key(other, "sha256:app", "sha256:base") != key
    (root / "app" / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id bigint);\n")
    assert db_key(config, "sha256:app", "sha256:base") != key


def test_cache_keys_do_not_depend_on_where_the_project_lives(tmp_path: Path) -> None:
    one = load_config(_project(tmp_path / "one") / "nocrud.yaml", env={})
    two = load_config(_project(tmp_path / "two") / "nocrud.yaml", env={})
    assert app_key(one) == app_key(two)
    assert db_key(one, "a", "b") == db_key(two, "a", "b")


@pytest.mark.parametrize(
    ("path", "patterns", "ignored"),
    [
        ("tests/test_x.py", ["tests/"], True),
        ("pkg/mod.pyc", ["**/*.pyc"], True),
        ("pkg/mod.py", ["**/*.pyc"], False),
        ("README.md", ["*.md", "!README.md"], False),
        ("docs/a.md", ["*.md"], True),
    ],
)
def test_dockerignore_matching(path: str, patterns: list[str], ignored: bool) -> None:
    from pathlib import PurePosixPath

    assert _ignored(PurePosixPath(path), patterns) is ignored


def test_environment_is_not_read_at_import_time() -> None:
    code = (
        "import os\n"
        "from nocrud.docker.engine import published_host\n"
        "os.environ['DOCKER_HOST'] = 'tcp://late:2375'\n"
        "print(published_host())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "NOCRUD_DOCKER_HOST_IP")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "late"


# ---------------------------------------------------------------- sweep


class _FakeObject:
    def __init__(self, name: str, labels: dict[str, str], removed: list[str]) -> None:
        self.name = name
        self.labels = labels
        self.attrs = {"Labels": labels, "Containers": {}}
        self._removed = removed

    def remove(self, **_kwargs: object) -> None:
        self._removed.append(self.name)

    def reload(self) -> None:
        pass


class _FakeCollection:
    def __init__(self, objects: list[_FakeObject]) -> None:
        self.objects = objects

    def list(self, **_kwargs: object) -> list[_FakeObject]:
        return self.objects


class _FakeDocker:
    """The Docker seam, as far as cleanup.sweep uses it."""

    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.removed: list[str] = []
        objects = [_FakeObject(name, value, self.removed) for name, value in labels.items()]
        self.containers = _FakeCollection(objects)
        self.networks = _FakeCollection([])


def _sweep_fixture() -> _FakeDocker:
    dead = subprocess.run(
        [sys.executable, "-c", "from nocrud.docker.cleanup import owner; print(owner())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = {cleanup.LABEL_RUN: "r"}
    return _FakeDocker(
        {
            "live": {**base, cleanup.LABEL_OWNER: cleanup.owner()},
            "dead": {**base, cleanup.LABEL_OWNER: dead},
            "kept": {**base, cleanup.LABEL_OWNER: dead, cleanup.LABEL_KEEP: "true"},
            "other-host": {**base, cleanup.LABEL_OWNER: "elsewhere:1:1"},
        }
    )


@pytest.mark.parametrize(
    ("options", "removed"),
    [
        ({}, ["dead"]),  # the start-up sweep
        ({"kept": True}, ["dead", "kept"]),  # nocrud clean
        ({"kept": True, "live": True}, ["live", "dead", "kept", "other-host"]),  # clean --all
    ],
)
def test_sweep_spares_live_runs_other_hosts_and_kept_environments_unless_asked(
    options: dict[str, bool], removed: list[str]
) -> None:
    fake = _sweep_fixture()
    report = cleanup.sweep(fake, **options)  # type: ignore[arg-type]
    assert fake.removed == removed
    assert report.containers == len(removed)
    assert report.spared == 4 - len(removed)
