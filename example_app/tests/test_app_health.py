"""Start-up without a database, readiness, 503 while the database is away, JSON 500s."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg2.extensions
import pytest
from flask import Flask
from flask.testing import FlaskClient
from inventory import create_app
from inventory.config import ConfigError, Settings
from inventory.db import get_database, transaction
from inventory_testing import EDITOR, Server, database_url


@pytest.fixture
def missing_database_app(postgres_server: Server) -> Iterator[Flask]:
    """An app pointed at a database that does not exist on the real server."""
    app = create_app(database_url(postgres_server.url, "inventory_does_not_exist"))
    yield app
    get_database(app).close()


def test_health_is_ok_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_app_starts_without_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json == {
        "status": "unavailable",
        "error": "the app has no database configured: set DATABASE_URL",
    }
    listing = client.get("/api/sites")
    assert listing.status_code == 503
    assert listing.json == {"error": "the app has no database configured: set DATABASE_URL"}
    assert client.get("/openapi.json").status_code == 200


def test_database_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, migrated_database: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_database)
    app = create_app()
    try:
        assert app.test_client().get("/health").status_code == 200
    finally:
        get_database(app).close()


def test_health_is_503_while_the_database_is_unreachable(missing_database_app: Flask) -> None:
    client = missing_database_app.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "unavailable"
    assert "inventory_does_not_exist" in response.json["error"]


def test_api_is_503_while_the_database_is_unreachable(missing_database_app: Flask) -> None:
    client = missing_database_app.test_client()
    for response in (
        client.get("/api/sites"),
        client.get("/api/sites/1"),
        client.post("/api/sites", json={"name": "x"}, headers=EDITOR),
        client.post("/api/auth/login", json={"username": "a", "password": "b"}),
    ):
        assert response.status_code == 503
        assert response.json == {"error": "database unavailable, try again shortly"}


def test_health_recovers_when_the_database_comes_back(
    app: Flask, client: FlaskClient, postgres_server: Server, migrated_database: str
) -> None:
    assert client.get("/health").status_code == 200
    name = migrated_database.rsplit("/", 1)[1]
    postgres_server.drop_database(name)  # terminates the pooled connection too
    assert client.get("/health").status_code == 503
    postgres_server.create_database(name)
    assert client.get("/health").status_code == 200


def test_unexpected_errors_become_json_500(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> str:
        raise RuntimeError("bug")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    assert response.json == {"error": "internal server error"}
    assert "bug" not in response.get_data(as_text=True)
    assert any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT='eighty' is not an integer"),
        ({"PORT": "70000"}, "PORT=70000 must be between 1 and 65535"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE=0 must be between 1 and 100"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == message


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(database_url=None, port=8000, pool_size=4)
    assert Settings.from_env({"DATABASE_URL": "x"}, database_url="y").database_url == "y"


def test_an_idle_connection_lost_meanwhile_is_replaced(
    client: FlaskClient, db: psycopg2.extensions.connection
) -> None:
    assert client.get("/api/sites").status_code == 200  # leaves an idle connection
    with db, db.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'inventory' AND datname = current_database()"
        )
        assert cur.fetchall() == [(True,)]
    time.sleep(0.2)  # the termination notice reaches the idle socket
    assert client.get("/api/sites").status_code == 200


def test_a_connection_lost_mid_request_is_503_then_replaced(app: Flask) -> None:
    def suicide() -> str:
        with transaction() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return "unreachable"

    app.add_url_rule("/suicide", "suicide", suicide)
    client = app.test_client()
    lost = client.get("/suicide")
    assert lost.status_code == 503
    assert lost.json == {"error": "database unavailable, try again shortly"}
    assert client.get("/api/sites").status_code == 200
