"""The OpenAPI 3 document, derived from the app's real routes.

Views carry their operation description (``@operation(...)``); the document is built
by walking ``app.url_map``, so a route without a description fails loudly instead of
going missing. nocrud computes endpoint coverage from this document, which is why it
must list exactly the operations the app serves. Resource schemas come from
:mod:`inventory.resources`, the same definitions the validation uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify

from inventory.resources import RESOURCES, Resource
from inventory.validation import BIGINT_MAX, DEFAULT_LIMIT, MAX_LIMIT, Field

OPENAPI_ATTR = "openapi_operation"
EXTENSION_KEY = "inventory.openapi"
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

View = TypeVar("View", bound=Callable[..., Any])

MAC_PATTERN = (
    "^([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12})$"
)

READ_ONLY_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "format": "int64", "minimum": 1, "readOnly": True},
    "code": {
        "type": "string",
        "readOnly": True,
        "description": "Short code assigned at creation from the name and id (e.g. NORTHLAB-1).",
    },
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
}

bp = Blueprint("openapi", __name__)


def operation(
    summary: str,
    *,
    tag: str,
    responses: dict[str, Any],
    request_schema: str | None = None,
    secured: bool = False,
    parameters: list[dict[str, Any]] | None = None,
) -> Callable[[View], View]:
    """Attach an OpenAPI operation description to a view.

    Args:
        summary: One line saying what the operation does.
        tag: Group in the document (usually the resource's plural).
        responses: Status code -> response object (see :func:`json_response`).
        request_schema: Name of the component schema of the JSON request body.
        secured: The operation requires a bearer token (adds 401/403).
        parameters: Query parameters; path parameters are added from the route.

    Returns:
        A decorator that marks the view and returns it unchanged.
    """
    spec: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if request_schema is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(request_schema)}},
        }
        spec["responses"].setdefault("400", {"$ref": "#/components/responses/BadRequest"})
    if secured:
        spec["security"] = [{"bearerAuth": []}]
        spec["responses"]["401"] = {"$ref": "#/components/responses/Unauthorized"}
        spec["responses"]["403"] = {"$ref": "#/components/responses/Forbidden"}
    if parameters:
        spec["parameters"] = parameters

    def mark(view: View) -> View:
        setattr(view, OPENAPI_ATTR, spec)
        return view

    return mark


def ref(schema: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{schema}"}


def json_response(description: str, schema: str | dict[str, Any]) -> dict[str, Any]:
    """A response object with a JSON body.

    Args:
        description: What the response means.
        schema: A component schema name, or an inline schema.
    """
    body = ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def error_response(kind: str) -> dict[str, str]:
    """A reference to a shared error response (``BadRequest``, ``NotFound``, ...)."""
    return {"$ref": f"#/components/responses/{kind}"}


@bp.get("/openapi.json")
@operation(
    "This OpenAPI document",
    tag="meta",
    responses={"200": json_response("The OpenAPI 3 document.", {"type": "object"})},
)
def openapi_document() -> Response:
    """Serve the document, built once per app."""
    document = current_app.extensions.get(EXTENSION_KEY)
    if document is None:
        document = build_document(current_app)
        current_app.extensions[EXTENSION_KEY] = document
    return jsonify(document)


def build_document(app: Flask) -> dict[str, Any]:
    """Build the OpenAPI document of ``app`` from its URL map.

    Args:
        app: The app whose routes to describe.

    Returns:
        The OpenAPI 3.0 document as a JSON-ready dict.

    Raises:
        LookupError: A route's view has no ``@operation`` description.
    """
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        spec = getattr(view, OPENAPI_ATTR, None)
        if spec is None:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) has no OpenAPI description")
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        path_parameters = [_id_parameter(name) for name in _RULE_ARGUMENT.findall(rule.rule)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = {"operationId": rule.endpoint.replace(".", "_"), **spec}
            if path_parameters:
                op["parameters"] = path_parameters + op.get("parameters", [])
                op["responses"] = {**op["responses"]}
                op["responses"].setdefault("404", error_response("NotFound"))
                op["responses"].setdefault("400", error_response("BadRequest"))
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Lab inventory",
            "version": "1.0.0",
            "description": (
                "Sites, their computers and freezers, and the containers stored in the "
                "freezers. Reads are anonymous; writes need a bearer token from "
                "POST /api/auth/login with role admin or editor."
            ),
        },
        "paths": paths,
        "components": _components(),
    }


def _id_parameter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": BIGINT_MAX},
    }


def pagination_parameters() -> list[dict[str, Any]]:
    """The ``offset`` and ``limit`` query parameters of list operations."""
    return [
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
    ]


def _field_schema(spec: Field) -> dict[str, Any]:
    schema = (
        _integer_schema(spec) if spec.kind in ("integer", "reference") else _string_schema(spec)
    )
    if spec.nullable:
        schema["nullable"] = True
    if spec.description:
        schema["description"] = spec.description
    if spec.example is not None:
        schema["example"] = spec.example
    return schema


def _integer_schema(spec: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "format": "int64"}
    if spec.kind == "reference":
        schema["minimum"] = 1
    if spec.minimum is not None:
        schema["minimum"] = spec.minimum
    if spec.maximum is not None:
        schema["maximum"] = spec.maximum
    return schema


def _string_schema(spec: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if spec.kind == "mac":
        schema["pattern"] = MAC_PATTERN
    elif spec.kind == "uuid":
        schema["format"] = "uuid"
    else:
        if spec.required:
            schema["minLength"] = 1
        if spec.max_length is not None:
            schema["maxLength"] = spec.max_length
    return schema


def _resource_schemas(resource: Resource) -> dict[str, dict[str, Any]]:
    read_only = {name: READ_ONLY_SCHEMAS[name] for name in resource.read_only}
    writable = {spec.name: _field_schema(spec) for spec in resource.fields}
    required = [spec.name for spec in resource.fields if spec.required]
    title = resource.title
    return {
        title: {
            "type": "object",
            "properties": {**read_only, **writable},
            "required": list(resource.columns),
        },
        f"{title}Input": {
            "type": "object",
            "description": (
                "Body of create (POST) and full update (PUT); omitted optional fields "
                "become null. Read-only fields may be echoed back unchanged."
            ),
            "properties": {**read_only, **writable},
            "required": required,
            "additionalProperties": False,
        },
        f"{title}Patch": {
            "type": "object",
            "description": "Body of a partial update (PATCH): only the given fields change.",
            "properties": {**read_only, **writable},
            "additionalProperties": False,
        },
        f"{title}List": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref(title)},
                "total": {"type": "integer", "minimum": 0},
                "offset": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
            },
            "required": ["items", "total", "offset", "limit"],
        },
    }


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Field name -> what is wrong with its value.",
            },
        },
        "required": ["error"],
    }


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _error_schema()}
    for resource in RESOURCES:
        schemas.update(_resource_schemas(resource))
    schemas.update(_auth_schemas())
    schemas["Health"] = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "error": {"type": "string", "description": "Why the database is unavailable."},
        },
        "required": ["status"],
    }
    schemas["SiteInstruments"] = {
        "type": "object",
        "properties": {
            "site": ref("Site"),
            "computers": {"type": "array", "items": ref("Computer")},
            "freezers": {"type": "array", "items": ref("Freezer")},
            "counts": {
                "type": "object",
                "properties": {
                    kind: {"type": "integer", "minimum": 0}
                    for kind in ("computers", "freezers", "containers")
                },
                "required": ["computers", "freezers", "containers"],
            },
        },
        "required": ["site", "computers", "freezers", "counts"],
    }
    responses = {
        kind: json_response(description, "Error")
        for kind, description in (
            ("BadRequest", "Invalid input; `fields` names each bad field."),
            ("Unauthorized", "No bearer token, or an invalid or expired one."),
            ("Forbidden", "The token's role may not do this (viewer)."),
            ("NotFound", "No object with this id."),
            ("Conflict", "Clashes with existing data (unique value or business rule)."),
        )
    }
    return {
        "schemas": schemas,
        "responses": responses,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    }


def _auth_schemas() -> dict[str, Any]:
    role = {"type": "string", "enum": ["admin", "editor", "viewer"]}
    return {
        "Login": {
            "type": "object",
            "properties": {
                "username": {"type": "string", "example": "editor"},
                "password": {"type": "string", "format": "password", "example": "editor-password"},
            },
            "required": ["username", "password"],
            "additionalProperties": False,
        },
        "Token": {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "role": role,
                "username": {"type": "string"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
            "required": ["token", "role", "username", "expires_at"],
        },
        "User": {
            "type": "object",
            "properties": {"username": {"type": "string"}, "role": role},
            "required": ["username", "role"],
        },
    }
