"""Flows of the tiny app: each sees a process that served no other flow."""

from nocrud.flows import flow


@flow
def the_process_is_new(ctx):
    """The first request of the flow is the first its process served."""
    assert ctx.api.get("/health").json()["served"] == 1


@flow
def and_again(ctx):
    assert ctx.api.get("/health").json()["served"] == 1
