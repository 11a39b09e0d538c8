"""Orders: what customers see of each other, and the rules of placing, cancelling, shipping."""

from __future__ import annotations

from decimal import Decimal

from flows.builders import add_line, build_order, build_product, stocked_order, user
from nocrud import FlowContext, flow


@flow(tags=["orders", "users"])
def customers_see_only_their_own_orders(ctx: FlowContext) -> None:
    """Bob cannot see, list or change Alice's order; the clerk sees it."""
    alice, bob, clerk = user(ctx, "alice"), user(ctx, "bob"), user(ctx, "clerk")
    order = build_order(alice)
    bob.get(f"/api/orders/{order['id']}/", expect=404)
    bob.patch(f"/api/orders/{order['id']}/", json={"note": "mine now"}, expect=404)
    assert order["id"] not in [o["id"] for o in bob.get("/api/orders/").data["results"]]
    seen = clerk.get("/api/orders/", params={"status": "draft"}).data["results"]
    assert order["id"] in [o["id"] for o in seen]
    assert clerk.get(f"/api/orders/{order['id']}/").data["customer"] == "alice"


@flow(tags=["orders", "users"])
def clerk_changes_a_customers_order(ctx: FlowContext) -> None:
    """Staff with orders.change_order may change any draft; the customer sees the change."""
    alice, clerk = user(ctx, "alice"), user(ctx, "clerk")
    order = build_order(alice)
    clerk.patch(f"/api/orders/{order['id']}/", json={"note": "called the customer"})
    assert alice.get(f"/api/orders/{order['id']}/").data["note"] == "called the customer"
    manager = user(ctx, "manager")  # sees every order, may change none
    manager.get(f"/api/orders/{order['id']}/", expect=200)
    manager.patch(f"/api/orders/{order['id']}/", json={"note": "x"}, expect=403)


@flow(tags=["orders", "rules"])
def placing_an_order_takes_stock(ctx: FlowContext) -> None:
    """Placing takes the lines from the warehouse and records an order movement."""
    alice = user(ctx, "alice")
    order, item = stocked_order(ctx, alice, stock=10, ordered=3)
    placed = alice.post(f"/api/orders/{order['id']}/place/").data
    assert placed["status"] == "placed"
    assert placed["placed_at"]
    manager = user(ctx, "manager")
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 7
    movements = manager.get("/api/stock-movements/", params={"item": item["id"]}).data
    assert [(m["delta"], m["reason"]) for m in movements["results"]] == [
        (10, "receipt"),
        (-3, "order"),
    ]
    last = manager.get(f"/api/stock-movements/{movements['results'][-1]['id']}/").data
    assert last["note"] == placed["number"]
    assert last["created_by"] == "alice"


@flow(tags=["orders", "rules"])
def an_order_larger_than_the_stock_is_refused(ctx: FlowContext) -> None:
    """409 naming what the warehouse holds; the order stays a draft, the stock untouched."""
    alice = user(ctx, "alice")
    order, item = stocked_order(ctx, alice, stock=2, ordered=5)
    refused = alice.post(f"/api/orders/{order['id']}/place/", expect=409).data
    assert "holds 2" in refused["detail"]
    assert alice.get(f"/api/orders/{order['id']}/").data["status"] == "draft"
    assert user(ctx, "manager").get(f"/api/stock-items/{item['id']}/").data["quantity"] == 2


@flow(tags=["orders", "rules"])
def an_order_needs_lines_and_a_warehouse(ctx: FlowContext) -> None:
    """An empty order, or one without a warehouse, cannot be placed."""
    alice = user(ctx, "alice")
    empty = build_order(alice)
    assert "no lines" in alice.post(f"/api/orders/{empty['id']}/place/", expect=409).data["detail"]
    add_line(alice, empty, build_product(user(ctx, "manager")), 1)
    answer = alice.post(f"/api/orders/{empty['id']}/place/", expect=409).data
    assert "no warehouse" in answer["detail"]


@flow(tags=["orders", "rules"])
def cancelling_a_placed_order_returns_the_stock(ctx: FlowContext) -> None:
    """Cancel puts the stock back with a return movement."""
    alice = user(ctx, "alice")
    order, item = stocked_order(ctx, alice, stock=4, ordered=4)
    alice.post(f"/api/orders/{order['id']}/place/")
    manager = user(ctx, "manager")
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 0
    assert alice.post(f"/api/orders/{order['id']}/cancel/").data["status"] == "cancelled"
    assert manager.get(f"/api/stock-items/{item['id']}/").data["quantity"] == 4
    movements = manager.get("/api/stock-movements/", params={"item": item["id"]}).data
    assert movements["results"][-1]["reason"] == "return"


