"""The app's own endpoints: readiness and its OpenAPI document."""

from __future__ import annotations

from nocrud import FlowContext, flow


@flow(tags=["meta"])
def health_and_openapi_document(ctx: FlowContext) -> None:
    """/health says ok; /openapi.json is an OpenAPI 3 document describing the API."""
    assert ctx.api.get("/health").data == {"status": "ok"}
    document = ctx.api.get("/openapi.json").data
    assert document["openapi"].startswith("3.")
    assert {"/api/sites", "/api/sites/{id}", "/api/auth/login"} <= set(document["paths"])
    assert document["paths"]["/api/sites"]["post"]["security"] == [{"bearerAuth": []}]
