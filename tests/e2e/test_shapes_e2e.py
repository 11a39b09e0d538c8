"""The OpenAPI shapes of apps nocrud did not write (issue 21, items 6, 11 and 13).

``tests/e2e/strangers/loginapp``'s tags, configured by its ``shapes.yaml``, are a
drf_yasg-documented API: a Swagger 2.0 document at ``/swagger/?format=openapi`` that
answers 406 to ``Accept: application/json`` (``app.headers`` changes it), creates that
answer 200, an id chosen by the client sent as ``tag_id`` and answered as ``id``, and 400
for a deleted tag. One ``nocrud up`` of its hand-written flows is shared by the tests
here (module-scoped); then ``nocrud new crud`` writes a flow from the document that run
saved, which runs as written; then a wrong ``health_path``. Everything is removed at the
end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT, labelled, run_nocrud

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1800)]
#: Seconds one `nocrud up` (builds included) may take on a busy machine.
RUN_TIMEOUT = 1500

LOGINAPP = Path(__file__).resolve().parent / "strangers" / "loginapp"
NAME = f"{PROJECT}-shapes"


@dataclass(frozen=True)
class Shapes:
    """The app's copy and its first run."""

    here: Path
    first: subprocess.CompletedProcess[str]

    def up(self, *args: str, config: str = "shapes.yaml") -> subprocess.CompletedProcess[str]:
        return run_nocrud("-c", config, *args, cwd=self.here, timeout=RUN_TIMEOUT)


@pytest.fixture(scope="module")
def shapes(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shapes]:
    here = tmp_path_factory.mktemp("shapes")
    shutil.copytree(LOGINAPP, here, dirs_exist_ok=True)
    config = here / "shapes.yaml"
    data = yaml.safe_load(config.read_text())
    data["project"] = NAME
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        first = run_nocrud("-c", "shapes.yaml", "up", "-j", "2", cwd=here, timeout=RUN_TIMEOUT)
        yield Shapes(here, first)
    finally:
        run_nocrud("-c", "shapes.yaml", "clean", "--all", "--images", cwd=here, timeout=300)
        for image in docker_client.images.list(filters={"label": f"nocrud.project={NAME}"}):
            for tag in image.tags:
                docker_client.images.remove(tag, force=True)
    assert not labelled(docker_client, NAME)


def test_the_documents_create_status_an_id_sent_under_another_name_and_the_apps_gone(
    shapes: Shapes,
) -> None:
    """Items 6a, 6c and 13: app.headers' Accept reaches a drf_yasg-like document; crud()
    takes 200 from the Swagger 2.0 document, sends its chosen id as tag_id, and takes
    400 as gone; the run saved the document (fetched from app.openapi's path)."""
    out = shapes.first.stdout + shapes.first.stderr
    assert shapes.first.returncode == 0, out
    assert re.search(r"^PASSED  tag_crud_by_hand  C✔ R✔ U✔ L✔ D✔", out, re.M), out
    assert "PASSED  swagger_document_with_the_configured_accept" in out, out
    saved = yaml.safe_load((shapes.here / ".nocrud" / "openapi.json").read_text())
    assert saved["swagger"] == "2.0"


def test_new_crud_writes_a_flow_from_the_swagger_document_that_runs(shapes: Shapes) -> None:
    """Item 6b: the document app.openapi names (as the run saved it), Swagger 2.0 read:
    fields from its definitions, the statuses it lists; the flow passes as written."""
    assert shapes.first.returncode == 0
    made = shapes.up("new", "crud", "tag", "--endpoint", "/api/tags/")
    said = " ".join((made.stdout + made.stderr).split())
    assert made.returncode == 0, said
    assert "from the app at app.openapi (/swagger/?format=openapi) (Swagger 2.0)" in said
    source = (shapes.here / "shapes" / "tag_crud.py").read_text()
    assert '"name": unique("tag"),' in source and '"color": "teal",' in source
    assert "TODO" not in source, source
    assert "create_status=200," in source and "gone_status=400," in source
    done = shapes.up("up", "-f", "tag_crud")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED  tag_crud  C✔ R✔ U✔ L✔ D✔" in done.stdout, done.stdout


def test_a_wrong_health_path_is_said_once_with_a_path_that_answers(shapes: Shapes) -> None:
    """Item 11: the advice once per run, the polls' 404s not repeated, and the health path
    the app's OpenAPI document (/openapi.json) lists suggested."""
    config = shapes.here / "wrong-health.yaml"
    data = yaml.safe_load((shapes.here / "shapes.yaml").read_text())
    data["app"]["health_path"] = "/healthcheck"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    done = shapes.up("up", "-j", "2", config=config.name)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert out.count("so the path is probably wrong") == 1, out
    assert (
        "GET /health answers 200 (listed in the app's OpenAPI document (/openapi.json)): "
        "try app.health_path: /health"
    ) in out, out
    assert out.count("GET /healthcheck HTTP") == 0, out  # the polls are not the app's logs
