"""Scaffolding: generated files are valid, discovered, filled from OpenAPI, never overwrite.

That the generated flows also *run* as written is shown in test_crud.py, against its
fake REST server.
"""

from __future__ import annotations

import ast
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from nocrud.cli import authoring as cli_flows
from nocrud.flows import discover
from nocrud.flows.crud import CrudFlow
from nocrud.flows.scaffold import ScaffoldError, crud_source, flow_source, new_crud, new_flow

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {
        "/api/samples": {
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}}
                }
            },
            "get": {},
        },
        "/api/samples/{sample_id}": {"get": {}, "put": {}, "patch": {}, "delete": {}},
    },
    "components": {
        "schemas": {
            "In": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "readOnly": True},
                    "name": {"type": "string", "maxLength": 200},
                    "barcode": {"type": "string", "format": "uuid"},
                    "owner_email": {"type": "string"},
                    "mac": {"type": "string"},
                    "note": {"type": "string", "example": "kept cold", "maxLength": 12},
                    "code": {"type": "string", "maxLength": 8},
                    "kind": {"type": "string", "enum": ["blood", "tissue"]},
                    "volume_ml": {"type": "number"},
                    "count": {"type": "integer", "minimum": 0},
                    "frozen": {"type": "boolean"},
                    "freezer_id": {"type": "integer", "example": 1},
                    "extra": {"type": "object"},
                },
            }
        }
    },
}


@pytest.fixture
def flows_dir(tmp_path: Path) -> Iterator[Path]:
    name = f"flows_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    yield root
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_crud_file_from_openapi_holds_every_writable_field(flows_dir: Path) -> None:
    path = new_crud(flows_dir, "sample", "/api/samples/", document=DOCUMENT, auth=("ed", "pw"))
    assert path == flows_dir / "sample_crud.py"
    source = path.read_text()
    ast.parse(source)
    assert '"id"' not in source  # read-only
    for expected in (
        '"name": unique("sample")',
        '"barcode": unique_uuid()',
        '"owner_email": unique_email()',
        '"mac": unique_mac()',
        '"note": "kept cold"',
        '"code": unique(length=8)',
        '"kind": "blood"',
        '"volume_ml": 1.0',
        '"count": 0',
        '"frozen": True',
        "\"freezer_id\": 1,  # TODO: build the freezer first, e.g. build_freezer(ctx)['id']",
        '"extra": None,  # TODO: a valid value',
        'update=lambda ctx, obj: {"name": unique("sample")}',
        'partial_update=lambda ctx, obj: {"code": unique(length=8)}',
        'auth=("ed", "pw")',
        'tags=["sample"]',
    ):
        assert expected in source, expected
    [found] = discover(flows_dir)
    assert (found.name, found.kind) == ("sample_crud", "crud")
    assert isinstance(found.func, CrudFlow)
    assert found.func.spec.collection == "/api/samples"  # as the document has it
    assert '"/api/samples",  # as the OpenAPI document writes it (asked: /api/samples/)' in source


def test_example_values_change_within_their_length_limit() -> None:
    document = json.loads(json.dumps(DOCUMENT))
    properties = document["components"]["schemas"]["In"]["properties"]
    document["components"]["schemas"]["In"]["properties"] = {"note": properties["note"]}
    source = crud_source("sample", "/api/samples", document=document)
    assert 'update=lambda ctx, obj: {"note": "kept cold (u"}' in source
    assert 'partial_update=lambda ctx, obj: {"note": "kept cold (p"}' in source


def test_crud_file_without_a_document_is_a_minimal_start(flows_dir: Path) -> None:
    source = new_crud(flows_dir, "Lab-Room", "rooms").read_text()
    assert "lab_room_crud = crud(" in source
    assert '"/rooms"' in source
    assert '"name": unique("lab_room"),  # TODO: the fields a new object needs' in source
    assert "partial_update" not in source
    assert 'auth=None,  # e.g. ("user", "password") when writes need a login' in source
    assert [f.name for f in discover(flows_dir)] == ["lab_room_crud"]


