"""Logins and redirects of apps nocrud did not write (issue 21, items 5 and 7).

``tests/e2e/strangers/loginapp`` declares an OAuth2 password flow in its OpenAPI
document and redirects an anonymous write to an external login page. One ``nocrud up``
of its two flows is shared by the tests here (module-scoped); its images and
environments are removed at the end.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT, labelled, run_nocrud

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1800)]
#: Seconds one `nocrud up` (builds included) may take on a busy machine.
RUN_TIMEOUT = 1500

LOGINAPP = Path(__file__).resolve().parent / "strangers" / "loginapp"
NAME = f"{PROJECT}-login"


@pytest.fixture(scope="module")
def run(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """The output and exit code of one `nocrud up` of loginapp; cleaned up after."""
    here = tmp_path_factory.mktemp("loginapp")
    shutil.copytree(LOGINAPP, here, dirs_exist_ok=True)
    config = here / "nocrud.yaml"
    data = yaml.safe_load(config.read_text())
    data["project"] = NAME
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        done = run_nocrud("up", "-j", "2", cwd=here, timeout=RUN_TIMEOUT)
        yield done.stdout + done.stderr, done.returncode
    finally:
        run_nocrud("clean", "--all", "--images", cwd=here, timeout=300)
        for image in docker_client.images.list(filters={"label": f"nocrud.project={NAME}"}):
            for tag in image.tags:
                docker_client.images.remove(tag, force=True)
    assert not labelled(docker_client, NAME)


def test_a_redirect_off_the_app_is_a_failed_flow_with_its_location(
    run: tuple[str, int],
) -> None:
    out, code = run
    assert code == 1, out
    assert "FAILED  anonymous_write_is_sent_to_the_login_page" in out, out
    assert "ERROR" not in out, out
    assert "could not reach the app" not in out, out
    assert re.search(r"POST \S+/api/notes -> 302 found \(expected 2xx\)", out, re.I), out
    assert "Location: https://sso.example.invalid/login?next=/api/notes (not followed)" in out


def test_an_oauth2_password_login_from_the_openapi_document(run: tuple[str, int]) -> None:
    out, _ = run
    assert "PASSED  oauth2_login_then_write" in out, out
    # The password never shows, and the token was asked for as a form.
    assert "wonderland-42" not in out, out
