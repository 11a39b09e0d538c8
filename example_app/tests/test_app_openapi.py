"""The OpenAPI document lists exactly the app's operations and describes them truly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from inventory import create_app
from inventory.openapi import build_document
from inventory_testing import EDITOR, Api

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.is_json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def url_map_operations(app: Flask) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operations.add((method.lower(), path))
    return operations


def document_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_document_lists_exactly_the_routes_of_the_url_map(
    app: Flask, document: dict[str, Any]
) -> None:
    assert document_operations(document) == url_map_operations(app)
    assert len(document_operations(document)) == 4 * 6 + 1 + 3 + 2  # CRUD, instruments, auth, meta


def test_every_crud_operation_is_there(document: dict[str, Any]) -> None:
    operations = document_operations(document)
    for plural in ("sites", "computers", "freezers", "containers"):
        assert {("get", f"/api/{plural}"), ("post", f"/api/{plural}")} <= operations
        for method in ("get", "put", "patch", "delete"):
            assert (method, f"/api/{plural}/{{id}}") in operations
    assert ("get", "/api/sites/{id}/instruments") in operations
    assert ("get", "/health") in operations
    assert ("post", "/api/auth/login") in operations


def test_document_is_well_formed(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"]
    assert document["info"]["version"]
    for reference in refs(document):
        assert reference.startswith("#/components/"), reference
        resolve(document, {"$ref": reference})  # raises KeyError when dangling
    operation_ids = []
    for path, item in document["paths"].items():
        declared = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            assert operation["summary"]
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status), (path, method, status)
                assert resolve(document, response)["description"]
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, (path, method)
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
    assert len(operation_ids) == len(set(operation_ids))


def test_writes_declare_bearer_auth_and_reads_do_not(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            is_write = path.startswith("/api/") and not path.startswith("/api/auth/")
            is_write = is_write and method != "get"
            if is_write:
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
            else:
                assert "security" not in operation, (method, path)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_status_codes_match_the_implementation(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths["/api/sites"]["post"]["responses"]) >= {"201", "400", "401", "403", "409"}
    assert "204" in paths["/api/freezers/{id}"]["delete"]["responses"]
    assert "409" in paths["/api/freezers/{id}"]["delete"]["responses"]
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    assert "404" in paths["/api/sites/{id}"]["get"]["responses"]


@pytest.mark.parametrize("resource", ["site", "computer", "freezer", "container"])
def test_schemas_match_real_responses(
    client: FlaskClient, api: Api, document: dict[str, Any], resource: str
) -> None:
    schemas = document["components"]["schemas"]
    title = resource.title()
    created = api.create(resource)
    assert set(created) == set(schemas[title]["properties"])
    assert set(schemas[title]["required"]) == set(created)
    listed = client.get(f"/api/{resource}s").json
    assert listed is not None
    assert set(listed) == set(schemas[f"{title}List"]["required"])

    # What the API says is required is what the schema says is required.
    response = client.post(f"/api/{resource}s", json={}, headers=EDITOR)
    assert response.json is not None
    missing = {
        field for field, problem in response.json["fields"].items() if problem == "is required"
    }
    assert missing == set(schemas[f"{title}Input"]["required"])
    assert schemas[f"{title}Input"]["additionalProperties"] is False
    for name, spec in schemas[f"{title}Input"]["properties"].items():
        if spec.get("readOnly"):
            assert name in ("id", "code", "created_at")


def test_document_is_served_identically_each_time(client: FlaskClient) -> None:
    assert client.get("/openapi.json").json == client.get("/openapi.json").json


def test_a_route_without_a_description_is_an_error() -> None:
    app = create_app("postgresql://unused@127.0.0.1:1/none")
    app.add_url_rule("/undocumented", "undocumented", lambda: "")
    with pytest.raises(LookupError, match=r"/undocumented \(undocumented\) has no OpenAPI"):
        build_document(app)