def slashed(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with a trailing slash on every path, as Django REST framework has them."""
    copy = json.loads(json.dumps(document))
    copy["paths"] = {f"{path}/": ops for path, ops in copy["paths"].items()}
    return copy


def crud_spec(source: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "generated"}
    exec(compile(source, "generated.py", "exec"), namespace)
    [flow] = [v for v in namespace.values() if isinstance(v, CrudFlow)]
    return flow.spec


def test_a_trailing_slash_is_kept() -> None:
    source = crud_source("site", "/sites/")
    assert '    "/sites/",\n' in source
    assert (crud_spec(source).collection, crud_spec(source).item_template) == (
        "/sites/",
        "/sites/{id}/",
    )
    documented = crud_source("sample", "api/samples/", document=slashed(DOCUMENT))
    assert '    "/api/samples/",\n' in documented  # the document agrees: no note
    assert '"barcode": unique_uuid()' in documented and "partial_update=" in documented
    assert "item_path" not in documented and "upsert" not in documented


def test_an_item_path_whose_slash_differs_from_the_collection_is_written_out() -> None:
    document = {"paths": {"/api/things": {"post": {}}, "/api/things/{thing_id}/": {"get": {}}}}
    source = crud_source("thing", "/api/things", document=document)
    assert '    item_path="/api/things/{id}/",\n' in source
    assert crud_spec(source).item_template == "/api/things/{id}/"


def upsert_document(parameter: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": {"properties": properties}}}}
    item = {"parameters": [parameter], "get": {}, "put": {"requestBody": body}, "delete": {}}
    return {"paths": {"/readings/": {"get": {}}, "/readings/{reading_id}/": item}}


def test_an_app_creating_with_put_gets_an_upsert_with_a_chosen_id() -> None:
    uuid_param = {"name": "reading_id", "in": "path", "schema": {"type": "string"}}
    note = {"note": {"type": "string", "example": "ok"}}
    source = crud_source("reading", "/readings/", document=upsert_document(uuid_param, note))
    assert "    id=lambda ctx: unique_uuid(),  # the app takes ids chosen by the client\n" in source
    assert '    upsert="PUT",  # PUT /readings/{reading_id}/ creates the object\n' in source
    assert "from nocrud import crud, unique, unique_uuid\n" in source
    assert '"note": "ok"' in source and 'update=lambda ctx, obj: {"note": "ok (updated)"}' in source
    spec = crud_spec(source)
    assert (spec.upsert, callable(spec.chosen_id)) == ("PUT", True)

    int_param = {"name": "reading_id", "in": "path", "schema": {"type": "integer"}}
    numbered = crud_source("reading", "/readings/", document=upsert_document(int_param, note))
    assert "id=lambda ctx: unique_int()," in numbered
    assert "import crud, unique, unique_int\n" in numbered

    with_id = {"id": {"type": "string", "format": "uuid"}, **note}
    in_payload = crud_source("reading", "/readings/", document=upsert_document(uuid_param, with_id))
    assert '"id": unique_uuid()' in in_payload and "id=lambda" not in in_payload
    assert 'upsert="PUT"' in in_payload


def test_flow_file_calls_the_health_path(flows_dir: Path) -> None:
    path = new_flow(flows_dir, "checks_things", health_path="/status")
    source = path.read_text()
    assert 'ctx.api.get("/status", expect=200)' in source
    [found] = discover(flows_dir)
    assert (found.name, found.kind) == ("checks_things", "flow")
    assert found.summary.startswith("The app answers its health check")


def test_refuses_to_overwrite_or_to_reuse_a_name(flows_dir: Path) -> None:
    new_flow(flows_dir, "first")
    with pytest.raises(ScaffoldError, match="exists; not overwriting it"):
        new_flow(flows_dir, "first")
    (flows_dir / "other.py").write_text(
        "from nocrud.flows import flow\n\n@flow(name='site_crud')\ndef x(ctx):\n    pass\n"
    )
    with pytest.raises(
        ScaffoldError, match=r"a flow named 'site_crud' exists already \(.*other\.py:3\)"
    ):
        new_crud(flows_dir, "site", "/api/sites")
    assert not (flows_dir / "site_crud.py").exists()


@pytest.mark.parametrize("name", ["1abc", "class", "with space", ""])
def test_refuses_names_that_are_not_identifiers(flows_dir: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="cannot name a flow"):
        new_flow(flows_dir, name)


def test_refuses_a_directory_that_is_not_a_flows_package(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=r"no __init__\.py"):
        new_flow(tmp_path, "x")


def test_generated_sources_are_formatted_python() -> None:
    for source in (crud_source("site", "/api/sites", document=DOCUMENT), flow_source("a_b")):
        compile(source, "<generated>", "exec")
        assert "'" not in source.replace("['id']", "")  # double quotes, like ruff format
        # Flow authors import from nocrud, never from the modules behind it (issue 21).
        imports = [line for line in source.splitlines() if line.startswith("from nocrud")]
        assert imports and all(line.startswith("from nocrud import ") for line in imports)


def test_new_commands_write_into_the_configured_flows_package(tmp_path: Path) -> None:
    flows = tmp_path / "myflows"
    flows.mkdir()
    (flows / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        "project: demo\napp:\n  image: demo/app:1\n  health_path: /ping\n"
        'database:\n  migrate: ["true"]\nflows:\n  path: myflows\n'
    )
    (tmp_path / ".nocrud").mkdir()
    (tmp_path / ".nocrud" / "openapi.json").write_text(json.dumps(DOCUMENT))

    @click.group()
    def main() -> None:
        pass

    cli_flows.register(main)
    runner = CliRunner()
    obj = {"config_path": tmp_path / "nocrud.yaml"}
    made = runner.invoke(
        main,
        ["new", "crud", "sample", "--endpoint", "/api/samples", "--auth", "ed:s3:cret"],
        obj=obj,
    )
    assert made.exit_code == 0, made.output
    assert "run it with `nocrud up -f sample_crud`" in " ".join(made.output.split())
    text = (flows / "sample_crud.py").read_text()
    assert 'auth=("ed", "s3:cret")' in text and "unique_uuid()" in text  # filled from .nocrud
    again = runner.invoke(main, ["new", "crud", "sample", "--endpoint", "/x"], obj=obj)
    assert again.exit_code == 2 and "not overwriting" in again.output
    bad = runner.invoke(
        main, ["new", "crud", "s2", "--endpoint", "/x", "--auth", "nopass"], obj=obj
    )
    assert bad.exit_code == 2 and "USER:PASSWORD" in bad.output
    flow = runner.invoke(main, ["new", "flow", "smoke"], obj=obj)
    assert flow.exit_code == 0, flow.output
    assert 'ctx.api.get("/ping", expect=200)' in (flows / "smoke.py").read_text()


def test_a_declared_oauth2_password_flow_is_the_scaffolds_login() -> None:
    """Issue 21, item 5: the login the document declares, not a JSON bearer login."""
    flows = {"password": {"tokenUrl": "/api/v1/login/access-token", "scopes": {}}}
    schemes = {"OAuth2PasswordBearer": {"type": "oauth2", "flows": flows}}
    document = {**DOCUMENT, "components": {**DOCUMENT.get("components", {})}}
    document["components"]["securitySchemes"] = schemes
    given = crud_source("site", "/api/sites", document=document, auth=("alice", "pw"))
    assert "(tokenUrl /api/v1/login/access-token)" in given
    assert '    auth=lambda ctx: ctx.login("alice", "pw", form=True),\n' in given
    assert callable(crud_spec(given).auth)
    hinted = crud_source("site", "/api/sites", document=document)
    assert '    # auth=lambda ctx: ctx.login("user", "password", form=True),\n' in hinted
    assert crud_spec(hinted).auth is None
    # Swagger 2.0 declares it in securityDefinitions.
    swagger = {
        "swagger": "2.0",
        "paths": {},
        "securityDefinitions": {
            "password": {"type": "oauth2", "flow": "password", "tokenUrl": "/token"}
        },
    }
    assert "form=True" in crud_source("site", "/api/sites", document=swagger, auth=("a", "b"))


#: drf_yasg's shape: Swagger 2.0, definitions, a body parameter; creates answering 200
#: (as FastAPI's do) and a deleted object answering 400.
SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "basePath": "/",
    "paths": {
        "/api/tags/": {
            "post": {
                "parameters": [
                    {"name": "data", "in": "body", "schema": {"$ref": "#/definitions/Tag"}}
                ],
                "responses": {"200": {"description": ""}},
            },
            "get": {"responses": {"200": {"description": ""}}},
        },
        "/api/tags/{tag_id}/": {
            "parameters": [{"name": "tag_id", "in": "path", "type": "integer"}],
            "get": {"responses": {"200": {}, "400": {}}},
            "put": {"parameters": [{"in": "body", "schema": {"$ref": "#/definitions/Tag"}}]},
            "delete": {"responses": {"204": {}}},
        },
        "/api/uploads/": {
            "post": {
                "parameters": [
                    {"name": "title", "in": "formData", "type": "string"},
                    {"name": "file", "in": "formData", "type": "file"},
                ]
            }
        },
    },
    "definitions": {
        "Tag": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "readOnly": True},
                "name": {"type": "string", "maxLength": 40},
                "color": {"type": "string", "example": "red"},
                "parent": {},
            },
        }
    },
}


def test_a_swagger_2_document_is_read_and_what_is_not_understood_is_said() -> None:
    """Issue 21, item 6: definitions and body parameters, the statuses the document
    lists; no placeholder where the document has fields, and no silence where it has
    something the scaffold cannot use."""
    notes: list[str] = []
    source = crud_source("tag", "/api/tags/", document=SWAGGER, notes=notes)
    ast.parse(source)
    assert '"name": unique("tag"),' in source
    assert '"color": "red",' in source
    assert "TODO: the fields a new object needs" not in source
    assert "create_status=200,  # what the OpenAPI document lists for POST /api/tags/" in source
    assert "gone_status=400," in source
    assert notes == ["no type or example in the document for parent: each is None with a TODO"]
    notes = []
    crud_source("upload", "/api/uploads/", document=SWAGGER, notes=notes)
    assert notes[0].startswith("POST /api/uploads/ takes a form (formData), not JSON")
    notes = []
    crud_source("thing", "/api/things/", document=SWAGGER, notes=notes)
    assert notes == [
        "the OpenAPI document has no /api/things/ (nor /api/things): check --endpoint "
        "against `nocrud coverage`'s paths"
    ]


def _package(root: Path) -> Path:
    """A flows package of a name no other test uses (discovery imports it by name)."""
    package = root / f"flows_{uuid.uuid4().hex[:8]}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    return package


@pytest.fixture(autouse=True)
def _forget_flow_packages() -> Iterator[None]:
    """Flows packages the commands imported leave sys.modules with the test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0].startswith(("flows", "myflows")):
            del sys.modules[name]


