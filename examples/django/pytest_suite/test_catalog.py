"""Catalog tests written with the fixtures: API calls, then assertions on the database.

Every test starts from the migrated database alone, so counts are exact and a row one
test writes is never seen by another, in any order and under ``pytest -n 4``.
"""

import uuid

import pytest


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def count(db, table):
    with db.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]


def test_a_created_category_is_the_only_one_in_its_database(manager, db):
    slug = unique("tea")
    category = manager.post("/api/categories/", json={"name": slug, "slug": slug}, expect=201)
    with db.cursor() as cur:
        cur.execute("SELECT name, slug FROM catalog_category WHERE id = %s", (category.data["id"],))
        assert cur.fetchone() == (slug, slug)
    assert count(db, "catalog_category") == 1


@pytest.mark.parametrize("n", range(3))
def test_products_written_by_one_test_are_never_seen_by_another(manager, db, n):
    slug = unique(f"cat{n}")
    category = manager.post("/api/categories/", json={"name": slug, "slug": slug}, expect=201)
    for i in range(n + 1):
        body = {
            "sku": unique("SKU").upper(),
            "name": unique(f"product{i}"),
            "unit_price": "4.50",
            "category": category.data["id"],
        }
        manager.post("/api/products/", json=body, expect=201)
    assert count(db, "catalog_product") == n + 1
    listed = manager.get("/api/products/", expect=200).data
    items = listed["results"] if isinstance(listed, dict) else listed
    assert len(items) == n + 1


def test_an_anonymous_client_may_not_create(api, db):
    api.post("/api/categories/", json={"name": "x", "slug": "x"}, expect=(401, 403))
    assert count(db, "catalog_category") == 0
