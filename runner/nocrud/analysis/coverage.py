"""Endpoint coverage: which of the app's OpenAPI operations the flows exercised.

``nocrud up`` leaves two files in ``.nocrud/`` next to ``nocrud.yaml``: the results
of the last run (``last-run.json``, every request each flow made) and the app's
OpenAPI document (``openapi.json``, fetched from the first flow's app before that
flow starts, by :func:`capture_openapi`). :func:`compute_coverage` maps each recorded
request onto an operation (method + path template) and says, per operation, whether
any flow called it, with which statuses and from which flows, plus the requests the
document does not describe. The same template matching gives ``nocrud perf`` its
endpoint names.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nocrud.http.openapi import (
    OPENAPI_PATHS,
    OpenApiError,
    fetch_from_app,
    load_openapi,
    parse_document,
)
from nocrud.results import RequestRecord, RunResult

__all__ = [
    "ATTEMPTS_FILE",
    "LAST_RUN_FILE",
    "OPENAPI_FILE",
    "OPENAPI_PATHS",
    "STATE_DIR",
    "CoverageReport",
    "OpenApiError",
    "Operation",
    "OperationCoverage",
    "TemplateMatcher",
    "capture_openapi",
    "compute_coverage",
    "endpoint_of",
    "find_openapi",
    "guess_template",
    "load_openapi",
    "operations",
    "parse_document",
    "state_dir",
]

#: Directory, next to nocrud.yaml, where runs leave what later commands read.
STATE_DIR = ".nocrud"
#: The results of the last ``nocrud up`` (the ``--json`` format).
LAST_RUN_FILE = "last-run.json"
#: The app's OpenAPI document as fetched during the last run.
OPENAPI_FILE = "openapi.json"
#: What the last run tried when it looked for the document, and what each path answered.
ATTEMPTS_FILE = "openapi-attempts.json"

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{[^}/]+\}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_NUMBER_OR_HEX = re.compile(r"[0-9]+|[0-9a-f]{16,}", re.IGNORECASE)


def state_dir(root: Path) -> Path:
    """The ``.nocrud`` directory of a project whose nocrud.yaml is in ``root``."""
    return root / STATE_DIR


@dataclass(frozen=True, order=True)
class Operation:
    """One OpenAPI operation: a method and a path template (``GET /api/sites/{id}``)."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every operation an OpenAPI 3 (or Swagger 2) document describes, in its order.

    Paths get the server's path prefix (``servers[0].url`` or ``basePath``), so they
    compare with the paths the client records, which are relative to the app's root.
    """
    prefix = ""
    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], Mapping):
        prefix = urlsplit(str(servers[0].get("url", ""))).path
    elif isinstance(document.get("basePath"), str):
        prefix = document["basePath"]
    prefix = prefix.rstrip("/")
    found: list[Operation] = []
    paths = document.get("paths")
    for path, item in (paths if isinstance(paths, Mapping) else {}).items():
        if not isinstance(item, Mapping):
            continue
        for method in _METHODS:
            if method in item:
                found.append(Operation(method.upper(), prefix + str(path)))
    return found


class TemplateMatcher:
    """Finds the path template a concrete path belongs to (``/api/sites/7`` -> ``{id}``).

    Literal segments win over parameters, so ``/api/sites/search`` matches a
    ``/api/sites/search`` template before ``/api/sites/{id}``.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        unique = sorted(set(templates), key=lambda t: (-_literal_count(t), t))
        self._patterns = [(t, _template_pattern(t)) for t in unique]
        self._normal = {normalise(t): t for t in unique}

    def match(self, path: str) -> str | None:
        """The template ``path`` belongs to, or None. A template matches itself."""
        if "{" in path:
            return self._normal.get(normalise(path))
        for template, pattern in self._patterns:
            if pattern.fullmatch(path):
                return template
        return None


def _literal_count(template: str) -> int:
    return sum(1 for part in template.split("/") if part and not _PARAM.search(part))


def _template_pattern(template: str) -> re.Pattern[str]:
    pieces = _PARAM.split(template)
    return re.compile("[^/]+".join(re.escape(piece) for piece in pieces))


def normalise(template: str) -> str:
    """A template with its parameter names dropped: ``/a/{site_id}`` -> ``/a/{}``."""
    return _PARAM.sub("{}", template.rstrip("/") or "/")


def guess_template(path: str) -> str:
    """A template for a path when there is no document: ids and UUIDs become ``{id}``."""
    parts = [
        "{id}" if _UUID.fullmatch(part) or _NUMBER_OR_HEX.fullmatch(part) else part
        for part in path.split("/")
    ]
    return "/".join(parts)


def endpoint_of(record: RequestRecord, matcher: TemplateMatcher | None) -> str:
    """The endpoint a request counts for: ``METHOD template``.

    The client's ``endpoint=`` (already a template) wins; else the OpenAPI template
    the path matches; else :func:`guess_template`.
    """
    path = record.path
    if matcher is not None and (template := matcher.match(path)) is not None:
        return f"{record.method} {template}"
    return f"{record.method} {path if '{' in path else guess_template(path)}"


@dataclass(frozen=True)
class OperationCoverage:
    """How one operation was exercised."""

    operation: Operation
    statuses: tuple[int, ...] = ()
    flows: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        """Whether some flow called it and got an answer other than a server error.

        An operation that only ever answered 5xx was reached but never worked, so it
        counts as not covered (the statuses still show that it was called).
        """
        return any(status < 500 for status in self.statuses)


