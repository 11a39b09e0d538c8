"""Builders and sign-in helpers shared by the djangoshop flows.

Each builder creates one object through the API and returns its JSON; prerequisites it
needs are built too unless the caller passes them. The seeded users (migration
accounts/0007) sign in with ``<username>-password``: ``admin`` (superuser), ``manager``
(catalog and inventory), ``clerk`` (orders, shipping), ``alice`` and ``bob`` (customers).
"""

from __future__ import annotations

from typing import Any

from nocrud import ApiClient, FlowContext, Target, create, fields, unique

TOKEN_LOGIN = "/api/auth/token/"
SESSION_LOGIN = "/accounts/login/"


def password_of(username: str) -> str:
    """The seeded user's password."""
    return f"{username}-password"


def sign_in(ctx: FlowContext, username: str) -> ApiClient:
    """``ctx.api`` signed in as a seeded user with a token (``Authorization: Bearer``)."""
    return ctx.login(username, password_of(username), path=TOKEN_LOGIN)


def user(ctx: FlowContext, username: str) -> ApiClient:
    """A client of its own for a seeded user, signed in with a token."""
    return ctx.new_client(
        username, username=username, password=password_of(username), login_path=TOKEN_LOGIN
    )


def build_category(api: Target, **overrides: Any) -> dict[str, Any]:
    """A category with a unique name and slug."""
    name = unique("category")
    return create(api, "/api/categories/", fields(overrides, name=name, slug=name))


def build_product(api: Target, **overrides: Any) -> dict[str, Any]:
    """An active product in a new category unless ``category=`` is given."""
    body = fields(
        overrides,
        sku=lambda: unique("SKU").upper(),
        name=lambda: unique("product"),
        unit_price="4.50",
        category=lambda: build_category(api)["id"],
    )
    return create(api, "/api/products/", body)


def build_warehouse(api: Target, **overrides: Any) -> dict[str, Any]:
    """A warehouse with a unique code."""
    code = unique("wh")
    return create(api, "/api/warehouses/", fields(overrides, code=code, name=f"Warehouse {code}"))


def build_stock(api: Target, *, quantity: int = 0, **overrides: Any) -> dict[str, Any]:
    """A stock item (new product and warehouse unless given) holding ``quantity``."""
    body = fields(
        overrides,
        warehouse=lambda: build_warehouse(api)["code"],
        product=lambda: build_product(api)["id"],
    )
    item = create(api, "/api/stock-items/", body)
    if quantity:
        path = f"/api/stock-items/{item['id']}/adjust/"
        create(api, path, {"delta": quantity, "reason": "receipt", "note": "opening"})
        item["quantity"] = quantity
    return item


def build_order(api: Target, **overrides: Any) -> dict[str, Any]:
    """A draft order of the signed-in customer."""
    return create(api, "/api/orders/", fields(overrides, shipping_address="1 Main Street"))


def add_line(api: Target, order: dict[str, Any], product: dict[str, Any], quantity: int) -> Any:
    """Add ``quantity`` of ``product`` to ``order``; returns the line."""
    body = {"order": order["id"], "product": product["id"], "quantity": quantity}
    return create(api, "/api/order-lines/", body)


def stocked_order(
    ctx: FlowContext, customer: ApiClient, *, stock: int, ordered: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer's draft order of ``ordered`` units of a product ``stock`` are held of.

    Returns:
        The order (as created, with its warehouse) and the stock item.
    """
    manager = user(ctx, "manager")
    item = build_stock(manager, quantity=stock)
    order = build_order(customer, warehouse=item["warehouse"])
    add_line(customer, order, {"id": item["product"]}, ordered)
    return order, item
