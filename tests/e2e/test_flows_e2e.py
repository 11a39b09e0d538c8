"""Flows on the real example_app through the real `nocrud up`: CRUD steps, coverage, docs.

- a copy of example_app whose PUT ignores one field makes exactly the update step of
  site_crud fail, with a message naming the field, and every other step pass;
- the bundled flows (all but the isolation ones, which test_up.py runs) pass, exercise
  every operation of the app's OpenAPI document, and leave timings for `nocrud perf`;
  flows written by `nocrud new` run as written;
- the ``python run`` examples of docs/flows.md pass against the app.

`nocrud perf`, `coverage` and `new` read and write files only; they are invoked
in-process (click's runner) on the files the real `nocrud up` left behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from nocrud.cli import authoring as cli_flows

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]


def flow_command(config: Path, *args: str) -> Any:
    """Run `nocrud perf|coverage|new ...` on a project, in-process."""

    @click.group()
    def main() -> None:
        pass

    cli_flows.register(main)
    return CliRunner().invoke(main, list(args), obj={"config_path": config}, env={"NO_COLOR": "1"})


def results_of(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return {flow["name"]: flow for flow in data["flows"]}


# PUT (partial=False) drops "contact" before the UPDATE, so the old value stays.
_BREAK_PUT = (
    "    body = check_body(\n"
    "        read_json_object(), resource.fields, read_only=resource.read_only, partial=partial\n"
    "    )\n"
)


def test_a_put_that_ignores_a_field_fails_only_the_update_step_naming_it(harness: Any) -> None:
    app = harness.copy_example_app()
    crud_module = app / "inventory" / "crud.py"
    source = crud_module.read_text()
    assert source.count(_BREAK_PUT) == 1, "example_app's update_object changed: adapt the patch"
    crud_module.write_text(
        source.replace(
            _BREAK_PUT,
            _BREAK_PUT + "    if not partial:\n        body.values.pop('contact', None)\n",
        )
    )
    harness.config(app__build=str(app), database__migrations=[str(app / "migrations")])
    results = harness.dir / "results.json"

    proc = harness.run("up", "-f", "site_crud", "-f", "freezer_crud", "--json", str(results))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 passed, 1 failed" in out
    assert "C✔ R✔ U✘ L✔ D✔" in out or "C+ R+ Ux L+ D+" in out

    flows = results_of(results)
    assert flows["freezer_crud"]["status"] == "passed"  # freezers have no contact
    site = flows["site_crud"]
    assert site["status"] == "failed"
    steps = {step["name"]: step for step in site["steps"]}
    assert [step["name"] for step in site["steps"]] == [
        "create",
        "read",
        "update",
        "list",
        "delete",
    ]
    assert {name: step["status"] for name, step in steps.items()} == {
        "create": "passed",
        "read": "passed",
        "update": "failed",
        "list": "passed",
        "delete": "passed",
    }
    message = steps["update"]["message"]
    assert "field 'contact': sent 'Grace Hopper', got 'Ada Lovelace'" in message, message
    assert message.startswith("after PUT /api/sites/")
    assert "'address'" not in message and "'country'" not in message  # those were applied
    assert harness.leftovers() == []


def test_bundled_flows_pass_and_cover_every_operation_of_the_app(harness: Any) -> None:
    config = harness.config()
    proc = harness.run("up", "-j", "3", "-k", "not isolation", "--perf", timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "request timings written to" in out
    flows = results_of(harness.dir / ".nocrud" / "last-run.json")
    assert len(flows) >= 20
    assert all(flow["status"] == "passed" for flow in flows.values())
    assert "C✔ R✔ U✔ L✔ D✔" in out or "C+ R+ U+ L+ D+" in out

    coverage = flow_command(config, "coverage", "--fail-under", "100")
    assert coverage.exit_code == 0, coverage.output
    assert "covered 30 of 30 operations (100.0%)" in coverage.output
    data = json.loads(flow_command(config, "coverage", "--json").output)
    statuses = {(op["method"], op["path"]): op["statuses"] for op in data["operations"]}
    assert 409 in statuses[("DELETE", "/api/freezers/{id}")]
    assert 403 in statuses[("POST", "/api/sites")] and 401 in statuses[("POST", "/api/sites")]
    assert 400 in statuses[("POST", "/api/computers")]

    assert flow_command(config, "perf", "--baseline").exit_code == 0
    compared = flow_command(config, "perf")
    assert compared.exit_code == 0, compared.output  # a run compared with itself
    assert "GET /api/sites/{id}" in compared.output

    # Scaffolded flows, filled from the OpenAPI document this run saved, run as written.
    scaffolded = harness.dir / "scaffolded"
    scaffolded.mkdir()
    (scaffolded / "__init__.py").write_text("")
    config = harness.config(flows__path=str(scaffolded))
    made = flow_command(
        config,
        "new",
        "crud",
        "site",
        "--endpoint",
        "/api/sites",
        "--auth",
        "editor:editor-password",
    )
    assert made.exit_code == 0, made.output
    assert "postcode_or_zip" in (scaffolded / "site_crud.py").read_text()
    assert flow_command(config, "new", "flow", "smoke").exit_code == 0
    proc = harness.run("up", "-j", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert harness.leftovers() == []


def test_documented_examples_pass_against_the_example_app(harness: Any) -> None:
    sys.path.insert(0, str(REPO / "tests" / "unit"))
    try:
        from test_readme_examples import runnable_blocks, write_flows_package
    finally:
        sys.path.remove(str(REPO / "tests" / "unit"))
    blocks = runnable_blocks(REPO / "docs" / "flows.md") + runnable_blocks(REPO / "README.md")
    package = write_flows_package(harness.dir, blocks)
    harness.config(flows__path=str(package))
    results = harness.dir / "results.json"
    proc = harness.run("up", "-j", "2", "--json", str(results), timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    flows = results_of(results)
    assert len(flows) >= 8
    assert flows["users_see_their_role[viewer]"]["status"] == "passed"
    assert flows["editor_creates_a_site_the_viewer_can_read"]["status"] == "passed"
    readme_crud = [s["status"] for s in flows["readme_computer_crud"]["steps"]]
    assert readme_crud == ["passed"] * 5
    assert [s["name"] for s in flows["logout_revokes_the_token"]["steps"]] == [
        "login",
        "out",
        "refused",
    ]
    assert harness.leftovers() == []
