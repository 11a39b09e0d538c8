"""Pagination of lists: offset and limit, totals, order, and their bounds."""

from __future__ import annotations

from flows.builders import EDITOR, build_site
from nocrud import FlowContext, flow


@flow(tags=["pagination"])
def sites_page_through_in_id_order(ctx: FlowContext) -> None:
    """Seven new sites come back three at a time, in id order, with the right totals."""
    ctx.login(*EDITOR)
    before = ctx.api.get("/api/sites").data["total"]
    created = [build_site(ctx)["id"] for _ in range(7)]

    seen: list[int] = []
    offset = before
    while True:
        page = ctx.api.get("/api/sites", params={"offset": offset, "limit": 3}).data
        assert (page["total"], page["offset"], page["limit"]) == (before + 7, offset, 3), page
        if not page["items"]:
            break
        assert len(page["items"]) <= 3
        seen += [site["id"] for site in page["items"]]
        offset += len(page["items"])
    assert seen == created, f"pages gave {seen}, created {created}"
    assert ctx.api.get("/api/sites", params={"limit": 500}).data["limit"] == 500


@flow(tags=["pagination", "validation"])
def bad_pagination_is_rejected(ctx: FlowContext) -> None:
    """An offset or limit out of range, or not a number, gives 400 naming the parameter."""
    cases = [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "ten"}, {"offset": "1e3"}]
    for query in cases:
        answer = ctx.api.get("/api/freezers", params=query, expect=400).data
        assert set(answer["fields"]) == set(query), (query, answer)
        assert "must be an integer between" in next(iter(answer["fields"].values()))
