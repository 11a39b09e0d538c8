"""Generic CRUD endpoints: one :class:`~inventory.resources.Resource` -> six operations.

``/api/<plural>`` answers list (GET) and create (POST); ``/api/<plural>/<id>`` answers
get, full update (PUT), partial update (PATCH) and delete. SQL is composed with
:mod:`psycopg2.sql` from the resource's fixed column names; values are always bound.
Constraint violations are mapped back to the field that caused them: unique -> 409,
missing referenced row on create/update -> 400, still referenced on delete -> 409.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
from flask import Blueprint, Response, jsonify, request, url_for
from psycopg2 import sql

from inventory.auth import current_user, require_writer
from inventory.db import Cursor, fetch_dict, fetch_dicts, transaction
from inventory.errors import BadRequestError, ConflictError, NotFoundError
from inventory.openapi import error_response, json_response, operation, pagination_parameters
from inventory.resources import Resource
from inventory.validation import check_body, parse_id, parse_pagination, read_json_object


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """Make a database row JSON-ready (timestamps as ISO 8601 strings)."""
    return {
        key: value.isoformat() if isinstance(value, dt.datetime) else value
        for key, value in row.items()
    }


def select_columns(resource: Resource) -> sql.Composed:
    """The resource's columns as a SQL select list."""
    return sql.SQL(", ").join(sql.Identifier(column) for column in resource.columns)


def fetch_one(
    cur: Cursor, resource: Resource, object_id: int, *, lock: bool = False
) -> dict[str, Any]:
    """Read one object or raise 404.

    Args:
        cur: Cursor inside a transaction.
        resource: What to read.
        object_id: Its id.
        lock: Take a row lock (``FOR UPDATE``) for a following update.

    Returns:
        The row.

    Raises:
        NotFoundError: No such object.
    """
    query = sql.SQL("SELECT {columns} FROM {table} WHERE id = %s{lock}").format(
        columns=select_columns(resource),
        table=sql.Identifier(resource.table),
        lock=sql.SQL(" FOR UPDATE" if lock else ""),
    )
    cur.execute(query, (object_id,))
    row = fetch_dict(cur)
    if row is None:
        raise NotFoundError(f"{resource.name} {object_id} not found")
    return row


@contextmanager
def constraint_errors(resource: Resource, *, deleting: bool = False) -> Iterator[None]:
    """Turn constraint violations raised inside the block into answers naming the field.

    Args:
        resource: The resource being written.
        deleting: True around a DELETE, where a foreign key violation means the row is
            still referenced (409) rather than referring to a missing row (400).

    Raises:
        ConflictError: Unique violation, or the row is still referenced.
        BadRequestError: Reference to a missing row, or a check constraint failed.
    """
    try:
        yield
    except psycopg2.errors.UniqueViolation as error:
        name = _field_of(error, resource.unique)
        raise ConflictError(
            f"another {resource.name} already has this {name}",
            fields={name: f"is already used by another {resource.name}"},
        ) from None
    except psycopg2.errors.ForeignKeyViolation as error:
        if deleting:
            raise ConflictError(
                f"{resource.name} is still referenced by other objects; delete those first"
            ) from None
        name = _field_of(error, resource.references)
        spec = next((f for f in resource.fields if f.name == name), None)
        target = spec.references if spec and spec.references else "object"
        raise BadRequestError(
            "invalid reference", fields={name: f"refers to a {target} that does not exist"}
        ) from None
    except psycopg2.errors.CheckViolation as error:
        name = _field_of(error, resource.checks)
        raise BadRequestError(
            "invalid request body", fields={name: "is not an allowed value"}
        ) from None


def _field_of(error: psycopg2.Error, constraints: dict[str, str]) -> str:
    constraint = error.diag.constraint_name or ""
    return constraints.get(constraint, constraint or "unknown")


def _check_read_only(
    resource: Resource, echoed: dict[str, Any], current: dict[str, Any] | None
) -> None:
    """Accept read-only fields only when echoed back unchanged (GET, edit, PUT)."""
    stored = to_json(current) if current is not None else {}
    problems = {
        name: "is read-only"
        for name, value in echoed.items()
        if name not in stored or value != stored[name]
    }
    if problems:
        raise BadRequestError(
            f"read-only fields of a {resource.name} cannot be set", fields=problems
        )


def list_objects(resource: Resource) -> Response:
    """``GET /api/<plural>``: one page of objects, ordered by id."""
    offset, limit = parse_pagination(request.args)
    current_user()  # a token that is sent must be valid, even on reads
    table = sql.Identifier(resource.table)
    with transaction() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {table}").format(table=table))
        total_row = cur.fetchone()
        query = sql.SQL("SELECT {columns} FROM {table} ORDER BY id LIMIT %s OFFSET %s")
        cur.execute(query.format(columns=select_columns(resource), table=table), (limit, offset))
        items = [to_json(row) for row in fetch_dicts(cur)]
    total = int(total_row[0]) if total_row else 0
    return jsonify(items=items, total=total, offset=offset, limit=limit)


