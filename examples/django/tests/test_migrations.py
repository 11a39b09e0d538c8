"""The migration history: long enough to be real, in step with the models, and its data
migrations backfill what they promise."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest

APPS = ("accounts", "catalog", "inventory", "orders", "audit")
SHOP = Path(__file__).resolve().parent.parent / "djangoshop"


def test_the_history_has_at_least_30_migrations_with_data_migrations() -> None:
    files = [f for app in APPS for f in (SHOP / app / "migrations").glob("0*.py")]
    assert len(files) >= 30
    with_python = [f for f in files if "migrations.RunPython(" in f.read_text()]
    assert len(with_python) >= 8, sorted(f.name for f in with_python)


def test_models_and_migrations_agree(django_db: None) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.fixture
def scratch(django_db: None, postgres_url: str) -> Iterator[str]:
    """A connection alias ``scratch`` on a new, empty database, dropped afterwards."""
    from django.db import connections

    name = f"djangoshop_migrations_{secrets.token_hex(4)}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        connections.settings["scratch"] = {**connections.settings["default"], "NAME": name}
        try:
            yield "scratch"
        finally:
            connections["scratch"].close()
            del connections["scratch"]
            del connections.settings["scratch"]
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        admin.close()


BEFORE_BACKFILLS = [
    ("accounts", "0002_profile_display_name"),
    ("catalog", "0005_product_slug"),
    ("inventory", "0005_stockmovement"),
    ("orders", "0002_order_number"),
    ("audit", "0003_rename_object_entity"),
]


def test_data_migrations_backfill_existing_rows(scratch: str) -> None:
    """Rows written as the old schema wanted are right after migrating to the latest."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[scratch])
    executor.migrate(BEFORE_BACKFILLS)
    old = executor.loader.project_state(BEFORE_BACKFILLS).apps

    def model(label: str) -> Any:
        return old.get_model(*label.split(".")).objects.db_manager(scratch)

    grace = model("auth.User").create(username="grace", first_name="Grace", last_name="Hopper")
    model("accounts.Profile").create(user_id=grace.pk, phone="555")
    tea = model("catalog.Category").create(name="Tea", slug="tea")
    assam = model("catalog.Product").create(
        sku="tea 01", name="Assam Gold", unit_price=Decimal("4.50"), category_id=tea.pk
    )
    depot = model("inventory.Warehouse").create(code="NORTH 1", name="North")
    stock = model("inventory.StockItem").create(
        warehouse_id=depot.pk, product_id=assam.pk, quantity=7
    )
    order = model("orders.Order").create(customer_id=grace.pk, status="new")
    model("orders.OrderLine").create(
        order_id=order.pk, product_id=assam.pk, quantity=2, price=Decimal("4.50")
    )
    model("orders.OrderLine").create(
        order_id=order.pk, product_id=assam.pk, quantity=1, price=Decimal("4.50")
    )
    model("audit.AuditEvent").create(actor_id=grace.pk, action="created", entity="x", entity_id="1")

    executor = MigrationExecutor(connections[scratch])
    executor.migrate(executor.loader.graph.leaf_nodes())
    new = executor.loader.project_state().apps

    def latest(label: str) -> Any:
        return new.get_model(*label.split(".")).objects.db_manager(scratch)

    profile = latest("accounts.Profile").get(user_id=grace.pk)
    assert (profile.display_name, profile.phone_number) == ("Grace Hopper", "555")
    product = latest("catalog.Product").get(pk=assam.pk)
    assert (product.sku, product.slug) == ("TEA-01", "assam-gold-tea-01")
    assert latest("inventory.Warehouse").get(pk=depot.pk).code == "north-1"
    movements = latest("inventory.StockMovement").filter(item_id=stock.pk)
    assert [(m.delta, m.reason) for m in movements] == [(7, "receipt")]
    migrated = latest("orders.Order").get(pk=order.pk)
    assert (migrated.number, migrated.status) == (f"ORD-{order.pk:06d}", "draft")
    lines = latest("orders.OrderLine").filter(order_id=order.pk)
    assert [(line.quantity, line.unit_price) for line in lines] == [(3, Decimal("4.50"))]
    assert migrated.total == Decimal("13.50")
    assert latest("audit.AuditEvent").get().actor_username == "grace"
    assert latest("auth.Group").filter(name__in=["managers", "clerks", "customers"]).count() == 3
