"""Labels, owners, names and the sweep of what dead runs left, with a fake at the Docker seam."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nocrud.docker import cleanup


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


@pytest.mark.parametrize(
    "name",
    ["site_crud", "Ünïcode flow ✓", "a/b\\c:d*e", "x" * 300, "---", "test[param-1]", ""],
)
def test_safe_name_is_docker_safe_and_bounded(name: str) -> None:
    cleaned = cleanup.safe_name(name)
    assert cleaned
    assert len(cleaned) <= 40
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in cleaned)
    assert not cleaned.startswith(("-", "."))


# ---------------------------------------------------------------- cache keys


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
