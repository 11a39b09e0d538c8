"""The same suite on nocrud: each test gets its own app and database (`api`, `db`)."""

import pytest


@pytest.fixture
def client(api):
    return api


@pytest.fixture
def superuser_headers(client):
    form = {"username": "admin@example.com", "password": "changethis"}
    token = client.post("/api/v1/login/access-token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
