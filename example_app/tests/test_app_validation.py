"""Bad input is answered with 4xx and field messages, never with a 500."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from inventory_testing import EDITOR, Api


def _post_raw(client: FlaskClient, path: str, data: bytes | str) -> Any:
    return client.post(path, data=data, headers={**EDITOR, "Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "request body must be a JSON object, got an empty body"),
        (b"name=x", "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"[]", "request body must be a JSON object, got an array"),
        (b'"site"', "request body must be a JSON object, got a string"),
        (b"null", "request body must be a JSON object, got null"),
        (b"12", "request body must be a JSON object, got a number"),
        (b'{"name": NaN}', "request body is not valid JSON: NaN is not valid JSON"),
        (b"[" * 100_000, "request body is not valid JSON: nested too deeply"),
        (b"\xff\xfe\xfa", None),
    ],
)
def test_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, data: bytes, error: str | None
) -> None:
    response = _post_raw(client, "/api/sites", data)
    assert response.status_code == 400
    assert response.json is not None
    if error is not None:
        assert response.json == {"error": error}
    assert "fields" not in response.json


def test_non_json_content_type_with_json_body_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/api/sites",
        data=json.dumps({"name": "Plain"}),
        headers={**EDITOR, "Content-Type": "text/plain"},
    )
    assert response.status_code == 201


def test_body_over_one_mebibyte_is_413(client: FlaskClient) -> None:
    response = _post_raw(client, "/api/sites", json.dumps({"name": "x" * (1024 * 1024)}))
    assert response.status_code == 413
    assert response.json == {"error": "request body must be at most 1048576 bytes"}


def test_every_problem_is_reported_per_field(client: FlaskClient) -> None:
    response = client.post(
        "/api/computers",
        json={"name": "  ", "mac": "08:00:2b:01:02", "colour": "red", "id": 3},
        headers=EDITOR,
    )
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid request body",
        "fields": {
            "colour": "is not a known field",
            "name": "must not be blank",
            "mac": "must be a MAC address like 08:00:2b:01:02:03",
            "site_id": "is required",
        },
    }


def test_read_only_fields_cannot_be_set_on_create(client: FlaskClient) -> None:
    response = client.post("/api/sites", json={"name": "x", "id": 7, "code": "X-7"}, headers=EDITOR)
    assert response.status_code == 400
    assert response.json == {
        "error": "read-only fields of a site cannot be set",
        "fields": {"id": "is read-only", "code": "is read-only"},
    }


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("/api/sites", {}, "name", "is required"),
        ("/api/sites", {"name": None}, "name", "must not be null"),
        ("/api/sites", {"name": 12}, "name", "must be a string"),
        ("/api/sites", {"name": ["a"]}, "name", "must be a string"),
        ("/api/sites", {"name": "a\u0000b"}, "name", "must not contain NUL characters"),
        ("/api/sites", {"name": "x" * 201}, "name", "must be at most 200 characters"),
        ("/api/sites", {"name": "ok", "contact": 5}, "contact", "must be a string or null"),
        ("/api/sites", {"name": "ok", "postcode_or_zip": "1" * 21}, "postcode_or_zip",
         "must be at most 20 characters"),
        ("/api/computers", {"name": "c", "mac": "zz:00:2b:01:02:03", "site_id": 1}, "mac",
         "must be a MAC address like 08:00:2b:01:02:03"),
        ("/api/computers", {"name": "c", "mac": 8, "site_id": 1}, "mac", "must be a string"),
        ("/api/computers", {"name": "c", "mac": "08:00:2b:01:02:03", "site_id": "1"}, "site_id",
         "must be an integer"),
        ("/api/computers", {"name": "c", "mac": "08:00:2b:01:02:03", "site_id": True}, "site_id",
         "must be an integer"),
        ("/api/computers", {"name": "c", "mac": "08:00:2b:01:02:03", "site_id": 1.0}, "site_id",
         "must be an integer"),
        ("/api/computers", {"name": "c", "mac": "08:00:2b:01:02:03", "site_id": 0}, "site_id",
         "must be the id of a site (a positive integer)"),
        ("/api/computers", {"name": "c", "mac": "08:00:2b:01:02:03", "site_id": 2**63}, "site_id",
         "must be the id of a site (a positive integer)"),
        ("/api/freezers", {"name": "f", "site_id": 1, "temperature_c": -300}, "temperature_c",
         "must be between -200 and 20"),
        ("/api/freezers", {"name": "f", "site_id": 1, "temperature_c": -80.5}, "temperature_c",
         "must be an integer or null"),
        ("/api/containers", {"uuid": "123e4567", "freezer_id": 1}, "uuid",
         "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"),
        ("/api/containers", {"uuid": "{123e4567-e89b-12d3-a456-426614174000}", "freezer_id": 1},
         "uuid", "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"),
        ("/api/containers", {"uuid": "123e4567-e89b-12d3-a456-426614174000", "freezer_id": 1,
                             "description": "d" * 1001}, "description",
         "must be at most 1000 characters"),
    ],
)  # fmt: skip
def test_field_messages(
    client: FlaskClient, path: str, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post(path, json=body, headers=EDITOR)
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"] == "invalid request body"
    assert response.json["fields"][field] == message


def test_lone_surrogate_is_400(client: FlaskClient) -> None:
    response = _post_raw(client, "/api/sites", '{"name": "bad \\ud800 text"}')
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid request body",
        "fields": {"name": "must be valid Unicode (no lone surrogates)"},
    }


def test_patch_validates_only_given_fields_but_still_refuses_null(
    client: FlaskClient, api: Api
) -> None:
    site = api.site()
    response = client.patch(f"/api/sites/{site['id']}", json={"name": None}, headers=EDITOR)
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid request body",
        "fields": {"name": "must not be null"},
    }
    cleared = client.patch(f"/api/sites/{site['id']}", json={"country": None}, headers=EDITOR)
    assert cleared.json == {**site, "country": None}


@pytest.mark.parametrize("bad_id", ["abc", "-1", "1.5", "1e3", "%20", "0x1f", "٣"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_bad_ids_in_paths_are_400(client: FlaskClient, bad_id: str, method: str) -> None:
    response = client.open(f"/api/freezers/{bad_id}", method=method, json={}, headers=EDITOR)
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid id in path",
        "fields": {"id": "must be a positive integer"},
    }


BAD_OFFSET = "must be an integer between 0 and 9223372036854775807"


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("offset=-1", {"offset": BAD_OFFSET}),
        ("offset=abc", {"offset": BAD_OFFSET}),
        ("offset=", {"offset": BAD_OFFSET}),
        ("offset=99999999999999999999", {"offset": BAD_OFFSET}),
        ("limit=0", {"limit": "must be an integer between 1 and 500"}),
        ("limit=501", {"limit": "must be an integer between 1 and 500"}),
        ("limit=1.5", {"limit": "must be an integer between 1 and 500"}),
        ("limit=x&offset=y", {
            "offset": BAD_OFFSET,
            "limit": "must be an integer between 1 and 500",
        }),
    ],
)  # fmt: skip
def test_bad_pagination_is_400(client: FlaskClient, query: str, fields: dict[str, str]) -> None:
    response = client.get(f"/api/containers?{query}")
    assert response.status_code == 400
    assert response.json == {"error": "invalid pagination", "fields": fields}


def test_unknown_paths_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json == {"error": "no endpoint at /api/nothing-here; see /openapi.json"}
    wrong = client.delete("/api/sites", headers=EDITOR)
    assert wrong.status_code == 405
    assert wrong.json == {"error": "DELETE is not allowed on /api/sites"}
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


BAD_BODIES: list[bytes] = [
    b"",
    b"{",
    b"[1, 2]",
    b'{"a": Infinity}',
    b"{" * 5000,
    b'{"name": "\\u0000"}',
    b'{"name": "\\udfff"}',
    b'{"": ""}',
    b'{"name": {"nested": true}}',
    b'{"site_id": 18446744073709551616, "freezer_id": -5, "temperature_c": 1e400}',
    b'{"mac": "08:00:2b:01:02:03:04", "uuid": "00000000-0000-0000-0000-00000000000g"}',
    b'{"name": "ok", "mac": "08002b010203", "site_id": 1, "uuid": '
    b'"123e4567-e89b-12d3-a456-426614174000", "freezer_id": 1, "temperature_c": null}',
    b'{"username": 1, "password": null}',
    b'{"username": "admin", "password": "' + b"p" * 300 + b'"}',
    '{"name": "\N{PILE OF POO}", "country": "\u00e9"}'.encode("utf-16"),
]


def test_no_client_mistake_produces_a_500(client: FlaskClient, api: Api) -> None:
    """Every operation of the OpenAPI document, fed garbage, answers below 500 in JSON."""
    site = api.site()
    freezer = api.freezer(site_id=site["id"])
    api.computer(site_id=site["id"])
    api.container(freezer_id=freezer["id"])
    document = client.get("/openapi.json").json
    assert document is not None
    ids = [str(site["id"]), "abc", "0", "99999999999999999999999", "-3"]
    requests: list[tuple[str, str, bytes, dict[str, str]]] = []
    for template, operations in document["paths"].items():
        paths = [template.replace("{id}", i) for i in ids] if "{id}" in template else [template]
        for method, path in itertools.product(operations, paths):
            requests.append((method, path, b"", {}))
            requests.append((method, path, b"{}", {"Authorization": "Bearer \u00ff"}))
            requests.append((method, path + "?offset=-1&limit=10**6", b"", {}))
            if path != "/api/auth/logout":  # would revoke the editor's token for the rest
                requests.extend((method, path, body, EDITOR) for body in BAD_BODIES)
    for method, path, body, headers in requests:
        response = client.open(path, method=method.upper(), data=body, headers=headers)
        assert response.status_code < 500, (method, path, body, response.json)
        assert response.is_json or response.status_code == 204, (method, path, body)
    assert len(requests) > 1000