@dataclass(frozen=True)
class CoverageReport:
    """Coverage of a document's operations by one run's requests.

    Attributes:
        operations: Every documented operation, in the document's order.
        undocumented: Endpoints called that the document does not describe, with
            their statuses.
    """

    operations: tuple[OperationCoverage, ...]
    undocumented: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def covered(self) -> int:
        """How many operations some flow called with an answer other than 5xx."""
        return sum(1 for op in self.operations if op.covered)

    @property
    def share(self) -> float:
        """The covered fraction, 0.0-1.0 (1.0 for a document without operations)."""
        return self.covered / len(self.operations) if self.operations else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``nocrud coverage --json``)."""
        return {
            "covered": self.covered,
            "total": len(self.operations),
            "share": round(self.share, 4),
            "operations": [
                {
                    "method": op.operation.method,
                    "path": op.operation.path,
                    "covered": op.covered,
                    "statuses": list(op.statuses),
                    "flows": list(op.flows),
                }
                for op in self.operations
            ],
            "undocumented": [
                {"endpoint": endpoint, "statuses": list(statuses)}
                for endpoint, statuses in self.undocumented
            ],
        }


def compute_coverage(document: Mapping[str, Any], run: RunResult) -> CoverageReport:
    """Which of ``document``'s operations the flows of ``run`` exercised, and how."""
    ops = operations(document)
    matcher = TemplateMatcher(op.path for op in ops)
    statuses: dict[str, set[int]] = {}
    callers: dict[str, set[str]] = {}
    for flow in run.flows:
        for record in flow.requests:
            endpoint = endpoint_of(record, matcher)
            statuses.setdefault(endpoint, set()).add(record.status)
            callers.setdefault(endpoint, set()).add(flow.name)
    documented = {str(op) for op in ops}
    rows = tuple(
        OperationCoverage(
            op,
            tuple(sorted(statuses.get(str(op), ()))),
            tuple(sorted(callers.get(str(op), ()))),
        )
        for op in ops
    )
    extra = tuple(
        (endpoint, tuple(sorted(codes)))
        for endpoint, codes in sorted(statuses.items())
        if endpoint not in documented
    )
    return CoverageReport(rows, extra)


def capture_openapi(
    base_url: str,
    directory: Path,
    where: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Save the app's OpenAPI document to ``directory/openapi.json`` (best effort).

    The executor calls it once per run, on the first environment that comes up. It
    tries ``where`` (``app.openapi``, when that is a path on the app) or else the
    usual :data:`OPENAPI_PATHS`, with ``headers`` (``app.headers``), and records what
    each answered in ``directory/openapi-attempts.json``, so ``nocrud coverage`` can say
    why there is no document. An app without a document leaves the previous document
    alone. The requests are not recorded, so they cover nothing.

    Returns:
        The document saved, or None.
    """
    if where is not None and not where.startswith("/"):
        return None  # a file or URL: `nocrud coverage` reads it itself
    document, tried = fetch_from_app(base_url, where, headers=headers)
    found = tried[-1]["path"] if document is not None else None
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        if document is not None:
            (directory / OPENAPI_FILE).write_text(json.dumps(document, indent=1))
        record = {"base_url": base_url, "tried": tried, "found": found}
        (directory / ATTEMPTS_FILE).write_text(json.dumps(record, indent=1))
    return document


def find_openapi(root: Path, given: str | None, configured: str | None) -> dict[str, Any]:
    """The OpenAPI document ``nocrud coverage`` works with, or why there is none.

    In order: ``--openapi`` (``given``); ``app.openapi`` when it is a file (relative to
    ``root``) or a URL; the document the last run saved. Without one, the error says
    which paths the last run tried on the app and what each answered.

    Raises:
        OpenApiError: No document; the message says what was tried and what to do.
    """
    if given is not None:
        return load_openapi(given)
    if configured is not None and not configured.startswith("/"):
        is_url = configured.startswith(("http://", "https://"))
        return load_openapi(configured if is_url else root / configured)
    saved = state_dir(root) / OPENAPI_FILE
    if saved.is_file():
        return load_openapi(saved)
    raise OpenApiError(_why_no_document(root, configured))


def _why_no_document(root: Path, configured: str | None) -> str:
    advice = (
        "point nocrud at the document: `nocrud coverage --openapi PATH_OR_URL`, or in "
        "nocrud.yaml `app.openapi: /path/the/app/serves` (or a file, or a URL) and run "
        "`nocrud up` again"
    )
    try:
        record = json.loads((state_dir(root) / ATTEMPTS_FILE).read_text())
        tried = [(str(t["path"]), str(t["answer"])) for t in record["tried"]]
    except (OSError, ValueError, KeyError, TypeError):
        if not (state_dir(root) / LAST_RUN_FILE).is_file():
            return (
                "no OpenAPI document yet: run `nocrud up` first (it fetches the app's "
                f"document), or {advice}"
            )
        return f"the last run saved no OpenAPI document: {advice}"
    width = max(len(path) for path, _ in tried) if tried else 0
    lines = [f"  GET {path.ljust(width)}  {answer}" for path, answer in tried]
    origin = "app.openapi" if configured else "the usual places"
    return "\n".join(
        [
            f"the app served no OpenAPI document during the last `nocrud up`; "
            f"tried {origin} on its first environment:",
            *lines,
            advice,
        ]
    )
