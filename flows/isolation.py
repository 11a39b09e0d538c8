"""Isolation: sixteen flows write at once, and each must see only its own rows.

If two flows ever shared a database or an app instance, one of them would see
the other's sites, in the API's list or in its own database, and fail.
"""

from __future__ import annotations

import uuid

from nocrud import FlowContext, flow

FLOWS = 16
SITES_PER_FLOW = 3


def _isolation(number: int) -> None:
    @flow(name=f"isolation_{number:02d}", tags=["isolation"])
    def check(ctx: FlowContext) -> None:
        """Create sites, then see only those sites in the API and in the database."""
        token = ctx.api.post(
            "/api/auth/login", json={"username": "editor", "password": "editor-password"}
        ).data["token"]
        headers = {"Authorization": f"Bearer {token}"}
        before = {
            site["id"] for site in ctx.api.get("/api/sites", params={"limit": 100}).data["items"]
        }
        marker = f"iso-{number:02d}-{uuid.uuid4().hex[:8]}"
        created = set()
        for index in range(SITES_PER_FLOW):
            site = ctx.api.post(
                "/api/sites",
                json={
                    "name": f"{marker}-{index}",
                    "contact": "Isolation Flow",
                    "address": f"{index} Test Street",
                    "state_or_region": "Testshire",
                    "country": "Testland",
                    "postcode_or_zip": f"T{number:02d} {index}",
                },
                headers=headers,
                expect=201,
            ).data
            created.add(site["id"])

        listed = ctx.api.get("/api/sites", params={"limit": 100}).data["items"]
        mine = {site["id"] for site in listed} - before
        assert mine == created, f"API lists sites this flow did not create: {mine - created}"
        strangers = [
            s["name"] for s in listed if s["name"].startswith("iso-") and marker not in s["name"]
        ]
        assert not strangers, f"another flow's sites are visible: {strangers}"

        with ctx.db.cursor() as cur:
            cur.execute("SELECT name FROM site WHERE name LIKE 'iso-%%'")
            names = sorted(row[0] for row in cur.fetchall())
        assert names == sorted(f"{marker}-{i}" for i in range(SITES_PER_FLOW)), (
            f"the database holds sites of other flows: {names}"
        )
        ctx.log(f"{marker}: {len(created)} sites, all mine")

    globals()[check.__name__ + f"_{number:02d}"] = check


for _number in range(1, FLOWS + 1):
    _isolation(_number)