def create_object(resource: Resource) -> tuple[Response, int, dict[str, str]]:
    """``POST /api/<plural>``: insert and return the new object (201 + Location)."""
    body = check_body(
        read_json_object(), resource.fields, read_only=resource.read_only, partial=False
    )
    _check_read_only(resource, body.read_only, None)
    names = list(body.values)
    query = sql.SQL("INSERT INTO {table} ({names}) VALUES ({values}) RETURNING {columns}")
    with constraint_errors(resource), transaction() as cur:
        cur.execute(
            query.format(
                table=sql.Identifier(resource.table),
                names=sql.SQL(", ").join(sql.Identifier(n) for n in names),
                values=sql.SQL(", ").join(sql.Placeholder() for _ in names),
                columns=select_columns(resource),
            ),
            [body.values[n] for n in names],
        )
        row = fetch_dict(cur)
    assert row is not None  # INSERT ... RETURNING always yields the row
    location = url_for(f".get_{resource.name}", id=row["id"])
    return jsonify(to_json(row)), 201, {"Location": location}


def get_object(resource: Resource, id: str) -> Response:
    """``GET /api/<plural>/<id>``."""
    object_id = parse_id(id, resource=resource.name)
    current_user()
    with transaction() as cur:
        row = fetch_one(cur, resource, object_id)
    return jsonify(to_json(row))


def update_object(resource: Resource, id: str, *, partial: bool) -> Response:
    """``PUT`` (``partial=False``) or ``PATCH`` (``partial=True``) of one object."""
    object_id = parse_id(id, resource=resource.name)
    body = check_body(
        read_json_object(), resource.fields, read_only=resource.read_only, partial=partial
    )
    query = sql.SQL("UPDATE {table} SET {assignments} WHERE id = %s RETURNING {columns}")
    with constraint_errors(resource), transaction() as cur:
        current = fetch_one(cur, resource, object_id, lock=True)
        _check_read_only(resource, body.read_only, current)
        if not body.values:  # PATCH {} changes nothing
            return jsonify(to_json(current))
        names = list(body.values)
        cur.execute(
            query.format(
                table=sql.Identifier(resource.table),
                assignments=sql.SQL(", ").join(
                    sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names
                ),
                columns=select_columns(resource),
            ),
            [*(body.values[n] for n in names), object_id],
        )
        row = fetch_dict(cur)
    assert row is not None  # the row is locked, so it still exists
    return jsonify(to_json(row))


def delete_object(resource: Resource, id: str) -> tuple[str, int]:
    """``DELETE /api/<plural>/<id>``, unless the resource's delete guard objects (409)."""
    object_id = parse_id(id, resource=resource.name)
    with constraint_errors(resource, deleting=True), transaction() as cur:
        fetch_one(cur, resource, object_id, lock=True)
        if resource.delete_guard is not None:
            reason = resource.delete_guard(cur, object_id)
            if reason is not None:
                raise ConflictError(reason)
        query = sql.SQL("DELETE FROM {table} WHERE id = %s")
        cur.execute(query.format(table=sql.Identifier(resource.table)), (object_id,))
    return "", 204


def register(bp: Blueprint, resource: Resource) -> None:
    """Add the six CRUD operations of ``resource`` to ``bp``.

    Endpoints are named ``<action>_<resource>`` (``api.get_site``), one per method, so
    each carries its own OpenAPI description.

    Args:
        bp: The API blueprint (mounted at ``/api``).
        resource: The resource to serve.
    """
    collection, item = f"/{resource.plural}", f"/{resource.plural}/<id>"
    title, name = resource.title, resource.name
    updated = {
        "200": json_response(f"The updated {name}.", title),
        "409": error_response("Conflict"),
    }
    routes: list[tuple[str, str, str, Callable[..., Any], bool, dict[str, Any]]] = [
        (
            "GET", collection, "list", list_objects, False,
            {
                "summary": f"List {resource.plural}, ordered by id",
                "parameters": pagination_parameters(),
                "responses": {
                    "200": json_response(f"A page of {resource.plural}.", f"{title}List"),
                    "400": error_response("BadRequest"),
                },
            },
        ),
        (
            "POST", collection, "create", create_object, True,
            {
                "summary": f"Create a {name}",
                "request_schema": f"{title}Input",
                "responses": {
                    "201": json_response(f"The new {name}; Location names it.", title),
                    "409": error_response("Conflict"),
                },
            },
        ),
        (
            "GET", item, "get", get_object, False,
            {
                "summary": f"Get one {name}",
                "responses": {"200": json_response(f"The {name}.", title)},
            },
        ),
        (
            "PUT", item, "replace", functools.partial(update_object, partial=False), True,
            {
                "summary": f"Replace a {name} (omitted optional fields become null)",
                "request_schema": f"{title}Input",
                "responses": updated,
            },
        ),
        (
            "PATCH", item, "patch", functools.partial(update_object, partial=True), True,
            {
                "summary": f"Change some fields of a {name}",
                "request_schema": f"{title}Patch",
                "responses": updated,
            },
        ),
        (
            "DELETE", item, "delete", delete_object, True,
            {
                "summary": f"Delete a {name}",
                "responses": {
                    "204": {"description": "Deleted."},
                    "409": error_response("Conflict"),
                },
            },
        ),
    ]  # fmt: skip
    for method, rule, action, handler, secured, description in routes:
        view = _bind(handler, resource)
        if secured:
            view = require_writer(view)
        view = operation(tag=resource.plural, secured=secured, **description)(view)
        bp.add_url_rule(rule, f"{action}_{name}", view, methods=[method])


def _bind(handler: Callable[..., Any], resource: Resource) -> Callable[..., Any]:
    """A view function calling ``handler(resource, **route_arguments)``."""

    def view(**route_arguments: str) -> Any:
        return handler(resource, **route_arguments)

    return view
