"""A compiled server nocrud did not write, through the real CLI (issue 21a).

``tests/e2e/strangers/binapp`` is a small C program against libpq, built outside its
image by the host's gcc and copied in; its SQL migrations run by its own command; it has
no OpenAPI document, and it connects to its database once at start and exits when that
fails (the shape most Rust and Go services have). The module builds the binary and the
project's images once; each test names the item of issue 21 it shows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT, run_nocrud

# A Debian image build and runs of a small app: minutes when the machine is busy.
pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1200)]
#: Seconds a `nocrud up` may take (builds included) on a busy machine.
RUN_TIMEOUT = 900

BINAPP = Path(__file__).resolve().parent / "strangers" / "binapp"
NAME = f"{PROJECT}-binapp"


def _set(path: Path, **changes: Any) -> None:
    """Change dotted keys (``run__strategy``) of a nocrud.yaml in place."""
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            data.setdefault(section, {})[key] = value
        else:
            data[section] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def binapp(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A copy of the app with this session's project name, its binary built; cleaned up after."""
    root = tmp_path_factory.mktemp("binapp")
    shutil.copytree(BINAPP, root, dirs_exist_ok=True)
    _set(root / "nocrud.yaml", project=NAME)
    subprocess.run([root / "app" / "build.sh"], check=True, timeout=120)
    assert (root / "out" / "notes").is_file()
    yield root
    run_nocrud("clean", "--all", "--images", cwd=root, timeout=300)
    for image in docker_client.images.list(filters={"label": f"nocrud.project={NAME}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


def test_an_app_that_connects_once_at_start_passes_under_image(binapp: Path) -> None:
    """Item 1: the app starts only once its role has the environment's password.

    Before, under ``image`` the app was started before the password was set, and an app
    that connects once at start died with `password authentication failed` (or `the
    database system is starting up`) in every flow. Item 4 too: the binary comes from
    outside the build directory (``app.add_to_context``) and the port from a build
    argument, so no flow could pass without both. (``pool``, ``template`` and ``migrate``
    already started the app after the passwords; ``migrate`` runs below.)
    """
    done = run_nocrud("up", "-j", "2", cwd=binapp, timeout=RUN_TIMEOUT)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for name in (
        "a_note_is_stored_and_read_back",
        "an_unknown_note_is_404",
        "the_health_path_answers",
    ):
        assert re.search(rf"^PASSED  {name}", done.stdout, re.M), out
    assert "password authentication failed" not in out


def test_the_app_key_covers_a_dockerignored_dockerfile_and_never_nocrud_state(
    binapp: Path,
) -> None:
    """Item 2: app/.dockerignore lists the Dockerfile; editing it still rebuilds the image.

    ``.nocrud/`` state inside the build directory changes nothing (before, the key
    changed on every run and both images were rebuilt each time).
    """
    done = run_nocrud("build", cwd=binapp, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    (binapp / "app" / ".nocrud").mkdir(exist_ok=True)
    (binapp / "app" / ".nocrud" / "last-run.json").write_text("{}")
    done = run_nocrud("build", cwd=binapp, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "app image up to date" in done.stdout, done.stdout
    dockerfile = binapp / "app" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'LABEL binapp.edited="yes"\n')
    done = run_nocrud("build", cwd=binapp, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"built app image (\S+) ", done.stdout)
    assert found, done.stdout
    labels = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", found.group(1)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert '"binapp.edited":"yes"' in labels, labels


def test_an_edited_migration_is_the_one_the_migrate_command_applies(binapp: Path) -> None:
    """Item 3: the app's Dockerfile puts its migrations in /srv/migrations, not under
    its WORKDIR. Before, nocrud copied an edited migration to the guessed
    ``<WORKDIR>/migrations`` and kept the app image, so the command applied the old
    one and the build passed; now the edit rebuilds the app image and is what runs."""
    migration = binapp / "app" / "migrations" / "001_note.sql"
    original = migration.read_text()
    migration.write_text(original + "SELECT no_such_function_21();\n")
    try:
        done = run_nocrud("build", cwd=binapp, timeout=RUN_TIMEOUT)
    finally:
        migration.write_text(original)
    out = done.stdout + done.stderr
    assert done.returncode == 3, out
    assert "building app image" in done.stdout, out
    assert "001_note.sql failed" in out, out
    assert "no_such_function_21" in out, out


def test_a_failing_migrate_command_stops_a_migrate_run_once_with_exit_3(binapp: Path) -> None:
    """Item 8: under ``migrate`` the app's failing migrate command stops the run once.

    Before, the run exited 1 with every flow in ERROR and the command's output printed
    once per flow (and twice in each).
    """
    broken = binapp / "app" / "migrations" / "002_broken.sql"
    broken.write_text("CREATE TABLE oops (;\n")
    _set(binapp / "nocrud.yaml", run__strategy="migrate")
    try:
        done = run_nocrud("up", "-j", "2", cwd=binapp, timeout=RUN_TIMEOUT)
    finally:
        broken.unlink()
        _set(binapp / "nocrud.yaml", run__strategy="image")
    out = done.stdout + done.stderr
    assert done.returncode == 3, out
    assert out.count("002_broken.sql failed") == 1, out
    assert "syntax error" in out, out


def test_doctor_refuses_a_dockerfile_path_that_up_refuses(binapp: Path) -> None:
    """Items 9 and 10: a wrong app.dockerfile stops `up` and `doctor` alike with exit 2,
    and the message shows that the path starts at app.build (as docs/config.md says)."""
    _set(binapp / "nocrud.yaml", app__dockerfile="Dockerfile.missing")
    try:
        up = run_nocrud("up", cwd=binapp, timeout=300)
        doctor = run_nocrud("doctor", cwd=binapp, timeout=300)
        as_json = run_nocrud("doctor", "--json", cwd=binapp, timeout=300)
    finally:
        _set(binapp / "nocrud.yaml", app__dockerfile="Dockerfile")
    assert up.returncode == 2, up.stdout + up.stderr
    assert doctor.returncode == 2, doctor.stdout + doctor.stderr
    assert "ready to run flows" not in doctor.stdout
    assert "cannot run yet" in doctor.stdout, doctor.stdout
    checks = {check["name"]: check for check in json.loads(as_json.stdout)}
    assert checks["config"]["status"] == "fail", checks["config"]
    assert "app.dockerfile" in checks["config"]["detail"]
    assert str(binapp / "app" / "Dockerfile.missing") in checks["config"]["detail"]


def test_a_wrong_app_port_stops_the_run_in_seconds_naming_the_port_it_serves(
    binapp: Path,
) -> None:
    """What got in the way of a new user of this app: `app.port` left at a port the server
    does not use waited out `timeouts.app_ready` (240 s here) in every flow, then advised
    raising it. Now the run stops at once (exit 2), naming the port the app listens on."""
    config = binapp / "wrong-port.yaml"
    shutil.copy(binapp / "nocrud.yaml", config)
    # The server listens on 8081 (its build argument). Under migrate, no database image is
    # built for this config (an earlier test of the module edited a migration).
    _set(config, app__port=8080, run__strategy="migrate")
    done = run_nocrud(
        "-c", str(config), "up", "-f", "the_health_path_answers", cwd=binapp, timeout=RUN_TIMEOUT
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "its container listens on 0.0.0.0:8081" in out, out
    assert "Fix: set app.port to the port it serves on (8081)." in out, out
    assert "raise timeouts.app_ready" not in out, out


def test_doctor_fails_where_up_cannot_build_nocruds_own_images(
    binapp: Path, docker_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 9: a host where nocrud cannot build the images `up` needs. Here PostgreSQL 17
    (``nocrud/postgres:17``, on Debian trixie) with no registry and no `docker` command to
    make the base offline: `nocrud build` exits 3, and so does `nocrud doctor`, saying why."""
    import docker.errors

    for ref in ("nocrud/postgres:17", "debian:trixie-slim"):
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            continue
        pytest.skip(f"{ref} is on this Docker host (an earlier test built it): nothing to build")
    config = binapp / "postgres-17.yaml"
    shutil.copy(binapp / "nocrud.yaml", config)
    _set(config, database__version=17)
    empty = tmp_path / "bin"  # a PATH without docker, bash or debootstrap
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    doctor = run_nocrud("-c", str(config), "doctor", cwd=binapp, timeout=RUN_TIMEOUT)
    said = " ".join((doctor.stdout + doctor.stderr).split())
    assert doctor.returncode == 3, said
    assert "image debian:trixie-slim FAIL" in said or "FAIL image debian:trixie-slim" in said, said
    assert "`nocrud up` must build nocrud/postgres:17 from it" in said, said
    assert "this host lacks docker, bash" in said, said
    built = run_nocrud("-c", str(config), "build", cwd=binapp, timeout=RUN_TIMEOUT)
    out = built.stdout + built.stderr
    assert built.returncode == 3, out
    assert "debian:trixie-slim is not here, cannot be pulled" in out, out
