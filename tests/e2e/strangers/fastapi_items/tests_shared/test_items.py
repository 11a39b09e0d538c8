import uuid


def test_login_gives_a_bearer_token(client):
    form = {"username": "admin@example.com", "password": "changethis"}
    r = client.post("/api/v1/login/access-token", data=form)
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"


def test_a_wrong_password_is_refused(client):
    form = {"username": "admin@example.com", "password": "wrong"}
    r = client.post("/api/v1/login/access-token", data=form)
    assert r.status_code == 400


def test_create_item(client, superuser_headers):
    r = client.post(
        "/api/v1/items/",
        json={"title": "Foo", "description": "Fighters"},
        headers=superuser_headers,
    )
    assert r.status_code == 200
    assert r.json()["title"] == "Foo"


def test_list_items_shows_the_two_created(client, superuser_headers):
    for title in ("one", "two"):
        client.post("/api/v1/items/", json={"title": title}, headers=superuser_headers)
    r = client.get("/api/v1/items/", headers=superuser_headers)
    assert r.status_code == 200
    assert r.json()["count"] == 2


def test_a_new_user_can_log_in(client, superuser_headers):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    r = client.post(
        "/api/v1/users/", json={"email": email, "password": "secret123"}, headers=superuser_headers
    )
    assert r.status_code == 200
    form = {"username": email, "password": "secret123"}
    r = client.post("/api/v1/login/access-token", data=form)
    assert r.status_code == 200


def test_the_superuser_is_the_only_user(client, superuser_headers):
    r = client.get("/api/v1/users/", headers=superuser_headers)
    assert r.status_code == 200
    assert [u["email"] for u in r.json()["data"]] == ["admin@example.com"]


def test_deleting_a_user_removes_it(client, superuser_headers):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = client.post(
        "/api/v1/users/", json={"email": email, "password": "secret123"}, headers=superuser_headers
    ).json()
    r = client.delete(f"/api/v1/users/{user['id']}", headers=superuser_headers)
    assert r.status_code == 200
    emails = [
        u["email"] for u in client.get("/api/v1/users/", headers=superuser_headers).json()["data"]
    ]
    assert email not in emails
