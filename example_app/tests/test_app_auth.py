"""Login, bearer tokens, and who may write: 401 without a valid token, 403 for viewers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg2.extensions
import pytest
from flask.testing import FlaskClient
from inventory import create_app
from inventory.db import get_database
from inventory_testing import ADMIN, EDITOR, PASSWORDS, VIEWER, Api

WRITES = [
    ("POST", "/api/sites"),
    ("PUT", "/api/sites/1"),
    ("PATCH", "/api/sites/1"),
    ("DELETE", "/api/sites/1"),
    ("POST", "/api/computers"),
    ("PUT", "/api/computers/1"),
    ("PATCH", "/api/computers/1"),
    ("DELETE", "/api/computers/1"),
    ("POST", "/api/freezers"),
    ("PUT", "/api/freezers/1"),
    ("PATCH", "/api/freezers/1"),
    ("DELETE", "/api/freezers/1"),
    ("POST", "/api/containers"),
    ("PUT", "/api/containers/1"),
    ("PATCH", "/api/containers/1"),
    ("DELETE", "/api/containers/1"),
]
READS = [
    "/api/sites",
    "/api/sites/1",
    "/api/sites/1/instruments",
    "/api/computers",
    "/api/computers/1",
    "/api/freezers",
    "/api/freezers/1",
    "/api/containers",
    "/api/containers/1",
]


def login(client: FlaskClient, username: str, password: str) -> Any:
    return client.post("/api/auth/login", json={"username": username, "password": password})


@pytest.mark.parametrize("username", ["admin", "editor", "viewer"])
def test_seeded_users_can_log_in(client: FlaskClient, username: str) -> None:
    response = login(client, username, PASSWORDS[username])
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["role"] == username
    assert body["username"] == username
    assert len(body["token"]) >= 40
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json == {"username": username, "role": username}


@pytest.mark.parametrize(
    ("username", "password"),
    [("editor", "wrong"), ("editor", "Editor-password"), ("nobody", "editor-password")],
)
def test_wrong_credentials_are_401(client: FlaskClient, username: str, password: str) -> None:
    response = login(client, username, password)
    assert response.status_code == 401
    assert response.json == {"error": "invalid username or password"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="inventory"'


def test_login_body_is_validated(client: FlaskClient) -> None:
    response = client.post("/api/auth/login", json={"username": "admin", "remember": True})
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid request body",
        "fields": {"remember": "is not a known field", "password": "is required"},
    }


def test_tokens_are_stored_hashed(client: FlaskClient, db: psycopg2.extensions.connection) -> None:
    token = login(client, "admin", "admin-password").json["token"]  # type: ignore[index]
    with db.cursor() as cur:
        cur.execute("SELECT token_hash FROM auth_token")
        stored = {row[0] for row in cur.fetchall()}
    assert token not in stored
    assert all(len(value) == 64 for value in stored)


def test_token_works_in_every_app_instance_on_the_database(
    client: FlaskClient, migrated_database: str
) -> None:
    """Like two gunicorn workers: a token from one is accepted by the other."""
    token = login(client, "editor", "editor-password").json["token"]  # type: ignore[index]
    other = create_app(migrated_database)
    try:
        response = other.test_client().post(
            "/api/sites",
            json={"name": "Via worker 2"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
    finally:
        get_database(other).close()


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writes_without_a_token_are_401(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={"name": "x"})
    assert response.status_code == 401
    assert response.json == {"error": "this operation needs a bearer token from /api/auth/login"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="inventory"'


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writes_as_viewer_are_403(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, json={"name": "x"}, headers=VIEWER)
    assert response.status_code == 403
    assert response.json == {"error": "role viewer may only read; log in as an admin or editor"}


@pytest.mark.parametrize("headers", [EDITOR, ADMIN], ids=["editor", "admin"])
def test_admins_and_editors_may_write(client: FlaskClient, headers: dict[str, str]) -> None:
    created = client.post("/api/sites", json={"name": "Writable"}, headers=headers)
    assert created.status_code == 201
    site_id = created.json["id"]  # type: ignore[index]
    assert client.patch(f"/api/sites/{site_id}", json={}, headers=headers).status_code == 200
    assert client.delete(f"/api/sites/{site_id}", headers=headers).status_code == 204


@pytest.mark.parametrize("path", READS)
def test_reads_are_anonymous_and_open_to_viewers(client: FlaskClient, api: Api, path: str) -> None:
    freezer = api.freezer()
    api.computer(site_id=freezer["site_id"])
    api.container(freezer_id=freezer["id"])
    assert client.get(path).status_code == 200
    assert client.get(path, headers=VIEWER).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-token",
        "Bearer ",
        "Bearer",
        "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=",
        "test-token-editor",
        "Bearer test-token-editor extra",
    ],
)
def test_bad_authorization_headers_are_401_on_reads_and_writes(
    client: FlaskClient, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    for response in (
        client.get("/api/sites", headers=headers),
        client.get("/api/sites/1", headers=headers),
        client.post("/api/sites", json={"name": "x"}, headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="inventory"'
        assert response.json is not None
        assert "token" in response.json["error"].lower() or "Bearer" in response.json["error"]


def test_scheme_is_case_insensitive(client: FlaskClient) -> None:
    headers = {"Authorization": "bearer test-token-editor"}
    assert client.post("/api/sites", json={"name": "lower"}, headers=headers).status_code == 201


def test_expired_token_is_401(client: FlaskClient, db: psycopg2.extensions.connection) -> None:
    token = login(client, "editor", "editor-password").json["token"]  # type: ignore[index]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    with db, db.cursor() as cur:
        cur.execute("UPDATE auth_token SET expires_at = now() - interval '1 second'")
    response = client.post("/api/sites", json={"name": "late"}, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "invalid or expired token: log in again at /api/auth/login"}


def test_login_sweeps_the_users_expired_tokens(
    client: FlaskClient, db: psycopg2.extensions.connection
) -> None:
    with db, db.cursor() as cur:
        cur.execute("UPDATE auth_token SET expires_at = now() - interval '1 second'")
    login(client, "editor", "editor-password")
    with db, db.cursor() as cur:
        cur.execute(
            "SELECT u.username, count(*) FROM auth_token t JOIN app_user u ON u.id = t.user_id"
            " GROUP BY u.username ORDER BY 1"
        )
        assert cur.fetchall() == [("admin", 1), ("editor", 1), ("viewer", 1)]


def test_logout_revokes_only_the_sent_token(client: FlaskClient) -> None:
    first = login(client, "editor", "editor-password").json["token"]  # type: ignore[index]
    second = login(client, "editor", "editor-password").json["token"]  # type: ignore[index]
    response = client.post("/api/auth/logout", headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 204
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    )
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    )


@pytest.mark.parametrize("path", ["/api/auth/logout", "/api/auth/me"])
def test_logout_and_me_need_a_token(client: FlaskClient, path: str) -> None:
    method = "POST" if path.endswith("logout") else "GET"
    response = client.open(path, method=method)
    assert response.status_code == 401


def test_token_lifetime_is_configurable(
    monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    monkeypatch.setenv("TOKEN_TTL_SECONDS", "60")
    short = create_app(migrated_database)
    try:
        body = login(short.test_client(), "admin", "admin-password").json
        assert body is not None
        remaining = dt.datetime.fromisoformat(body["expires_at"]) - dt.datetime.now(dt.UTC)
        assert dt.timedelta(seconds=0) < remaining <= dt.timedelta(seconds=60)
    finally:
        get_database(short).close()
