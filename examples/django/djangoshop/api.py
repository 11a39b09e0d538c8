"""What every API view shares: error answers, the audit trail, conflicts.

Errors keep DRF's shapes (``{"field": ["message"]}`` for validation, ``{"detail": ...}``
otherwise); deleting something still referenced answers 409 naming what holds it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model, ProtectedError
from django.http import JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.schemas.openapi import AutoSchema
from rest_framework.views import exception_handler as drf_exception_handler

from djangoshop.audit.models import record


class Conflict(APIException):
    """The request is valid but the object's state forbids it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "the object's current state does not allow this"
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus 409 for deleting what other objects still reference."""
    if isinstance(exc, ProtectedError):
        held_by = sorted({obj._meta.verbose_name_plural for obj in exc.protected_objects})
        return Response(
            {"detail": f"still referenced by {', '.join(str(name) for name in held_by)}"},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)


#: The error answers every operation can give (DRF's shapes: ``{"detail": ...}`` or
#: ``{"field": ["message"]}``), which DRF's inspector leaves out of the document: without
#: them a client (or `nocrud fuzz`) meets statuses the document never mentions.
_ERROR = {"content": {"application/json": {"schema": {"type": "object"}}}}
_ERRORS_ALWAYS = {"401": "not signed in", "403": "not allowed"}
_ERRORS_WITH_INPUT = {"400": "invalid input"}
_ERRORS_WITH_ID = {"404": "no such object"}
_ERRORS_CHANGING = {"409": "the object's state (or what references it) forbids this"}


class ShopSchema(AutoSchema):
    """DRF's OpenAPI inspector, pluralising list operations without ``inflection``.

    Newer DRF needs the ``inflection`` package to name ``listCategories``; the names
    here are regular English, so a two-rule plural keeps the schema dependency-free.
    It also documents the error answers (found by `nocrud fuzz`: 400 and 404 were
    undocumented on every operation that has them), a view's own success status
    (``success_status``, e.g. logout's 204), and writes patterns as ECMA-262 regular
    expressions, as OpenAPI requires (Django's username validator ends in ``\\Z``).
    """

    def get_responses(self, path: str, method: str) -> dict[str, Any]:
        responses: dict[str, Any] = dict(super().get_responses(path, method))
        success = getattr(self.view, "success_status", None)
        if success is not None and method == "POST":
            responses.pop("201", None)
            responses[str(success)] = {"description": ""}
        errors = dict(_ERRORS_ALWAYS)
        if method in ("POST", "PUT", "PATCH"):
            errors |= _ERRORS_WITH_INPUT
        if "{" in path or method == "GET":  # no such object, or a list page out of range
            errors |= _ERRORS_WITH_ID
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            errors |= _ERRORS_CHANGING
        for code, description in errors.items():
            responses.setdefault(code, {"description": description, **_ERROR})
        return responses

    def map_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super().map_field_validators(field, schema)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            # Python's end-of-string anchor; ECMA-262 (and so OpenAPI) has only ``$``.
            schema["pattern"] = pattern.replace("\\Z", "$").replace("\\z", "$")

    def get_operation_id_base(self, path: str, method: str, action: str) -> str:
        if action != "list":
            return str(super().get_operation_id_base(path, method, action))
        name = str(super().get_operation_id_base(path, method, "retrieve"))
        if name.endswith("s"):
            return name
        return name[:-1] + "ies" if name.endswith("y") else name + "s"


def not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    """Django's 404 for a URL no route matches, in DRF's shape instead of an HTML page.

    Found by `nocrud fuzz` (content_type_conformance): ``/api/categories/abc/`` answered
    ``text/html`` where every documented answer is JSON.
    """
    return JsonResponse({"detail": "Not found."}, status=404)


class AuditedMixin:
    """Records an audit event for every create, update and delete of a model viewset."""

    request: Any

    def perform_create(self, serializer: Any) -> None:
        instance = serializer.save()
        record(self.request.user, "created", instance, self.request.data)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.save()
        record(self.request.user, "updated", instance, self.request.data)

    def perform_destroy(self, instance: Model) -> None:
        with transaction.atomic():  # no event for a delete that PROTECT refuses
            record(self.request.user, "deleted", instance)
            instance.delete()
