"""Builders for example_app's objects: each creates one through the API and returns it.

Every builder takes a flow's context (or a client, e.g. a second user) and field
overrides; whatever is not overridden gets a unique or sensible default, and missing
prerequisites are built on the way: ``build_container(ctx)`` makes a freezer, which
makes a site. The client must be logged in as a writer (``ctx.login(*EDITOR)``).
Other flow modules import these: ``from flows.builders import build_site``.
"""

from __future__ import annotations

from typing import Any

from nocrud import Target, create, fields, unique, unique_mac, unique_uuid

#: The users example_app's migrations create, as (username, password).
ADMIN = ("admin", "admin-password")
EDITOR = ("editor", "editor-password")
VIEWER = ("viewer", "viewer-password")


def build_site(api: Target, **overrides: Any) -> dict[str, Any]:
    """A site with a unique name; override any field (``name=``, ``country=``...)."""
    body = fields(
        overrides,
        name=lambda: unique("site"),
        contact="Ada Lovelace",
        address="1 Science Park",
        state_or_region="Cambridgeshire",
        country="United Kingdom",
        postcode_or_zip="CB4 0WS",
    )
    result: dict[str, Any] = create(api, "/api/sites", body)
    return result


def build_computer(api: Target, **overrides: Any) -> dict[str, Any]:
    """A computer with a unique name and MAC, at a new site unless ``site_id=`` is given."""
    body = fields(
        overrides,
        name=lambda: unique("pc"),
        mac=unique_mac,
        site_id=lambda: build_site(api)["id"],
    )
    result: dict[str, Any] = create(api, "/api/computers", body)
    return result


def build_freezer(api: Target, **overrides: Any) -> dict[str, Any]:
    """A -80 °C freezer, at a new site unless ``site_id=`` is given."""
    body = fields(
        overrides,
        name=lambda: unique("freezer"),
        site_id=lambda: build_site(api)["id"],
        temperature_c=-80,
    )
    result: dict[str, Any] = create(api, "/api/freezers", body)
    return result


def build_container(api: Target, **overrides: Any) -> dict[str, Any]:
    """A container with a unique UUID, in a new freezer unless ``freezer_id=`` is given."""
    body = fields(
        overrides,
        uuid=unique_uuid,
        description="PBMC aliquots",
        freezer_id=lambda: build_freezer(api)["id"],
    )
    result: dict[str, Any] = create(api, "/api/containers", body)
    return result
