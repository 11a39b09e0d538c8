"""Helpers for builders: plain functions that create an object through the API.

A builder takes a flow's context (or any :class:`~nocrud.http.client.ApiClient`, e.g. a
second user) and field overrides, fills in the rest with unique defaults, creates the
object with one request and returns what the API answered::

    def build_site(api, **overrides):
        body = fields(overrides, name=lambda: unique("site"), country="Testland")
        return create(api, "/api/sites", body)

    def build_freezer(api, **overrides):
        body = fields(overrides, name=lambda: unique("freezer"),
                      site_id=lambda: build_site(api)["id"])
        return create(api, "/api/freezers", body)

Builders compose (a freezer needs a site, made only when no ``site_id`` is given),
and the ``unique*`` values come from random UUIDs, so flows running in parallel, or
one flow building many objects, never collide on a unique column.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from nocrud.flows.context import FlowContext

if TYPE_CHECKING:  # the HTTP client (and requests) load when a flow runs, not when listed
    from nocrud.http.client import ApiClient, Expect

__all__ = [
    "client_of",
    "create",
    "fields",
    "unique",
    "unique_email",
    "unique_int",
    "unique_mac",
    "unique_uuid",
]

#: What builders accept: a flow's context (its ``api`` is used) or a client.
Target: TypeAlias = "FlowContext | ApiClient"


def unique(prefix: str = "", length: int = 12) -> str:
    """A value no other call returns: ``prefix-`` and ``length`` random hex digits.

    Args:
        prefix: Readable start, so people can tell what made the object.
        length: Random hex digits (12 gives 48 random bits).
    """
    token = uuid.uuid4().hex[:length]
    return f"{prefix}-{token}" if prefix else token


def unique_int(maximum: int = 2**31 - 1) -> int:
    """A random positive integer up to ``maximum`` (for numeric unique columns)."""
    return uuid.uuid4().int % maximum + 1


def unique_uuid() -> str:
    """A random UUID as lowercase text."""
    return str(uuid.uuid4())


def unique_mac() -> str:
    """A random, locally administered, unicast MAC address, lowercase ``xx:xx:...``."""
    raw = bytearray(uuid.uuid4().bytes[:6])
    raw[0] = (raw[0] | 0b10) & 0b11111110
    return ":".join(f"{b:02x}" for b in raw)


def unique_email(name: str = "user", domain: str = "example.com") -> str:
    """A unique address at a reserved domain: ``name-1a2b3c4d5e6f@example.com``."""
    return f"{unique(name)}@{domain}"


def fields(overrides: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """A request body: the ``defaults``, replaced by ``overrides``, plus extra overrides.

    A default that is callable is called only when no override replaces it, so a
    prerequisite (``site_id=lambda: build_site(api)["id"]``) is built only when the
    caller did not bring one. An override of ``None`` is sent as ``null``.

    Args:
        overrides: What the caller asked for.
        **defaults: Values, or functions of no arguments returning one.
    """
    body: dict[str, Any] = {}
    for key, default in defaults.items():
        if key in overrides:
            body[key] = overrides[key]
        else:
            body[key] = default() if callable(default) else default
    body.update((key, value) for key, value in overrides.items() if key not in defaults)
    return body


def client_of(target: Target) -> ApiClient:
    """The client to use: ``target`` itself, or the context's ``api``."""
    return target.api if isinstance(target, FlowContext) else target


def create(
    target: Target,
    path: str,
    body: Mapping[str, Any],
    *,
    expect: Expect = 201,
    endpoint: str | None = None,
) -> Any:
    """POST ``body`` to ``path`` and return the JSON the API answered.

    Args:
        target: A flow's context or a client (log it in first).
        path: The collection path.
        body: The object to create.
        expect: The status creation answers.
        endpoint: The path template to record, when ``path`` holds ids.

    Raises:
        UnexpectedStatus: The API did not answer ``expect`` (the message shows the
            request and the response).
    """
    return client_of(target).post(path, json=dict(body), expect=expect, endpoint=endpoint).data


#: The shape of a builder, for annotations: ``def build_site(api: Target, **fields) -> dict``.
Builder = Callable[..., Any]
