"""Endpoints about a site beyond CRUD: the instruments standing at it.

``GET /api/sites/<id>/instruments`` returns the site, its computers and freezers
(ordered by id, not paginated: a site has a handful) and the counts from the
``site_inventory`` view, which also backs the rule that a site with instruments
cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from psycopg2 import sql

from inventory.auth import current_user
from inventory.crud import fetch_one, select_columns, to_json
from inventory.db import fetch_dict, fetch_dicts, transaction
from inventory.openapi import json_response, operation
from inventory.resources import COMPUTER, FREEZER, SITE
from inventory.validation import parse_id


def register(bp: Blueprint) -> None:
    """Add the site endpoints to the API blueprint.

    Args:
        bp: The API blueprint (mounted at ``/api``).
    """
    bp.add_url_rule("/sites/<id>/instruments", "site_instruments", site_instruments)


@operation(
    "The computers and freezers of a site, with counts",
    tag="sites",
    responses={"200": json_response("The site and its instruments.", "SiteInstruments")},
)
def site_instruments(id: str) -> Response:
    """List what stands at a site."""
    site_id = parse_id(id, resource="site")
    current_user()
    with transaction() as cur:
        site = fetch_one(cur, SITE, site_id)
        instruments: dict[str, list[dict[str, Any]]] = {}
        for resource in (COMPUTER, FREEZER):
            query = sql.SQL("SELECT {columns} FROM {table} WHERE site_id = %s ORDER BY id")
            cur.execute(
                query.format(
                    columns=select_columns(resource), table=sql.Identifier(resource.table)
                ),
                (site_id,),
            )
            instruments[resource.plural] = [to_json(row) for row in fetch_dicts(cur)]
        cur.execute(
            "SELECT computers, freezers, containers FROM site_inventory WHERE site_id = %s",
            (site_id,),
        )
        counts = fetch_dict(cur) or {"computers": 0, "freezers": 0, "containers": 0}
    return jsonify(site=to_json(site), **instruments, counts=counts)
