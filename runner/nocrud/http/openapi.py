"""The app's OpenAPI document: finding it, reading it, and what it says about one operation.

One place knows OpenAPI 3 and Swagger 2.0 documents for every reader: ``nocrud coverage``
and ``nocrud new crud`` (a file, a URL, or the copy a run saved), a run that saves the
document from its first app, readiness suggesting a health path, and ``crud()`` taking its
create status from the document. Documents are JSON or YAML. Requests for the document ask
for JSON but accept anything (``*/*`` last): drf_yasg's schema views answer 406 to a bare
``Accept: application/json``. :func:`request_schema` and :func:`documented_statuses` read
Swagger 2.0's shapes (``definitions``, ``in: body`` parameters, responses without
``content``) as well as OpenAPI 3's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nocrud.errors import UsageError

__all__ = [
    "ACCEPT",
    "OPENAPI_PATHS",
    "OpenApiError",
    "documented_path",
    "documented_statuses",
    "fetch_from_app",
    "is_openapi",
    "load_openapi",
    "parse_document",
    "request_schema",
    "resolve",
    "version_of",
]

#: Where apps commonly serve their OpenAPI document, tried in order.
OPENAPI_PATHS = ("/openapi.json", "/api/openapi.json", "/v3/api-docs", "/swagger.json")
#: The ``Accept`` header of a request for the document: JSON first, YAML, then anything.
ACCEPT = "application/json, application/yaml;q=0.9, */*;q=0.8"


class OpenApiError(UsageError):
    """The OpenAPI document cannot be had; the message says why and what to do."""


def is_openapi(document: Any) -> bool:
    """Whether ``document`` looks like an OpenAPI or Swagger document (it has ``paths``)."""
    return isinstance(document, Mapping) and isinstance(document.get("paths"), Mapping)


def version_of(document: Mapping[str, Any]) -> str:
    """``Swagger 2.0`` or ``OpenAPI 3.x.y``, as the document says, for messages."""
    if "swagger" in document:
        return f"Swagger {document['swagger']}"
    return f"OpenAPI {document.get('openapi', '(no version)')}"


def parse_document(text: str, where: str) -> Any:
    """An OpenAPI document's text, JSON or YAML, parsed.

    JSON is tried first (it is YAML too, but the JSON parser is faster and its errors
    read better for a JSON file); anything else is read as YAML, as ``openapi.yml``
    files and ``app.openapi: spec.yaml`` are.

    Raises:
        OpenApiError: The text is neither; the message names ``where`` and both formats.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise OpenApiError(
            f"{where} is neither JSON nor YAML{at}: point --openapi (or app.openapi) at the "
            "app's OpenAPI document"
        ) from None