def test_new_crud_reads_app_openapi_and_says_where_the_fields_came_from(tmp_path: Path) -> None:
    """`app.openapi: swagger.yaml` is the document, not ignored for .nocrud's copy or none."""
    import yaml

    flows = _package(tmp_path)
    (tmp_path / "swagger.yaml").write_text(yaml.safe_dump(SWAGGER))
    config = (
        f"project: demo\napp:\n  image: demo/app:1\n  openapi: swagger.yaml\n"
        f"flows:\n  path: {flows.name}\n"
    )
    (tmp_path / "nocrud.yaml").write_text(config)

    @click.group()
    def main() -> None:
        pass

    cli_flows.register(main)
    runner = CliRunner()
    obj = {"config_path": tmp_path / "nocrud.yaml"}
    made = runner.invoke(main, ["new", "crud", "tag", "--endpoint", "/api/tags/"], obj=obj)
    assert made.exit_code == 0, made.output
    said = " ".join(made.output.split())
    assert "fields from app.openapi (swagger.yaml) (Swagger 2.0)" in said
    assert "not understood: no type or example in the document for parent" in said
    assert "create_status=200" in (flows / "tag_crud.py").read_text()
    # A path on the app, never fetched yet: said plainly, with what to do.
    (tmp_path / "nocrud.yaml").write_text(config.replace("swagger.yaml", "/swagger/"))
    made = runner.invoke(main, ["new", "crud", "label", "--endpoint", "/api/labels/"], obj=obj)
    assert made.exit_code == 0, made.output
    said = " ".join(made.output.split())
    assert "no OpenAPI document: none saved yet (a run saves the one the app serves at " in said
    assert "app.openapi (/swagger/)): run `nocrud up` first" in said
    assert "the payload is a placeholder: fill in the fields marked TODO" in said


def test_new_crud_after_a_run_that_found_no_document_says_what_it_tried(tmp_path: Path) -> None:
    flows = _package(tmp_path)
    (tmp_path / "nocrud.yaml").write_text(
        f"project: demo\napp:\n  image: demo/app:1\nflows:\n  path: {flows.name}\n"
    )
    (tmp_path / ".nocrud").mkdir()
    tried = [{"path": "/openapi.json", "answer": "404 Not Found"}]
    record = {"base_url": "http://127.0.0.1:1", "tried": tried, "found": None}
    (tmp_path / ".nocrud" / "openapi-attempts.json").write_text(json.dumps(record))

    @click.group()
    def main() -> None:
        pass

    cli_flows.register(main)
    made = CliRunner().invoke(
        main,
        ["new", "crud", "note", "--endpoint", "/notes"],
        obj={"config_path": tmp_path / "nocrud.yaml"},
    )
    said = " ".join(made.output.split())
    assert made.exit_code == 0, said
    assert (
        "no OpenAPI document: the last `nocrud up` found none (GET /openapi.json: 404 Not "
        "Found): set app.openapi to the path the app serves it at (then `nocrud up`)"
    ) in said
