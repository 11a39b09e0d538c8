"""Through the database: what the API writes is in the flow's own PostgreSQL, and back."""

from __future__ import annotations

import re

from flows.builders import EDITOR, build_site
from nocrud import FlowContext, flow, unique


@flow(tags=["database"])
def api_writes_what_the_database_holds(ctx: FlowContext) -> None:
    """A new site is one row with the code the trigger made; a rename keeps the code."""
    ctx.login(*EDITOR)
    site = build_site(ctx, name=unique("North Lab"))
    letters = re.sub("[^A-Za-z0-9]+", "", site["name"])[:12].upper()
    assert site["code"] == f"{letters}-{site['id']}", site

    with ctx.db.cursor() as cur:
        cur.execute("SELECT name, contact, country, code FROM site WHERE id = %s", (site["id"],))
        row = cur.fetchone()
    assert row == (site["name"], site["contact"], site["country"], site["code"]), row

    ctx.api.patch(f"/api/sites/{site['id']}", json={"name": unique("Renamed")})
    with ctx.db.cursor() as cur:
        cur.execute("SELECT code FROM site WHERE id = %s", (site["id"],))
        assert cur.fetchone() == (site["code"],), "printed labels must stay valid"


@flow(tags=["database"])
def rows_seeded_with_sql_are_served(ctx: FlowContext) -> None:
    """Rows inserted with SQL show up in the API, counts and the delete rule included."""
    with ctx.db.cursor() as cur:
        cur.execute("INSERT INTO site (name) VALUES (%s) RETURNING id", (unique("seeded"),))
        (site_id,) = cur.fetchone()
        cur.execute(
            "INSERT INTO freezer (name, site_id, temperature_c) VALUES (%s, %s, -80) RETURNING id",
            ("seeded freezer", site_id),
        )
        (freezer_id,) = cur.fetchone()
        cur.execute(
            "INSERT INTO container (uuid, freezer_id) "
            "SELECT gen_random_uuid(), %s FROM generate_series(1, 3)",
            (freezer_id,),
        )
    listing = ctx.api.get(f"/api/sites/{site_id}/instruments").data
    assert listing["counts"] == {"computers": 0, "freezers": 1, "containers": 3}, listing
    ctx.login(*EDITOR)
    ctx.api.delete(f"/api/freezers/{freezer_id}", expect=409)
