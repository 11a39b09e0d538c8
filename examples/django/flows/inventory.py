"""Catalog and inventory rules: what may be deleted, stock that never goes negative,
warehouses created at their own URL, filters, pages, and the audit trail."""

from __future__ import annotations

from flows.builders import (
    build_category,
    build_product,
    build_stock,
    build_warehouse,
    sign_in,
    user,
)
from nocrud import FlowContext, flow, unique


@flow(tags=["catalog", "rules"])
def a_category_in_use_cannot_be_deleted(ctx: FlowContext) -> None:
    """Deleting a category that still has products gives 409; empty, it goes."""
    manager = sign_in(ctx, "manager")
    category = build_category(manager)
    product = build_product(manager, category=category["id"])
    refused = manager.delete(f"/api/categories/{category['id']}/", expect=409).data
    assert "products" in refused["detail"]
    manager.delete(f"/api/products/{product['id']}/", expect=204)
    manager.delete(f"/api/categories/{category['id']}/", expect=204)


@flow(tags=["inventory", "rules"])
def stock_never_goes_below_zero(ctx: FlowContext) -> None:
    """Taking more than an item holds is 409 and changes nothing."""
    manager = sign_in(ctx, "manager")
    item = build_stock(manager, quantity=3)
    adjust = f"/api/stock-items/{item['id']}/adjust/"
    refused = manager.post(adjust, json={"delta": -5, "reason": "adjustment"}, expect=409).data
    assert "holds 3" in refused["detail"]
    movement = manager.post(adjust, json={"delta": -3, "reason": "adjustment"}, expect=201).data
    assert movement["delta"] == -3
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 0


@flow(tags=["inventory", "rules", "permissions"])
def clerks_adjust_stock_but_do_not_create_it(ctx: FlowContext) -> None:
    """A clerk may correct quantities (change) but not add stock items (add)."""
    item = build_stock(user(ctx, "manager"), quantity=1)
    clerk = sign_in(ctx, "clerk")
    clerk.post(f"/api/stock-items/{item['id']}/adjust/", json={"delta": 2, "reason": "return"})
    assert clerk.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 3
    body = {"warehouse": item["warehouse"], "product": build_product(user(ctx, "manager"))["id"]}
    clerk.post("/api/stock-items/", json=body, expect=403)
    user(ctx, "alice").post(
        f"/api/stock-items/{item['id']}/adjust/", json={"delta": 1, "reason": "receipt"}, expect=403
    )


@flow(tags=["inventory", "rules"])
def stock_that_is_held_cannot_be_deleted(ctx: FlowContext) -> None:
    """A stock item holding anything answers 409 to DELETE; at 0 it can go."""
    manager = sign_in(ctx, "manager")
    item = build_stock(manager, quantity=2, reorder_level=5)
    assert item["needs_reorder"] is True
    refused = manager.delete(f"/api/stock-items/{item['id']}/", expect=409).data
    assert "adjust it to 0" in refused["detail"]
    manager.post(
        f"/api/stock-items/{item['id']}/adjust/", json={"delta": -2, "reason": "adjustment"}
    )
    manager.delete(f"/api/stock-items/{item['id']}/", expect=204)
    manager.get(f"/api/stock-items/{item['id']}/", expect=404)


@flow(tags=["inventory", "client-id"])
def a_warehouse_is_created_by_put_at_its_code(ctx: FlowContext) -> None:
    """PUT /api/warehouses/<code>/ creates (201), then replaces (200); POST works too."""
    manager = sign_in(ctx, "manager")
    code = unique("south")
    path = f"/api/warehouses/{code}/"
    created = manager.put(path, json={"name": "South"}, expect=201).data
    assert created == {"code": code, "name": "South", "address": "", "is_active": True}
    assert manager.put(path, json={"name": "South (old)"}, expect=200).data["name"] == "South (old)"
    posted = build_warehouse(manager)
    codes = [w["code"] for w in manager.get("/api/warehouses/").data["results"]]
    assert {code, posted["code"]} <= set(codes)
    user(ctx, "clerk").put(f"/api/warehouses/{unique('east')}/", json={"name": "E"}, expect=403)


@flow(tags=["catalog"])
def products_filter_by_category_status_and_name(ctx: FlowContext) -> None:
    """?category=, ?active= and ?search= narrow the product list."""
    manager = sign_in(ctx, "manager")
    teas, cakes = build_category(manager), build_category(manager)
    green = build_product(manager, category=teas["id"], name=unique("green tea"))
    build_product(manager, category=cakes["id"], name=unique("lemon cake"))
    listed = manager.get("/api/products/", params={"category": teas["id"]}).data
    assert [p["id"] for p in listed["results"]] == [green["id"]]
    found = manager.get("/api/products/", params={"search": green["name"].upper()}).data
    assert [p["id"] for p in found["results"]] == [green["id"]]
    inactive = manager.get("/api/products/", params={"active": "false"}).data
    assert inactive["count"] == 0


@flow(tags=["catalog"])
def lists_come_in_pages_of_twenty(ctx: FlowContext) -> None:
    """25 tags: 20 on the first page, 5 on the next; a page past the end is 404."""
    manager = sign_in(ctx, "manager")
    prefix = unique("t")
    for index in range(25):
        manager.post("/api/tags/", json={"slug": f"{prefix}-{index:02d}", "label": str(index)})
    first = manager.get("/api/tags/").data
    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    second = manager.get(first["next"]).data
    assert len(second["results"]) == 5
    assert second["next"] is None
    manager.get("/api/tags/", params={"page": 3}, expect=404)


@flow(tags=["audit", "permissions"])
def changes_leave_an_audit_trail(ctx: FlowContext) -> None:
    """Every change through the API is an event the admin can read; others cannot."""
    manager = user(ctx, "manager")
    product = build_product(manager)
    manager.patch(f"/api/products/{product['id']}/", json={"unit_price": "6.00"})
    admin = sign_in(ctx, "admin")
    events = admin.get(
        "/api/audit-events/", params={"entity": "catalog.product", "entity_id": product["id"]}
    ).data["results"]
    assert [(e["action"], e["actor_username"]) for e in events] == [
        ("created", "manager"),
        ("updated", "manager"),
    ]
    event = admin.get(f"/api/audit-events/{events[1]['id']}/").data
    assert event["changes"] == {"unit_price": "6.00"}
    manager.get("/api/audit-events/", expect=403)
