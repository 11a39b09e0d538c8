"""The suite as such projects write it: one running app, one shared database, a `client`."""

import os
from urllib.parse import urljoin

import pytest
import requests

API = os.environ.get("API_URL", "http://127.0.0.1:8000")


class Client(requests.Session):
    def request(self, method, url, *args, **kwargs):
        return super().request(method, urljoin(API, url), *args, **kwargs)


@pytest.fixture
def client():
    with Client() as session:
        yield session


@pytest.fixture
def superuser_headers(client):
    form = {"username": "admin@example.com", "password": "changethis"}
    token = client.post("/api/v1/login/access-token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
