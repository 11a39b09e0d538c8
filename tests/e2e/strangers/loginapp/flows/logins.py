"""docs/flows.md's OAuth2 password-flow login, and a write that the app sends elsewhere."""

from nocrud import flow


@flow
def oauth2_login_then_write(ctx):
    """Log in at the tokenUrl the OpenAPI document declares, then write and read."""
    ctx.login("alice", "wonderland-42", form=True)
    note = ctx.api.post("/api/notes", json={"body": "buy milk"}, expect=201).json()
    assert ctx.api.get("/api/notes").json() == [note]


@flow
def anonymous_write_is_sent_to_the_login_page(ctx):
    """Fails on purpose: an anonymous POST answers 302 to an external login page."""
    ctx.api.post("/api/notes", json={"body": "no login"})