@flow(tags=["orders", "rules", "permissions"])
def only_clerks_ship_and_shipped_orders_stay_shipped(ctx: FlowContext) -> None:
    """The manager may not ship; the clerk ships a placed order; it can no longer be cancelled."""
    alice = user(ctx, "alice")
    order, _ = stocked_order(ctx, alice, stock=5, ordered=1)
    clerk = user(ctx, "clerk")
    assert (
        "only a placed order"
        in (clerk.post(f"/api/orders/{order['id']}/ship/", expect=409).data["detail"])
    )
    alice.post(f"/api/orders/{order['id']}/place/")
    alice.post(f"/api/orders/{order['id']}/ship/", expect=403)
    user(ctx, "manager").post(f"/api/orders/{order['id']}/ship/", expect=403)
    assert clerk.post(f"/api/orders/{order['id']}/ship/").data["status"] == "shipped"
    refused = alice.post(f"/api/orders/{order['id']}/cancel/", expect=409).data
    assert "shipped" in refused["detail"]


@flow(tags=["orders", "rules"])
def a_placed_order_is_read_only(ctx: FlowContext) -> None:
    """Once placed, neither the order nor its lines change, and it cannot be deleted."""
    alice = user(ctx, "alice")
    order, _ = stocked_order(ctx, alice, stock=5, ordered=2)
    placed = alice.post(f"/api/orders/{order['id']}/place/").data
    line = placed["lines"][0]
    with alice.expect_status(409):
        alice.patch(f"/api/orders/{order['id']}/", json={"note": "too late"})
        alice.delete(f"/api/orders/{order['id']}/")
        alice.patch(f"/api/order-lines/{line['id']}/", json={"quantity": 1})
        alice.delete(f"/api/order-lines/{line['id']}/")
        alice.post(
            "/api/order-lines/", json={**line, "product": build_product(user(ctx, "manager"))["id"]}
        )


@flow(tags=["orders", "rules"])
def the_total_follows_the_lines(ctx: FlowContext) -> None:
    """Adding, changing and removing lines keeps the order's total right."""
    manager, alice = user(ctx, "manager"), user(ctx, "alice")
    tea = build_product(manager, unit_price="4.50")
    cake = build_product(manager, unit_price="2.25")
    order = build_order(alice)
    add_line(alice, order, tea, 2)
    cake_line = add_line(alice, order, cake, 4)
    assert Decimal(alice.get(f"/api/orders/{order['id']}/").data["total"]) == Decimal("18.00")
    alice.patch(f"/api/order-lines/{cake_line['id']}/", json={"quantity": 1})
    assert Decimal(alice.get(f"/api/orders/{order['id']}/").data["total"]) == Decimal("11.25")
    alice.delete(f"/api/order-lines/{cake_line['id']}/")
    assert Decimal(alice.get(f"/api/orders/{order['id']}/").data["total"]) == Decimal("9.00")


@flow(tags=["orders", "rules"])
def a_line_keeps_the_price_it_was_sold_at(ctx: FlowContext) -> None:
    """Changing a product's price does not change lines already in an order."""
    manager, alice = user(ctx, "manager"), user(ctx, "alice")
    product = build_product(manager, unit_price="3.00")
    order = build_order(alice)
    line = add_line(alice, order, product, 1)
    manager.patch(f"/api/products/{product['id']}/", json={"unit_price": "9.99"})
    assert alice.get(f"/api/order-lines/{line['id']}/").data["unit_price"] == "3.00"
    lines = alice.get("/api/order-lines/", params={"order": order["id"]}).data["results"]
    assert [entry["id"] for entry in lines] == [line["id"]]


@flow(tags=["orders", "rules", "catalog"])
def a_deactivated_product_cannot_be_ordered(ctx: FlowContext) -> None:
    """After POST /deactivate/ the product leaves the active list and cannot be added."""
    manager, alice = user(ctx, "manager"), user(ctx, "alice")
    product = build_product(manager)
    assert manager.post(f"/api/products/{product['id']}/deactivate/").data["is_active"] is False
    active = manager.get("/api/products/", params={"active": "true"}).data["results"]
    assert product["id"] not in [p["id"] for p in active]
    order = build_order(alice)
    refused = alice.post(
        "/api/order-lines/",
        json={"order": order["id"], "product": product["id"], "quantity": 1},
        expect=400,
    ).data
    assert "not on sale" in refused["product"][0]


@flow(tags=["orders", "users"])
def customers_cannot_add_lines_to_anothers_order(ctx: FlowContext) -> None:
    """Bob cannot put products into Alice's order."""
    alice, bob = user(ctx, "alice"), user(ctx, "bob")
    order = build_order(alice)
    product = build_product(user(ctx, "manager"))
    bob.post(
        "/api/order-lines/",
        json={"order": order["id"], "product": product["id"], "quantity": 1},
        expect=403,
    )
    assert alice.get(f"/api/orders/{order['id']}/").data["lines"] == []
