"""A compiled server nocrud did not write, through the real CLI (issue 21a).

``tests/e2e/strangers/binapp`` is a small C program against libpq, built outside its
image by the host's gcc and copied in; its SQL migrations run by its own command; it has
no OpenAPI document, and it connects to its database once at start and exits when that
fails (the shape most Rust and Go services have). The module builds the binary and the
project's images once; each test names the item of issue 21 it shows.
"""

from __future__ import annotations

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
    yield root
    run_nocrud("clean", "--all", "--images", cwd=root, timeout=300)
    for image in docker_client.images.list(filters={"label": f"nocrud.project={NAME}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


@pytest.mark.parametrize("strategy", ["image", "pool"])
def test_an_app_that_connects_once_at_start_passes_under_every_strategy(
    binapp: Path, strategy: str
) -> None:
    """Item 1: the app starts only once its role has the environment's password.

    Before, under ``image`` the app was started before the password was set, and an app
    that connects once at start died with `password authentication failed` (or a refused
    connection) in most flows.
    """
    _set(binapp / "nocrud.yaml", run__strategy=strategy)
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
