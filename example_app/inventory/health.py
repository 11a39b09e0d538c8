"""Readiness: ``GET /health`` is 200 only while the database answers ``SELECT 1``.

nocrud polls it after starting a flow's app container, so it must be cheap, never
hang longer than the connect timeout, and say 503 (not 500) while PostgreSQL is
still starting or has gone away.
"""

from __future__ import annotations

import logging

import psycopg2
from flask import Blueprint, Response, jsonify

from inventory.db import get_database
from inventory.errors import ServiceUnavailableError
from inventory.openapi import json_response, operation

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
@operation(
    "Readiness: 200 when the database answers",
    tag="meta",
    responses={
        "200": json_response("The app and its database work.", "Health"),
        "503": json_response("The database cannot be reached.", "Health"),
    },
)
def health() -> tuple[Response, int]:
    """Check the database with ``SELECT 1``."""
    try:
        get_database().ping()
    except (psycopg2.Error, ServiceUnavailableError) as error:
        reason = error.message if isinstance(error, ServiceUnavailableError) else str(error).strip()
        log.info("health check failed: %s", reason)
        return jsonify(status="unavailable", error=reason), 503
    return jsonify(status="ok"), 200
