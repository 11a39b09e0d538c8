"""Flows for the sites app: a CRUD flow, the seed, and the check that finds its bug."""

from nocrud import crud, flow, unique

site_crud = crud(
    "site_crud",
    "/sites",
    create=lambda ctx: {"name": unique("site"), "contact": "Ada", "country": "UK"},
    update={"name": "Renamed", "country": "Ireland"},
)


@flow
def the_seeded_head_office_is_listed_for_every_flow_of_the_run(ctx):
    names = [site["name"] for site in ctx.api.get("/sites").expect(200).json()["items"]]
    assert "Head office" in names


@flow
def contact_is_updated(ctx):
    site = ctx.api.post("/sites", json={"name": unique("s"), "contact": "Ada"}).expect(201).json()
    ctx.api.put(f"/sites/{site['id']}", json={**site, "contact": "Grace"}).expect(200)
    site = ctx.api.get(f"/sites/{site['id']}").expect(200).json()
    assert site["contact"] == "Grace"


@flow
def an_unknown_site_fails_with_the_request_and_response(ctx):
    ctx.api.get("/sites/999999").expect(200)
