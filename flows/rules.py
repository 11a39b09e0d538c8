"""Business rules: what may not be deleted while it holds something, and what stays unique."""

from __future__ import annotations

from flows.builders import EDITOR, build_computer, build_container, build_freezer, build_site
from nocrud import FlowContext, flow


@flow(tags=["rules", "freezers"])
def freezer_holding_containers_cannot_be_deleted(ctx: FlowContext) -> None:
    """Deleting a freezer that holds a container gives 409; once emptied it goes."""
    ctx.login(*EDITOR)
    container = build_container(ctx)  # builds its freezer, which builds its site
    freezer = f"/api/freezers/{container['freezer_id']}"

    refused = ctx.api.delete(freezer, expect=409).data
    assert "still holds 1 container" in refused["error"], refused
    ctx.api.get(freezer, expect=200)  # refused means untouched

    ctx.api.delete(f"/api/containers/{container['id']}", expect=204)
    ctx.api.delete(freezer, expect=204)
    ctx.api.get(freezer, expect=404)


@flow(tags=["rules", "sites"])
def site_with_instruments_cannot_be_deleted(ctx: FlowContext) -> None:
    """A site lists its computers and freezers with counts, and they keep it from deletion."""
    ctx.login(*EDITOR)
    site = build_site(ctx)
    computer = build_computer(ctx, site_id=site["id"])
    freezer = build_freezer(ctx, site_id=site["id"])
    build_container(ctx, freezer_id=freezer["id"])

    listing = ctx.api.get(f"/api/sites/{site['id']}/instruments").data
    assert listing["site"]["id"] == site["id"]
    assert [c["id"] for c in listing["computers"]] == [computer["id"]]
    assert [f["id"] for f in listing["freezers"]] == [freezer["id"]]
    assert listing["counts"] == {"computers": 1, "freezers": 1, "containers": 1}

    refused = ctx.api.delete(f"/api/sites/{site['id']}", expect=409).data
    assert "still has 1 computer and 1 freezer" in refused["error"], refused
    ctx.api.get(f"/api/sites/{site['id']}/instruments", expect=200)
    ctx.api.get("/api/sites/999999999/instruments", expect=404)


@flow(tags=["rules", "sites"])
def site_names_are_unique_ignoring_case(ctx: FlowContext) -> None:
    """A second site named like the first, in other case, gives 409 naming the field."""
    ctx.login(*EDITOR)
    site = build_site(ctx)
    clash = ctx.api.post("/api/sites", json={"name": site["name"].upper()}, expect=409).data
    assert clash["fields"] == {"name": "is already used by another site"}, clash
    other = build_site(ctx)
    renamed = ctx.api.patch(f"/api/sites/{other['id']}", json={"name": site["name"]}, expect=409)
    assert renamed.data["fields"] == {"name": "is already used by another site"}
