"""Bad input is a 400 that names the field and says what is wrong."""

from __future__ import annotations

from typing import Any

from flows.builders import (
    add_line,
    build_category,
    build_order,
    build_product,
    build_stock,
    sign_in,
    user,
)
from nocrud import FlowContext, flow, param, unique

PRODUCT_MISTAKES = [
    param(
        ({"unit_price": "-1.00"}, "unit_price", "greater than or equal to 0"), id="negative-price"
    ),
    param(({"sku": "tea-001"}, "sku", "upper-case"), id="lower-case-sku"),
    param(({"name": ""}, "name", "blank"), id="blank-name"),
    param(({"category": 999999}, "category", "does not exist"), id="unknown-category"),
    param(({"unit_price": "abc"}, "unit_price", "valid number"), id="price-not-a-number"),
]


@flow(params=PRODUCT_MISTAKES, tags=["validation", "catalog"])
def product_mistakes_are_named(ctx: FlowContext, case: tuple[dict[str, Any], str, str]) -> None:
    """A product with one bad field: 400, the field named, nothing created."""
    change, field, says = case
    manager = sign_in(ctx, "manager")
    body = {
        "sku": unique("SKU").upper(),
        "name": "Earl Grey",
        "unit_price": "3.10",
        "category": build_category(manager)["id"],
        **change,
    }
    errors = manager.post("/api/products/", json=body, expect=400).data
    assert list(errors) == [field], errors
    assert says in errors[field][0], errors
    assert manager.get("/api/products/").data["count"] == 0


@flow(tags=["validation", "catalog"])
def duplicate_skus_and_slugs_are_refused(ctx: FlowContext) -> None:
    """A second product with the same SKU, or a second tag with the same slug, is a 400."""
    manager = sign_in(ctx, "manager")
    product = build_product(manager)
    body = {
        "sku": product["sku"],
        "name": "copy",
        "unit_price": "1.00",
        "category": product["category"],
    }
    assert "sku" in manager.post("/api/products/", json=body, expect=400).data
    manager.post("/api/tags/", json={"slug": "green", "label": "Green"})
    assert (
        "slug" in manager.post("/api/tags/", json={"slug": "green", "label": "G"}, expect=400).data
    )
    renamed = manager.put("/api/tags/green/", json={"slug": "blue", "label": "Blue"}, expect=400)
    assert "cannot change" in renamed.data["slug"][0]


@flow(tags=["validation", "catalog"])
def a_category_cannot_be_its_own_ancestor(ctx: FlowContext) -> None:
    """Making a category the child of its own child is refused."""
    manager = sign_in(ctx, "manager")
    parent = build_category(manager)
    child = build_category(manager, parent=parent["id"])
    refused = manager.patch(
        f"/api/categories/{parent['id']}/", json={"parent": child["id"]}, expect=400
    ).data
    assert "ancestor" in refused["parent"][0]


@flow(tags=["validation", "orders"])
def order_line_mistakes_are_named(ctx: FlowContext) -> None:
    """Quantity 0, and the same product twice in one order, are 400s naming the field."""
    alice = user(ctx, "alice")
    product = build_product(user(ctx, "manager"))
    order = build_order(alice)
    body = {"order": order["id"], "product": product["id"], "quantity": 0}
    assert "quantity" in alice.post("/api/order-lines/", json=body, expect=400).data
    add_line(alice, order, product, 1)
    again = alice.post("/api/order-lines/", json={**body, "quantity": 2}, expect=400).data
    assert "already in this order" in again["product"][0]
    refused = alice.patch(f"/api/orders/{order['id']}/", json={"warehouse": "nowhere"}, expect=400)
    assert "warehouse" in refused.data


@flow(tags=["validation", "inventory"])
def stock_adjustment_mistakes_are_named(ctx: FlowContext) -> None:
    """A zero change, an unknown reason or a missing delta: 400 naming each field."""
    manager = sign_in(ctx, "manager")
    item = build_stock(manager)
    path = f"/api/stock-items/{item['id']}/adjust/"
    assert "delta" in manager.post(path, json={"delta": 0, "reason": "receipt"}, expect=400).data
    errors = manager.post(path, json={"reason": "theft"}, expect=400).data
    assert set(errors) == {"delta", "reason"}
    duplicate = manager.post(
        "/api/stock-items/",
        json={"warehouse": item["warehouse"], "product": item["product"]},
        expect=400,
    ).data
    assert "already has a stock item" in duplicate["product"][0]


@flow(tags=["validation", "accounts"])
def user_mistakes_are_named(ctx: FlowContext) -> None:
    """No password, a weak one, an unknown permission or group: 400 naming the field."""
    admin = sign_in(ctx, "admin")
    name = unique("frank")
    assert "password" in admin.post("/api/users/", json={"username": name}, expect=400).data
    weak = admin.post("/api/users/", json={"username": name, "password": "123"}, expect=400).data
    assert "password" in weak
    body = {"username": name, "password": "frank-passphrase-7", "permissions": ["shop.fly"]}
    unknown = admin.post("/api/users/", json=body, expect=400).data
    assert "app_label.codename" in unknown["permissions"][0]
    no_group = admin.post(
        "/api/users/", json={**body, "permissions": [], "groups": ["pilots"]}, expect=400
    )
    assert "groups" in no_group.data
    phone = sign_in(ctx, "alice").patch(
        "/api/auth/me/", json={"phone_number": "call me"}, expect=400
    )
    assert "phone_number" in phone.data
