"""Declared CRUD flows: one per resource, as the role that owns it.

DRF's router gives every collection a trailing slash (``/api/products/``, objects at
``/api/products/<id>/``) and pages of ``{"count", "next", "previous", "results"}``.
Tags and warehouses are addressed by an id the client chooses (a slug, a code); a
warehouse is created by ``PUT`` at its own URL.
"""

from __future__ import annotations

from typing import Any

from flows.builders import (
    TOKEN_LOGIN,
    build_category,
    build_order,
    build_product,
    build_warehouse,
    password_of,
    user,
)
from nocrud import FlowContext, crud, unique, unique_email


def _as(username: str) -> Any:
    def sign_in(ctx: FlowContext) -> Any:
        return ctx.login(username, password_of(username), path=TOKEN_LOGIN)

    return sign_in


category_crud = crud(
    "category_crud",
    "/api/categories/",
    create=lambda ctx: {"name": (name := unique("category")), "slug": name},
    update=lambda ctx, category: {"parent": build_category(ctx)["id"]},
    partial_update={"name": "Teas and infusions"},
    items_key="results",
    auth=_as("manager"),
    tags=["catalog"],
)

product_crud = crud(
    "product_crud",
    "/api/products/",
    create=lambda ctx: {
        "sku": unique("TEA").upper(),
        "name": "Assam",
        "description": "Strong black tea",
        "unit_price": "4.50",
        "category": build_category(ctx)["id"],
    },
    update={"name": "Assam second flush", "unit_price": "5.20"},
    partial_update={"description": "Malty"},
    # The server stamps every change.
    ignore=["updated_at"],
    items_key="results",
    auth=_as("manager"),
    tags=["catalog"],
)

tag_crud = crud(
    "tag_crud",
    "/api/tags/",
    id_field="slug",
    create=lambda ctx: {"slug": unique("organic"), "label": "Organic"},
    update={"label": "Certified organic"},
    partial_update={"label": "Bio"},
    items_key="results",
    auth=_as("manager"),
    tags=["catalog", "client-id"],
)

warehouse_crud = crud(
    "warehouse_crud",
    "/api/warehouses/",
    id_field="code",
    id=lambda ctx: unique("north"),
    upsert="PUT",
    create={"name": "North", "address": "1 Harbour Road"},
    update={"name": "North (main)"},
    partial_update={"address": "2 Harbour Road"},
    items_key="results",
    auth=_as("manager"),
    tags=["inventory", "client-id"],
)

stock_item_crud = crud(
    "stock_item_crud",
    "/api/stock-items/",
    create=lambda ctx: {
        "warehouse": build_warehouse(ctx)["code"],
        "product": build_product(ctx)["id"],
        "reorder_level": 5,
    },
    update={"reorder_level": 10},
    partial_update={"reorder_level": 2},
    items_key="results",
    auth=_as("manager"),
    tags=["inventory"],
)

order_crud = crud(
    "order_crud",
    "/api/orders/",
    create={"shipping_address": "1 Main Street", "note": "leave at the door"},
    update={"shipping_address": "2 Side Street"},
    partial_update={"note": "ring twice"},
    items_key="results",
    auth=_as("alice"),
    tags=["orders"],
)


def _line(ctx: FlowContext) -> dict[str, Any]:
    product = build_product(user(ctx, "manager"))
    return {"order": build_order(ctx)["id"], "product": product["id"], "quantity": 2}


order_line_crud = crud(
    "order_line_crud",
    "/api/order-lines/",
    create=_line,
    update={"quantity": 3},
    partial_update={"quantity": 5},
    items_key="results",
    auth=_as("alice"),
    tags=["orders"],
)

user_crud = crud(
    "user_crud",
    "/api/users/",
    create=lambda ctx: {
        "username": unique("carol"),
        "email": unique_email(),
        "first_name": "Carol",
        "password": "a-long-enough-passphrase",
        "groups": ["customers"],
        "permissions": ["catalog.add_product"],
    },
    update={"last_name": "Clark", "groups": ["clerks"]},
    partial_update={"permissions": ["catalog.add_product", "catalog.change_product"]},
    # Write-only: never shown back.
    ignore=["password"],
    items_key="results",
    auth=_as("admin"),
    tags=["accounts"],
)