def load_openapi(source: str | Path, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read an OpenAPI document (JSON or YAML) from a file, or from a URL.

    Args:
        source: A file path or an ``http(s)://`` URL.
        headers: Sent with a URL's request (``app.headers``), over :data:`ACCEPT`.

    Raises:
        OpenApiError: It cannot be read, is neither JSON nor YAML, or has no ``paths``;
            the message says which and what to do.
    """
    text = str(source)
    try:
        if text.startswith(("http://", "https://")):
            import requests

            response = requests.get(text, timeout=10, headers={"Accept": ACCEPT, **(headers or {})})
            response.raise_for_status()
            body = response.text
        else:
            body = Path(text).read_text()
    except FileNotFoundError:
        raise OpenApiError(
            f"no OpenAPI document at {text}: run `nocrud up` first (it saves the app's "
            "document there), or pass --openapi FILE_OR_URL"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure reads the same to the user
        raise OpenApiError(f"cannot read the OpenAPI document {text}: {exc}") from None
    document = parse_document(body, text)
    if not is_openapi(document):
        raise OpenApiError(f"{text} is not an OpenAPI document (it has no 'paths' object)")
    return dict(document)


def fetch_from_app(
    base_url: str,
    where: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The document the app at ``base_url`` serves, and what each path tried answered.

    Tries ``where`` (``app.openapi`` when it is a path on the app) or else the usual
    :data:`OPENAPI_PATHS`, directly (never through a proxy), with ``headers`` over
    :data:`ACCEPT`. Nothing is recorded: these requests cover nothing.

    Returns:
        The first document found (or None), and ``[{"path", "answer"}]`` in the order tried.
    """
    import requests

    tried: list[dict[str, str]] = []
    with requests.Session() as session:
        session.trust_env = False  # the app under test, never through a proxy
        session.headers.update({"Accept": ACCEPT, **(headers or {})})
        for path in (where,) if where is not None else OPENAPI_PATHS:
            answer, document = _try(session, base_url.rstrip("/") + path, timeout)
            tried.append({"path": path, "answer": answer})
            if document is not None:
                return document, tried
    return None, tried


def _try(session: Any, url: str, timeout: float) -> tuple[str, dict[str, Any] | None]:
    """What ``url`` answered, in words, and the document when it is one."""
    try:
        response = session.get(url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - every failure is one attempt's answer
        return f"no answer ({type(exc).__name__})", None
    status = f"{response.status_code} {response.reason or ''}".strip()
    if response.status_code != 200:
        return status, None
    kind = response.headers.get("Content-Type", "").split(";")[0] or "no Content-Type"
    try:
        document = parse_document(response.text, url)
    except OpenApiError:
        document = None
    if not isinstance(document, Mapping):  # an HTML page is YAML too: one long string
        return f"{status}, but {kind}, not JSON (nor a YAML document)", None
    if not is_openapi(document):
        return f"{status}, {kind} without a 'paths' object (not an OpenAPI document)", None
    return f"{status}, an OpenAPI document", dict(document)


# ---------------------------------------------------------------- what it says


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``node`` with its ``$ref`` followed (``#/components/...``, ``#/definitions/...``)."""
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < 20:
        seen += 1
        target: Any = document
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = target
    return node


def _operation(document: Mapping[str, Any], path: str, method: str) -> Mapping[str, Any]:
    paths = document.get("paths")
    item = paths.get(path) if isinstance(paths, Mapping) else None
    operation = item.get(method.lower()) if isinstance(item, Mapping) else None
    return operation if isinstance(operation, Mapping) else {}


def request_schema(
    document: Mapping[str, Any], path: str, method: str
) -> tuple[dict[str, Any], str]:
    """The JSON request body's schema of one operation, and what was not understood.

    OpenAPI 3: ``requestBody.content["application/json"]`` (or another ``+json`` type).
    Swagger 2.0: the ``in: body`` parameter's schema, or the ``in: formData`` parameters
    as an object (no operation-level ``consumes`` needed).

    Returns:
        The schema (``{}`` when there is none), and a sentence saying why not when the
        document has a body nocrud does not read as JSON (empty when all is understood).
    """
    operation = _operation(document, path, method)
    where = f"{method.upper()} {path}"
    if not operation:
        return {}, ""
    parameters = [resolve(document, p) for p in operation.get("parameters", []) or []]
    body = [p for p in parameters if isinstance(p, Mapping) and p.get("in") == "body"]
    if body:
        schema = resolve(document, body[0].get("schema", {}))
        return _object_schema(document, schema, where)
    form = [p for p in parameters if isinstance(p, Mapping) and p.get("in") == "formData"]
    if form:
        properties = {str(p.get("name")): dict(p) for p in form}
        return {"type": "object", "properties": properties}, (
            f"{where} takes a form (formData), not JSON: the payload is its fields; "
            "send them as JSON only if the app accepts that"
        )
    content = resolve(document, operation.get("requestBody", {})).get("content", {})
    if not isinstance(content, Mapping) or not content:
        return {}, ""
    kind = next((k for k in content if k == "application/json"), None) or next(
        (k for k in content if str(k).endswith("+json")), None
    )
    if kind is None:
        kinds = ", ".join(sorted(map(str, content)))
        return {}, f"{where} takes {kinds}, not JSON: the payload's fields are not filled in"
    return _object_schema(document, resolve(document, content[kind].get("schema", {})), where)


def _object_schema(
    document: Mapping[str, Any], schema: Any, where: str
) -> tuple[dict[str, Any], str]:
    """``schema`` as one object schema: ``allOf`` parts merged; anything else said plainly."""
    if not isinstance(schema, Mapping):
        return {}, ""
    parts = [resolve(document, s) for s in schema.get("allOf", []) or []]
    if parts:
        merged: dict[str, Any] = {}
        for part in [*parts, {k: v for k, v in schema.items() if k != "allOf"}]:
            if isinstance(part, Mapping):
                merged.update(part.get("properties", {}) or {})
        return {"type": "object", "properties": merged}, ""
    for choice in ("oneOf", "anyOf"):
        if schema.get(choice):
            return {}, (
                f"{where}'s body is one of several schemas ({choice}): not filled in; "
                "write the payload of the variant you test"
            )
    if "properties" not in schema and schema.get("type") not in (None, "object"):
        return {}, f"{where}'s body is a {schema.get('type')}, not an object: not filled in"
    return dict(schema), ""


def _prefix(document: Mapping[str, Any]) -> str:
    """The path every documented path sits under: ``servers[0].url``'s path or ``basePath``."""
    from urllib.parse import urlsplit

    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], Mapping):
        return urlsplit(str(servers[0].get("url", ""))).path.rstrip("/")
    base = document.get("basePath")
    return base.rstrip("/") if isinstance(base, str) else ""


def _shape(path: str) -> str:
    """A path compared loosely: parameter names dropped, no trailing slash."""
    return re.sub(r"\{[^}/]+\}", "{}", path).rstrip("/") or "/"


def documented_path(document: Mapping[str, Any], method: str, path: str) -> str | None:
    """The document's key for ``method path`` (a path relative to the app's root, or a
    template such as ``/api/sites/{id}``), whatever its slash style, parameter names and
    ``servers``/``basePath`` prefix; None when the document has no such operation."""
    paths = document.get("paths")
    if not isinstance(paths, Mapping):
        return None
    prefix, wanted = _prefix(document), _shape(path)
    for key, item in paths.items():
        if (
            isinstance(item, Mapping)
            and method.lower() in item
            and _shape(prefix + str(key)) == wanted
        ):
            return str(key)
    return None


def documented_statuses(document: Mapping[str, Any], path: str, method: str) -> tuple[int, ...]:
    """The numeric statuses one operation lists under ``responses``, in order (``default`` out)."""
    responses = _operation(document, path, method).get("responses")
    if not isinstance(responses, Mapping):
        return ()
    return tuple(int(code) for code in map(str, responses) if code.isdigit())
