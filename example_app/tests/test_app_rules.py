"""Rules beyond CRUD: delete guards, unique values, references, a site's instruments."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from inventory_testing import EDITOR, Api


def test_freezer_holding_containers_cannot_be_deleted(client: FlaskClient, api: Api) -> None:
    freezer = api.freezer()
    containers = [api.container(freezer_id=freezer["id"]) for _ in range(2)]
    response = client.delete(f"/api/freezers/{freezer['id']}", headers=EDITOR)
    assert response.status_code == 409
    assert response.json == {
        "error": f"freezer {freezer['id']} still holds 2 containers; "
        "move or delete its containers before deleting the freezer"
    }
    assert client.get(f"/api/freezers/{freezer['id']}").status_code == 200

    client.delete(f"/api/containers/{containers[0]['id']}", headers=EDITOR)
    response = client.delete(f"/api/freezers/{freezer['id']}", headers=EDITOR)
    assert response.status_code == 409
    assert "still holds 1 container;" in response.json["error"]  # type: ignore[index]

    client.delete(f"/api/containers/{containers[1]['id']}", headers=EDITOR)
    assert client.delete(f"/api/freezers/{freezer['id']}", headers=EDITOR).status_code == 204


def test_freezer_emptied_by_moving_its_container_can_be_deleted(
    client: FlaskClient, api: Api
) -> None:
    full, empty = api.freezer(), api.freezer()
    container = api.container(freezer_id=full["id"])
    moved = client.patch(
        f"/api/containers/{container['id']}", json={"freezer_id": empty["id"]}, headers=EDITOR
    )
    assert moved.status_code == 200
    assert client.delete(f"/api/freezers/{full['id']}", headers=EDITOR).status_code == 204


@pytest.mark.parametrize(
    ("computers", "freezers", "held"),
    [
        (1, 0, "1 computer"),
        (0, 2, "2 freezers"),
        (2, 1, "2 computers and 1 freezer"),
    ],
)
def test_site_with_instruments_cannot_be_deleted(
    client: FlaskClient, api: Api, computers: int, freezers: int, held: str
) -> None:
    site = api.site()
    for _ in range(computers):
        api.computer(site_id=site["id"])
    for _ in range(freezers):
        api.freezer(site_id=site["id"])
    response = client.delete(f"/api/sites/{site['id']}", headers=EDITOR)
    assert response.status_code == 409
    assert response.json == {
        "error": f"site {site['id']} still has {held}; "
        "move or delete its instruments before deleting the site"
    }


def test_empty_site_can_be_deleted(client: FlaskClient, api: Api) -> None:
    site = api.site()
    computer = api.computer(site_id=site["id"])
    client.delete(f"/api/computers/{computer['id']}", headers=EDITOR)
    assert client.delete(f"/api/sites/{site['id']}", headers=EDITOR).status_code == 204


def test_site_instruments_lists_computers_and_freezers(client: FlaskClient, api: Api) -> None:
    site, other = api.site(), api.site()
    computers = [api.computer(site_id=site["id"]) for _ in range(2)]
    freezer = api.freezer(site_id=site["id"])
    api.container(freezer_id=freezer["id"])
    api.computer(site_id=other["id"])

    response = client.get(f"/api/sites/{site['id']}/instruments")
    assert response.status_code == 200
    assert response.json == {
        "site": site,
        "computers": computers,
        "freezers": [freezer],
        "counts": {"computers": 2, "freezers": 1, "containers": 1},
    }


def test_site_instruments_of_an_empty_site(client: FlaskClient, api: Api) -> None:
    site = api.site()
    assert client.get(f"/api/sites/{site['id']}/instruments").json == {
        "site": site,
        "computers": [],
        "freezers": [],
        "counts": {"computers": 0, "freezers": 0, "containers": 0},
    }


def test_site_instruments_of_unknown_or_bad_ids(client: FlaskClient) -> None:
    assert client.get("/api/sites/77/instruments").status_code == 404
    response = client.get("/api/sites/x/instruments")
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid id in path",
        "fields": {"id": "must be a positive integer"},
    }


def test_mac_is_unique_across_forms(client: FlaskClient, api: Api) -> None:
    first = api.computer(mac="08:00:2b:01:02:03")
    response = client.post(
        "/api/computers",
        json={"name": "twin", "mac": "08-00-2B-01-02-03", "site_id": first["site_id"]},
        headers=EDITOR,
    )
    assert response.status_code == 409
    assert response.json == {
        "error": "another computer already has this mac",
        "fields": {"mac": "is already used by another computer"},
    }


def test_changing_a_mac_to_a_used_one_is_409(client: FlaskClient, api: Api) -> None:
    first, second = api.computer(), api.computer()
    response = client.patch(
        f"/api/computers/{second['id']}", json={"mac": first["mac"]}, headers=EDITOR
    )
    assert response.status_code == 409
    assert response.json["fields"] == {"mac": "is already used by another computer"}  # type: ignore[index]
    assert client.get(f"/api/computers/{second['id']}").json == second


def test_container_uuid_is_unique(client: FlaskClient, api: Api) -> None:
    first = api.container()
    response = client.post(
        "/api/containers",
        json={"uuid": first["uuid"].upper(), "freezer_id": first["freezer_id"]},
        headers=EDITOR,
    )
    assert response.status_code == 409
    assert response.json["fields"] == {"uuid": "is already used by another container"}  # type: ignore[index]


def test_site_names_are_unique_ignoring_case(client: FlaskClient, api: Api) -> None:
    api.site(name="North Lab")
    response = client.post("/api/sites", json={"name": "NORTH lab"}, headers=EDITOR)
    assert response.status_code == 409
    assert response.json == {
        "error": "another site already has this name",
        "fields": {"name": "is already used by another site"},
    }


@pytest.mark.parametrize(
    ("plural", "field", "target"),
    [("computers", "site_id", "site"), ("freezers", "site_id", "site")],
)
def test_reference_to_a_missing_site_is_400_naming_the_field(
    client: FlaskClient, api: Api, plural: str, field: str, target: str
) -> None:
    body = {"name": "x", field: 987654}
    if plural == "computers":
        body["mac"] = api.mac()
    response = client.post(f"/api/{plural}", json=body, headers=EDITOR)
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid reference",
        "fields": {field: f"refers to a {target} that does not exist"},
    }


def test_reference_to_a_missing_freezer_is_400_on_create_put_and_patch(
    client: FlaskClient, api: Api
) -> None:
    container = api.container()
    expected = {
        "error": "invalid reference",
        "fields": {"freezer_id": "refers to a freezer that does not exist"},
    }
    created = client.post(
        "/api/containers",
        json={"uuid": "00000000-0000-4000-8000-000000000001", "freezer_id": 555},
        headers=EDITOR,
    )
    replaced = client.put(
        f"/api/containers/{container['id']}",
        json={"uuid": container["uuid"], "freezer_id": 555},
        headers=EDITOR,
    )
    patched = client.patch(
        f"/api/containers/{container['id']}", json={"freezer_id": 555}, headers=EDITOR
    )
    for response in (created, replaced, patched):
        assert response.status_code == 400
        assert response.json == expected
    assert client.get(f"/api/containers/{container['id']}").json == container


def test_a_failed_write_leaves_nothing_behind(client: FlaskClient, api: Api) -> None:
    site = api.site()
    before = client.get("/api/computers").json
    client.post(
        "/api/computers",
        json={"name": "ghost", "mac": api.mac(), "site_id": site["id"] + 1000},
        headers=EDITOR,
    )
    assert client.get("/api/computers").json == before
