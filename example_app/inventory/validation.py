"""Input checking: JSON bodies against field specs, ids in paths, and pagination.

Everything a client sends is checked here before it reaches SQL, and every problem is
reported per field in one 400 (``{"fields": {"name": "is required"}}``), so no client
mistake can surface as a database error. Values are normalised on the way (MAC
addresses and UUIDs to PostgreSQL's canonical text), so what a client reads back equals
what the database compares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import request

from inventory.errors import BadRequestError, NotFoundError, PayloadTooLargeError

BIGINT_MAX = 2**63 - 1
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

FieldKind = Literal["string", "integer", "reference", "mac", "uuid"]

_DIGITS = re.compile(r"[0-9]{1,25}")
_MAC_FORMS = (
    re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", re.IGNORECASE),
    re.compile(r"[0-9a-f]{2}(-[0-9a-f]{2}){5}", re.IGNORECASE),
    re.compile(r"[0-9a-f]{12}", re.IGNORECASE),
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    """One writable attribute of a resource and the rules its values follow.

    Attributes:
        name: JSON key and column name.
        kind: ``string``, ``integer``, ``reference`` (id of another resource), ``mac``
            or ``uuid``.
        required: Must be present on create and on full update (PUT).
        nullable: Accepts JSON null (optional fields are nullable and default to null).
        max_length: Longest accepted string, in characters.
        minimum: Smallest accepted integer.
        maximum: Largest accepted integer.
        references: For ``reference`` fields, the referenced resource's name.
        description: Shown in the OpenAPI document.
        example: Shown in the OpenAPI document.
    """

    name: str
    kind: FieldKind
    required: bool = False
    nullable: bool = False
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    references: str | None = None
    description: str = ""
    example: Any = None

    def clean(self, value: Any) -> Any:
        """Check one value and return it normalised.

        Args:
            value: The decoded JSON value.

        Returns:
            The value to store.

        Raises:
            FieldError: The value breaks a rule; the message completes "<field> ...".
        """
        if value is None:
            if self.nullable:
                return None
            raise FieldError("must not be null")
        if self.kind in ("string", "mac", "uuid"):
            return self._clean_text(value)
        return self._clean_integer(value)

    def _clean_text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldError("must be a string" + (" or null" if self.nullable else ""))
        if "\x00" in value:
            raise FieldError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError("must be valid Unicode (no lone surrogates)") from None
        if self.kind == "mac":
            return clean_mac(value)
        if self.kind == "uuid":
            if not _UUID.fullmatch(value):
                raise FieldError("must be a UUID like 123e4567-e89b-12d3-a456-426614174000")
            return value.lower()
        if self.required and not value.strip():
            raise FieldError("must not be blank")
        if self.max_length is not None and len(value) > self.max_length:
            raise FieldError(f"must be at most {self.max_length} characters")
        return value

    def _clean_integer(self, value: Any) -> int:
        # bool is an int in Python, but `true` is not an id or a temperature.
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError("must be an integer" + (" or null" if self.nullable else ""))
        if self.kind == "reference":
            if not 1 <= value <= BIGINT_MAX:
                raise FieldError(f"must be the id of a {self.references} (a positive integer)")
            return value
        low = self.minimum if self.minimum is not None else -BIGINT_MAX
        high = self.maximum if self.maximum is not None else BIGINT_MAX
        if not low <= value <= high:
            raise FieldError(f"must be between {low} and {high}")
        return value


class FieldError(ValueError):
    """A single value broke a field rule; the message completes "<field> ..."."""


@dataclass
class Body:
    """A checked request body.

    Attributes:
        values: Writable fields to store, normalised.
        read_only: Read-only fields the client echoed back (e.g. ``id`` after a GET),
            to be compared with the stored object by the caller.
    """

    values: dict[str, Any] = field(default_factory=dict)
    read_only: dict[str, Any] = field(default_factory=dict)


def clean_mac(value: str) -> str:
    """Normalise a MAC address to PostgreSQL's ``08:00:2b:01:02:03`` form.

    Args:
        value: ``08:00:2b:01:02:03``, ``08-00-2B-01-02-03`` or ``08002b010203``.

    Returns:
        The lowercase colon-separated form.

    Raises:
        FieldError: The value is not one of the accepted forms.
    """
    if not any(form.fullmatch(value) for form in _MAC_FORMS):
        raise FieldError("must be a MAC address like 08:00:2b:01:02:03")
    digits = value.replace(":", "").replace("-", "").lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def read_json_object() -> dict[str, Any]:
    """Decode the request body as a JSON object.

    Any Content-Type is accepted as long as the body is JSON; ``NaN``/``Infinity`` and
    nesting deep enough to exhaust the parser are refused like any other bad JSON.

    Returns:
        The decoded object.

    Raises:
        BadRequestError: The body is empty, not JSON, or not an object.
        PayloadTooLargeError: The body exceeds 1 MiB.
    """
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body must be at most {MAX_BODY_BYTES} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body must be at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise BadRequestError("request body must be a JSON object, got an empty body")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise BadRequestError(f"request body is not valid JSON: {_short(error)}") from None
    if not isinstance(body, dict):
        raise BadRequestError(f"request body must be a JSON object, got {_json_type(body)}")
    return body


def check_body(
    body: Mapping[str, Any],
    fields: Sequence[Field],
    *,
    read_only: Sequence[str] = (),
    partial: bool,
) -> Body:
    """Check a decoded body against ``fields``, collecting every problem.

    Args:
        body: The decoded JSON object.
        fields: The resource's writable fields.
        read_only: Names the client may echo back but not change.
        partial: True for PATCH (only the given fields change); False for POST and PUT
            (required fields must be present, omitted optional fields become null).

    Returns:
        The checked body.

    Raises:
        BadRequestError: One or more fields are missing, unknown or invalid.
    """
    by_name = {f.name: f for f in fields}
    problems: dict[str, str] = {}
    checked = Body()
    for key, value in body.items():
        if key in read_only:
            checked.read_only[key] = value
        elif key not in by_name:
            problems[key] = "is not a known field"
    for spec in fields:
        if spec.name in body:
            try:
                checked.values[spec.name] = spec.clean(body[spec.name])
            except FieldError as error:
                problems[spec.name] = str(error)
        elif partial:
            continue
        elif spec.required:
            problems[spec.name] = "is required"
        else:
            checked.values[spec.name] = None
    if problems:
        raise BadRequestError("invalid request body", fields=problems)
    return checked


def parse_id(raw: str, *, resource: str) -> int:
    """Turn the ``<id>`` of a path into an integer.

    Args:
        raw: The path segment.
        resource: Name of the resource, for the 404 message.

    Returns:
        The id.

    Raises:
        BadRequestError: ``raw`` is not a non-negative decimal integer.
        NotFoundError: ``raw`` is an integer no row can have (0 or beyond bigint).
    """
    if not _DIGITS.fullmatch(raw):
        raise BadRequestError("invalid id in path", fields={"id": "must be a positive integer"})
    value = int(raw)
    if not 1 <= value <= BIGINT_MAX:
        raise NotFoundError(f"{resource} {raw} not found")
    return value


def parse_pagination(args: Mapping[str, str]) -> tuple[int, int]:
    """Read ``offset`` and ``limit`` from the query string.

    Args:
        args: The query arguments.

    Returns:
        ``(offset, limit)``; defaults ``0`` and ``50``.

    Raises:
        BadRequestError: A value is not an integer in range (offset >= 0, 1 <= limit <= 500).
    """
    problems: dict[str, str] = {}
    offset = _query_int(args, "offset", default=0, low=0, high=BIGINT_MAX, problems=problems)
    limit = _query_int(
        args, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT, problems=problems
    )
    if problems:
        raise BadRequestError("invalid pagination", fields=problems)
    return offset, limit


def _query_int(
    args: Mapping[str, str],
    name: str,
    *,
    default: int,
    low: int,
    high: int,
    problems: dict[str, str],
) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    message = f"must be an integer between {low} and {high}"
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        problems[name] = message
        return default
    return int(raw)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _short(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).splitlines()[0][:200]
