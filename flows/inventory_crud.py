"""CRUD flows for the four inventory resources: one declaration each, five steps each.

Each declaration creates an object (building what it needs first: a computer needs
a site, a container needs a freezer), reads it back, replaces it (PUT) and patches
it (PATCH), finds it in the paginated list, deletes it and checks it is gone.
``nocrud up --crud`` runs only these; the report shows ``C✔ R✔ U✔ L✔ D✔`` per flow.
"""

from __future__ import annotations

from flows.builders import EDITOR, build_freezer, build_site
from nocrud import crud, unique, unique_mac, unique_uuid

site_crud = crud(
    "site_crud",
    "/api/sites",
    create=lambda ctx: {
        "name": unique("site"),
        "contact": "Ada Lovelace",
        "address": "1 Science Park",
        "state_or_region": "Cambridgeshire",
        "country": "United Kingdom",
        "postcode_or_zip": "CB4 0WS",
    },
    update={"contact": "Grace Hopper", "address": "2 Harbour Road", "country": "Ireland"},
    partial_update={"postcode_or_zip": "D02 X285"},
    auth=EDITOR,
    tags=["sites"],
    doc="A site: create, read, replace and patch, list, delete.",
)

computer_crud = crud(
    "computer_crud",
    "/api/computers",
    create=lambda ctx: {
        "name": unique("seq-ctrl"),
        "mac": unique_mac(),
        "site_id": build_site(ctx)["id"],
    },
    # PUT moves the computer to another site and gives it a new network card.
    update=lambda ctx, computer: {"site_id": build_site(ctx)["id"], "mac": unique_mac()},
    partial_update=lambda ctx, computer: {"name": computer["name"] + "-renamed"},
    auth=EDITOR,
    tags=["computers"],
    doc="A computer at a site: create, read, move with PUT, rename with PATCH, list, delete.",
)

freezer_crud = crud(
    "freezer_crud",
    "/api/freezers",
    create=lambda ctx: {
        "name": unique("minus-eighty"),
        "site_id": build_site(ctx)["id"],
        "temperature_c": -80,
    },
    update={"temperature_c": -20},
    partial_update={"temperature_c": -150},
    auth=EDITOR,
    tags=["freezers"],
    doc="A freezer at a site: create, read, replace and patch its set point, list, delete.",
)

container_crud = crud(
    "container_crud",
    "/api/containers",
    create=lambda ctx: {
        "uuid": unique_uuid(),
        "description": "PBMC aliquots, batch 7",
        "freezer_id": build_freezer(ctx)["id"],
    },
    update=lambda ctx, container: {"freezer_id": build_freezer(ctx)["id"]},
    partial_update={"description": "PBMC aliquots, batch 8"},
    auth=EDITOR,
    tags=["containers"],
    doc="A container in a freezer: create, read, move with PUT, relabel with PATCH, list, delete.",
)
