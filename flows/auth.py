"""Authentication and roles: anonymous reads, writers write, viewers only read, tokens end."""

from __future__ import annotations

from flows.builders import ADMIN, EDITOR, VIEWER, build_site
from nocrud import BearerToken, FlowContext, flow, unique

COLLECTIONS = ("/api/sites", "/api/computers", "/api/freezers", "/api/containers")


@flow(tags=["auth"])
def anonymous_writes_are_refused(ctx: FlowContext) -> None:
    """Without a token every collection can be read, but POST gives 401 and a challenge."""
    for collection in COLLECTIONS:
        ctx.api.get(collection, expect=200)
        refused = ctx.api.post(collection, json={"name": "nobody"}, expect=401)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer"), collection
        assert "bearer token" in refused.data["error"]


@flow(tags=["auth"])
def viewer_may_read_but_not_write(ctx: FlowContext) -> None:
    """A viewer reads a site but gets 403 on create, replace, patch and delete."""
    ctx.login(*EDITOR)
    site = build_site(ctx)
    path = f"/api/sites/{site['id']}"
    viewer = ctx.new_client(username=VIEWER[0], password=VIEWER[1])

    assert viewer.get(path).data["name"] == site["name"]
    with viewer.expect_status(403):
        viewer.post("/api/sites", json={"name": unique("site")})
        viewer.put(path, json={"name": unique("site")})
        viewer.patch(path, json={"contact": "Mallory"})
        answer = viewer.delete(path)
    assert "may only read" in answer.data["error"]
    assert ctx.api.get(path).data == site  # nothing changed


@flow(params=[ADMIN, EDITOR, VIEWER], ids=lambda user: user[0], tags=["auth"])
def users_see_who_they_are(ctx: FlowContext, user: tuple[str, str]) -> None:
    """GET /api/auth/me names the logged-in user and their role (one run per user)."""
    username, password = user
    ctx.login(username, password)
    assert ctx.api.get("/api/auth/me").data == {"username": username, "role": username}


@flow(tags=["auth"])
def logout_revokes_the_token(ctx: FlowContext) -> None:
    """After logout the token is refused (401); logging out needs a token in the first place."""
    ctx.login(*EDITOR)
    ctx.api.get("/api/auth/me", expect=200)
    ctx.api.post("/api/auth/logout", expect=204)
    ctx.api.get("/api/auth/me", expect=401)
    ctx.api.get("/api/sites", expect=401)  # a token that is sent must be valid, even on reads
    ctx.new_client().post("/api/auth/logout", expect=401)


@flow(tags=["auth"])
def bad_credentials_and_tokens_are_refused(ctx: FlowContext) -> None:
    """Wrong passwords, unknown users and forged tokens all give 401."""
    for username, password in (("editor", "not-the-password"), ("nobody", "whatever")):
        refused = ctx.api.post(
            "/api/auth/login", json={"username": username, "password": password}, expect=401
        )
        assert refused.data["error"] == "invalid username or password"
    forged = ctx.new_client("forger", auth=BearerToken("forged-token-0123456789"))
    forged.get("/api/sites", expect=401)
    ctx.api.get("/api/auth/me", expect=401)
