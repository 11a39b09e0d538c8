"""Tags, in the OpenAPI shapes drf_yasg documents (issue 21, items 6 and 13)."""

from nocrud import crud, flow, unique, unique_int

# The create status is not said: the Swagger 2.0 document lists 200 for POST /api/tags/.
# The id is chosen here and sent as tag_id; the app answers it as id; a deleted tag is 400.
tag_crud_by_hand = crud(
    "tag_crud_by_hand",
    "/api/tags/",
    create=lambda ctx: {"name": unique("tag"), "color": "teal"},
    update={"color": "olive"},
    id=lambda ctx: unique_int(),
    send_id_as="tag_id",
    gone_status=400,
)


@flow
def swagger_document_with_the_configured_accept(ctx):
    """app.headers' Accept is sent: the document is served (application/json alone: 406)."""
    document = ctx.api.get("/swagger/?format=openapi", expect=200).json()
    assert document["swagger"] == "2.0"
    refused = ctx.api.get(
        "/swagger/?format=openapi", headers={"Accept": "application/json"}, expect=406
    )
    assert "Accept" in refused.json()["detail"]
