"""The API's rules through Django's test client, on the real PostgreSQL: auth, permissions,
orders and stock, validation, and the OpenAPI document nocrud's coverage reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest


def make_stock(manager: Any, quantity: int) -> dict[str, Any]:
    category = manager.post("/api/categories/", {"name": "Tea", "slug": "tea"}, format="json")
    product = manager.post(
        "/api/products/",
        {"sku": "TEA-1", "name": "Assam", "unit_price": "4.50", "category": category.data["id"]},
        format="json",
    )
    warehouse = manager.put("/api/warehouses/north/", {"name": "North"}, format="json")
    assert (product.status_code, warehouse.status_code) == (201, 201)
    item = manager.post(
        "/api/stock-items/", {"warehouse": "north", "product": product.data["id"]}, format="json"
    ).data
    if quantity:
        adjusted = manager.post(
            f"/api/stock-items/{item['id']}/adjust/",
            {"delta": quantity, "reason": "receipt"},
            format="json",
        )
        assert adjusted.status_code == 201, adjusted.data
    return dict(item)


def test_health_answers_once_the_database_does(api: Any) -> None:
    response = api.get("/health/")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_token_login_accepts_bearer_and_token_schemes(api: Any) -> None:
    login = api.post(
        "/api/auth/token/", {"username": "clerk", "password": "clerk-password"}, format="json"
    )
    assert login.status_code == 200
    for scheme in ("Bearer", "Token"):
        api.credentials(HTTP_AUTHORIZATION=f"{scheme} {login.data['token']}")
        assert api.get("/api/auth/me/").data["groups"] == ["clerks"]
    assert api.post("/api/auth/logout/").status_code == 204
    assert api.get("/api/auth/me/").status_code == 401


def test_anonymous_requests_get_401_naming_bearer(api: Any) -> None:
    response = api.get("/api/orders/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_session_login_needs_csrf_for_unsafe_requests(db: None) -> None:
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    signed_in = browser.post(
        "/accounts/login/",
        {"username": "alice", "password": "alice-password"},
        HTTP_X_CSRFTOKEN=token,
    )
    assert signed_in.status_code == 302
    assert browser.get("/api/auth/me/").data["username"] == "alice"
    refused = browser.post("/api/orders/", {"note": "no token"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.data["detail"]
    token = browser.cookies["csrftoken"].value  # rotated at login
    created = browser.post("/api/orders/", {"note": "ok"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert created.status_code == 201
    assert created.data["customer"] == "alice"


def test_catalog_writes_need_model_permissions(users: Any) -> None:
    body = {"name": "Cakes", "slug": "cakes"}
    assert users("alice").post("/api/categories/", body, format="json").status_code == 403
    assert users("manager").post("/api/categories/", body, format="json").status_code == 201
    assert users("alice").get("/api/categories/").data["count"] == 1


def test_permissions_granted_per_user(users: Any) -> None:
    admin = users("admin")
    created = admin.post(
        "/api/users/",
        {"username": "dana", "password": "dana-passphrase-42", "permissions": ["catalog.add_tag"]},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["permissions"] == ["catalog.add_tag"]
    assert "password" not in created.data
    dana = users("dana")
    assert (
        dana.post("/api/tags/", {"slug": "new", "label": "New"}, format="json").status_code == 201
    )
    assert dana.delete("/api/tags/new/").status_code == 403
    assert users("manager").get("/api/users/").status_code == 403


def test_customers_see_only_their_own_orders(users: Any) -> None:
    alice, bob, clerk = users("alice"), users("bob"), users("clerk")
    order = alice.post("/api/orders/", {"note": "mine"}, format="json").data
    assert order["number"] == f"ORD-{order['id']:06d}"
    assert bob.get(f"/api/orders/{order['id']}/").status_code == 404
    assert bob.get("/api/orders/").data["count"] == 0
    assert clerk.get(f"/api/orders/{order['id']}/").data["customer"] == "alice"


def test_placing_takes_stock_and_cancelling_returns_it(users: Any) -> None:
    manager, alice = users("manager"), users("alice")
    item = make_stock(manager, quantity=5)
    order = alice.post("/api/orders/", {"warehouse": "north"}, format="json").data
    line = alice.post(
        "/api/order-lines/",
        {"order": order["id"], "product": item["product"], "quantity": 3},
        format="json",
    )
    assert line.data["unit_price"] == "4.50"
    placed = alice.post(f"/api/orders/{order['id']}/place/")
    assert placed.status_code == 200, placed.data
    assert Decimal(placed.data["total"]) == Decimal("13.50")
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 2
    assert (
        alice.patch(f"/api/orders/{order['id']}/", {"note": "x"}, format="json").status_code == 409
    )
    assert alice.post(f"/api/orders/{order['id']}/cancel/").data["status"] == "cancelled"
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 5


def test_an_order_larger_than_the_stock_is_a_conflict(users: Any) -> None:
    manager, alice = users("manager"), users("alice")
    item = make_stock(manager, quantity=1)
    order = alice.post("/api/orders/", {"warehouse": "north"}, format="json").data
    alice.post(
        "/api/order-lines/",
        {"order": order["id"], "product": item["product"], "quantity": 2},
        format="json",
    )
    refused = alice.post(f"/api/orders/{order['id']}/place/")
    assert refused.status_code == 409
    assert "holds 1 of TEA-1" in refused.data["detail"]


def test_shipping_needs_the_ship_permission(users: Any) -> None:
    manager, alice, clerk = users("manager"), users("alice"), users("clerk")
    item = make_stock(manager, quantity=1)
    order = alice.post("/api/orders/", {"warehouse": "north"}, format="json").data
    alice.post(
        "/api/order-lines/",
        {"order": order["id"], "product": item["product"], "quantity": 1},
        format="json",
    )
    alice.post(f"/api/orders/{order['id']}/place/")
    assert manager.post(f"/api/orders/{order['id']}/ship/").status_code == 403
    assert clerk.post(f"/api/orders/{order['id']}/ship/").data["status"] == "shipped"


def test_deleting_a_category_in_use_is_a_conflict(users: Any) -> None:
    manager = users("manager")
    item = make_stock(manager, quantity=0)
    category = manager.get(f"/api/products/{item['product']}/").data["category"]
    refused = manager.delete(f"/api/categories/{category}/")
    assert refused.status_code == 409
    assert "products" in refused.data["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"unit_price": "-1"}, "unit_price"),
        ({"sku": "lower"}, "sku"),
        ({"name": ""}, "name"),
        ({"category": 0}, "category"),
    ],
)
def test_product_mistakes_name_the_field(users: Any, change: dict[str, Any], field: str) -> None:
    manager = users("manager")
    category = manager.post("/api/categories/", {"name": "T", "slug": "t"}, format="json").data
    body = {"sku": "OK-1", "name": "Tea", "unit_price": "1.00", "category": category["id"]}
    response = manager.post("/api/products/", {**body, **change}, format="json")
    assert response.status_code == 400
    assert list(response.data) == [field]


def test_changes_are_audited_for_admins_only(users: Any) -> None:
    manager = users("manager")
    manager.put("/api/warehouses/west/", {"name": "West", "password": "x"}, format="json")
    events = users("admin").get("/api/audit-events/", {"entity": "inventory.warehouse"}).data
    assert [(e["action"], e["actor_username"]) for e in events["results"]] == [
        ("created", "manager")
    ]
    assert events["results"][0]["changes"] == {"name": "West"}  # passwords never stored
    assert manager.get("/api/audit-events/").status_code == 403


def test_openapi_document_describes_every_endpoint(api: Any) -> None:
    document = api.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = [
        (method.upper(), path, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation_id for _, _, operation_id in operations]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert all(path.endswith("/") for _, path, _ in operations), "DRF's router keeps slashes"
    assert ("POST", "/api/orders/{id}/place/", "placeOrder") in operations
    assert ("GET", "/api/categories/", "listCategories") in operations
    assert len(operations) == 62
