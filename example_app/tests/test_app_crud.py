"""CRUD of every resource through the API: create, get, list, replace, patch, delete."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from inventory_testing import EDITOR, Api

Payload = Callable[[Api], dict[str, Any]]

# resource -> (plural, full create/PUT body, PATCH body, optional field reset by PUT)
CASES: dict[str, tuple[str, Payload, dict[str, Any], str]] = {
    "site": (
        "sites",
        lambda api: {
            "name": "Harbour Lab",
            "contact": "Ada",
            "address": "1 Quay",
            "state_or_region": "Kent",
            "country": "UK",
            "postcode_or_zip": "CT1 1AA",
        },
        {"contact": "Grace"},
        "contact",
    ),
    "computer": (
        "computers",
        lambda api: {"name": "seq-01", "mac": api.mac(), "site_id": api.site()["id"]},
        {"name": "seq-02"},
        "",
    ),
    "freezer": (
        "freezers",
        lambda api: {"name": "Minus 80", "site_id": api.site()["id"], "temperature_c": -80},
        {"temperature_c": -20},
        "temperature_c",
    ),
    "container": (
        "containers",
        lambda api: {
            "uuid": str(uuid.uuid4()),
            "description": "plasma",
            "freezer_id": api.freezer()["id"],
        },
        {"description": "serum"},
        "description",
    ),
}

RESOURCES = sorted(CASES)


@pytest.mark.parametrize("resource", RESOURCES)
def test_create_returns_201_location_and_the_object(
    client: FlaskClient, api: Api, resource: str
) -> None:
    plural, payload, _, _ = CASES[resource]
    body = payload(api)
    response = client.post(f"/api/{plural}", json=body, headers=EDITOR)
    assert response.status_code == 201
    created = response.json
    assert created is not None
    assert isinstance(created["id"], int)
    assert response.headers["Location"] == f"/api/{plural}/{created['id']}"
    assert {key: created[key] for key in body} == body
    assert client.get(response.headers["Location"]).json == created


@pytest.mark.parametrize("resource", RESOURCES)
def test_get_unknown_id_is_404(client: FlaskClient, resource: str) -> None:
    plural = CASES[resource][0]
    for object_id in ("999999", "0", "99999999999999999999"):
        response = client.get(f"/api/{plural}/{object_id}")
        assert response.status_code == 404, object_id
        assert response.json == {"error": f"{resource} {object_id} not found"}


@pytest.mark.parametrize("resource", RESOURCES)
def test_put_replaces_every_field(client: FlaskClient, api: Api, resource: str) -> None:
    plural, payload, _, optional = CASES[resource]
    created = api.create(resource)
    replacement = payload(api)
    if optional:
        del replacement[optional]  # omitted optional fields become null on PUT
    response = client.put(f"/api/{plural}/{created['id']}", json=replacement, headers=EDITOR)
    assert response.status_code == 200, response.json
    updated = response.json
    assert updated is not None
    assert updated["id"] == created["id"]
    assert {key: updated[key] for key in replacement} == replacement
    if optional:
        assert updated[optional] is None
    assert client.get(f"/api/{plural}/{created['id']}").json == updated


@pytest.mark.parametrize("resource", RESOURCES)
def test_put_accepts_read_only_fields_echoed_back_unchanged(
    client: FlaskClient, api: Api, resource: str
) -> None:
    plural, _, change, _ = CASES[resource]
    current = api.create(resource)
    edited = {**current, **change}
    response = client.put(f"/api/{plural}/{current['id']}", json=edited, headers=EDITOR)
    assert response.status_code == 200, response.json
    assert response.json == edited


@pytest.mark.parametrize("resource", RESOURCES)
def test_put_rejects_changed_read_only_fields(client: FlaskClient, api: Api, resource: str) -> None:
    plural = CASES[resource][0]
    current = api.create(resource)
    response = client.put(
        f"/api/{plural}/{current['id']}", json={**current, "id": current["id"] + 1}, headers=EDITOR
    )
    assert response.status_code == 400
    assert response.json == {
        "error": f"read-only fields of a {resource} cannot be set",
        "fields": {"id": "is read-only"},
    }


@pytest.mark.parametrize("resource", RESOURCES)
def test_patch_changes_only_the_given_fields(client: FlaskClient, api: Api, resource: str) -> None:
    plural, _, change, _ = CASES[resource]
    current = api.create(resource)
    response = client.patch(f"/api/{plural}/{current['id']}", json=change, headers=EDITOR)
    assert response.status_code == 200, response.json
    assert response.json == {**current, **change}


@pytest.mark.parametrize("resource", RESOURCES)
def test_empty_patch_changes_nothing(client: FlaskClient, api: Api, resource: str) -> None:
    plural = CASES[resource][0]
    current = api.create(resource)
    response = client.patch(f"/api/{plural}/{current['id']}", json={}, headers=EDITOR)
    assert response.status_code == 200
    assert response.json == current


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_writes_to_unknown_ids_are_404(
    client: FlaskClient, api: Api, resource: str, method: str
) -> None:
    plural, payload, _, _ = CASES[resource]
    body = payload(api) if method != "DELETE" else None
    response = client.open(f"/api/{plural}/424242", method=method, json=body, headers=EDITOR)
    assert response.status_code == 404
    assert response.json == {"error": f"{resource} 424242 not found"}


@pytest.mark.parametrize("resource", RESOURCES)
def test_delete_removes_the_object(client: FlaskClient, api: Api, resource: str) -> None:
    plural = CASES[resource][0]
    created = api.create(resource)
    response = client.delete(f"/api/{plural}/{created['id']}", headers=EDITOR)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/{plural}/{created['id']}").status_code == 404
    assert client.delete(f"/api/{plural}/{created['id']}", headers=EDITOR).status_code == 404


@pytest.mark.parametrize("resource", RESOURCES)
def test_list_pages_in_id_order(client: FlaskClient, api: Api, resource: str) -> None:
    plural = CASES[resource][0]
    existing = client.get(f"/api/{plural}").json
    assert existing is not None
    created = [api.create(resource) for _ in range(5)]
    ids = [item["id"] for item in existing["items"]] + [c["id"] for c in created]
    assert ids == sorted(ids)
    total = len(ids)

    first = client.get(f"/api/{plural}?limit=2").json
    assert first == {"items": first["items"], "total": total, "offset": 0, "limit": 2}
    assert [item["id"] for item in first["items"]] == ids[:2]
    rest = client.get(f"/api/{plural}?offset=2&limit=500").json
    assert rest is not None
    assert [item["id"] for item in rest["items"]] == ids[2:]
    assert rest["total"] == total
    beyond = client.get(f"/api/{plural}?offset={total}").json
    assert beyond == {"items": [], "total": total, "offset": total, "limit": 50}


def test_list_defaults_to_offset_0_limit_50(client: FlaskClient, api: Api) -> None:
    for _ in range(52):
        api.site()
    page = client.get("/api/sites").json
    assert page is not None
    assert (page["offset"], page["limit"], page["total"], len(page["items"])) == (0, 50, 52, 50)


def test_site_gets_a_code_from_its_name_and_id(api: Api, client: FlaskClient) -> None:
    site = api.site(name="North Lab / B2")
    assert site["code"] == f"NORTHLABB2-{site['id']}"
    renamed = client.patch(f"/api/sites/{site['id']}", json={"name": "Elsewhere"}, headers=EDITOR)
    assert renamed.json is not None
    assert renamed.json["code"] == site["code"]  # printed labels stay valid


def test_container_records_its_creation_time(api: Api) -> None:
    before = dt.datetime.now(dt.UTC)
    container = api.container()
    created_at = dt.datetime.fromisoformat(container["created_at"])
    assert created_at.tzinfo is not None
    assert abs((created_at - before).total_seconds()) < 60


@pytest.mark.parametrize(
    "given", ["08:00:2B:01:02:03", "08-00-2b-01-02-03", "08002b010203", "08:00:2b:01:02:03"]
)
def test_mac_addresses_are_normalised(api: Api, given: str) -> None:
    assert api.computer(mac=given)["mac"] == "08:00:2b:01:02:03"


def test_uuids_are_returned_lowercase(api: Api) -> None:
    container = api.container(uuid="123E4567-E89B-12D3-A456-426614174000")
    assert container["uuid"] == "123e4567-e89b-12d3-a456-426614174000"


def test_text_is_stored_as_given(api: Api, client: FlaskClient) -> None:
    name = "Labor Zürich \N{EN DASH} 東京 🧪 'quoted' \"double\" %s $1"
    site = api.site(name=name, contact="x" * 200, postcode_or_zip="1" * 20)
    assert client.get(f"/api/sites/{site['id']}").json == site
    assert site["name"] == name
