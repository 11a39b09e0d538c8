"""Flows for the compiled notes server (no OpenAPI document)."""

from nocrud import flow


@flow
def a_note_is_stored_and_read_back(ctx):
    created = ctx.api.post("/notes", json={"text": "hello"}).expect(201).json()
    assert ctx.api.get(f"/notes/{created['id']}").expect(200).json()["text"] == "hello"


@flow
def an_unknown_note_is_404(ctx):
    ctx.api.get("/notes/999999", expect=404)


@flow
def the_health_path_answers(ctx):
    ctx.api.get("/health").expect(200)
