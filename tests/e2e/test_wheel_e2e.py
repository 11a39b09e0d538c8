"""A nocrud installed from its wheel, outside the checkout, builds its own images (issue 13).

The wheel is built from a copy of the source (so no ``build/`` is left in the checkout)
and installed into a fresh virtual environment in a temporary directory. Its
dependencies are the test run's own, made visible by a ``.pth`` line rather than
downloaded again (minutes on a CI machine); nocrud itself, and the image assets it
builds from, come from the wheel only, which the test checks. The project asks for
PostgreSQL 17 (``database.version: 17``), which nothing else here builds: the wheel's
nocrud makes ``nocrud/postgres:17`` from its packaged Dockerfile on Debian trixie (the
base image made offline with debootstrap when it cannot be pulled). That image and
``debian:trixie-slim`` are kept afterwards, like the other base images.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT, REPO, labelled

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

WHEEL_PROJECT = f"{PROJECT}-wheel"
#: Variables that would let the venv's Python find the checkout's nocrud instead.
_CHECKOUT = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")


def _run(*args: str | Path, cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        # Docker's settings (DOCKER_HOST, ...) kept; nothing that would find the checkout.
        env={k: v for k, v in os.environ.items() if k not in _CHECKOUT} | {"NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``nocrud`` command of a fresh virtual environment holding only the wheel."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    # Symlinks followed: the wheel gets files, whatever the checkout links.
    shutil.copytree(
        REPO / "runner",
        source / "runner",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", source],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert not (REPO / "build").exists()
    (wheel,) = (root / "dist").glob("nocrud-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    (own_site,) = (venv / "lib").glob("python3*/site-packages")
    # The test run's dependencies, after the venv's own packages (so the wheel's nocrud wins).
    (own_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    done = _run(venv / "bin" / "pip", "install", "-q", "--no-deps", wheel, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    where = _run(venv / "bin" / "python", "-c", "import nocrud; print(nocrud.__file__)", cwd=root)
    assert where.stdout.startswith(str(own_site)), where.stdout + where.stderr
    assert (own_site / "nocrud" / "images" / "assets" / "postgres" / "Dockerfile").is_file()
    assert (own_site / "nocrud" / "images" / "assets" / "reaper" / "reaper.py").is_file()
    return venv / "bin" / "nocrud"


@pytest.fixture
def weather(docker_client: Any, base_images: None, tmp_path: Path) -> Iterator[Path]:
    """The second stranger's app, asking for PostgreSQL 17, under its own project name."""
    shutil.copytree(Path(__file__).parent / "strangers" / "weather", tmp_path / "weather")
    config = tmp_path / "weather" / "nocrud.yaml"
    data = yaml.safe_load(config.read_text())
    data["project"] = WHEEL_PROJECT
    data["database"]["version"] = 17
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    yield tmp_path / "weather"
    for image in docker_client.images.list(filters={"label": f"nocrud.project={WHEEL_PROJECT}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


# Building nocrud/postgres:17 the first time (Debian trixie's base made offline, then
# postgresql-17 from Debian's mirror) takes minutes on a busy machine; later runs reuse it.
@pytest.mark.timeout(2400)
def test_a_wheel_builds_its_own_postgres_and_runs_flows_on_it(
    installed: Path, weather: Path, docker_client: Any
) -> None:
    built = _run(installed, "build", cwd=weather)
    assert built.returncode == 0, built.stdout + built.stderr
    assert docker_client.images.get("nocrud/postgres:17")
    if "building nocrud/postgres:17" in built.stdout:  # not when an earlier run made it
        assert "from nocrud's own Dockerfile" in built.stdout
    done = _run(installed, "up", "-f", "station_crud", cwd=weather)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED  station_crud  C✔ R✔ U✔ L✔ D✔" in done.stdout
    env = docker_client.images.get("nocrud/postgres:17").attrs["Config"]["Env"]
    assert "PG_MAJOR=17" in env
    assert not labelled(docker_client, WHEEL_PROJECT)
