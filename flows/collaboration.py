"""Several users in one flow: each client has its own session and credentials."""

from __future__ import annotations

from flows.builders import ADMIN, EDITOR, VIEWER, build_site
from nocrud import FlowContext, flow


@flow(tags=["users"])
def editor_and_admin_share_a_site(ctx: FlowContext) -> None:
    """An editor's site is changed by an admin; the editor sees it; a viewer cannot delete it."""
    editor = ctx.login(*EDITOR)
    admin = ctx.new_client(username=ADMIN[0], password=ADMIN[1])
    viewer = ctx.new_client(username=VIEWER[0], password=VIEWER[1])

    site = build_site(editor)
    path = f"/api/sites/{site['id']}"
    admin.patch(path, json={"contact": "Grace Hopper"})
    assert editor.get(path).data["contact"] == "Grace Hopper"

    viewer.delete(path, expect=403)
    admin.delete(path, expect=204)
    editor.get(path, expect=404)
    editor.patch(path, json={"contact": "too late"}, expect=404)
