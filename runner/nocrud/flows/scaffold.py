"""Scaffolding: ``nocrud new crud`` and ``nocrud new flow`` write flow files that run.

:func:`new_crud` writes ``<resource>_crud.py`` with one :func:`~nocrud.flows.crud.crud`
declaration. With the app's OpenAPI document (saved by ``nocrud up`` in
``.nocrud/openapi.json``) the create payload holds every writable field of the
create operation's request schema, with unique values where a clash is likely
(names, UUIDs, MAC and e-mail addresses), examples elsewhere, and PUT/PATCH only
when the document has them; reference fields (``*_id``) get a TODO to build the
referenced object. An app that creates with ``PUT`` at the object's path (no ``POST``
on the collection) gets ``upsert="PUT"`` and an id chosen by the flow. The endpoint
keeps its slash style (``/sites/``), unless the document writes the path only the
other way. OpenAPI 3 and Swagger 2.0 documents are read alike (:mod:`nocrud.http.openapi`:
``definitions``, ``in: body`` parameters); a create the document lists without 201 gets
its ``create_status``, an object the document says answers 400 (and never 404) gets
``gone_status``. What the document says that the scaffold does not understand is added to
``notes``, for the command to say. :func:`new_flow` writes a free-form flow that calls
the app's health path. Both refuse to overwrite a file or to reuse a flow's name.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nocrud.errors import UsageError
from nocrud.flows.crud import collection_path
from nocrud.http.openapi import documented_statuses, request_schema
from nocrud.http.openapi import resolve as _resolve

__all__ = ["ScaffoldError", "crud_source", "flow_source", "new_crud", "new_flow"]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_NAME_LIKE = ("name", "title", "slug", "code", "username", "login", "label", "hostname")


class ScaffoldError(UsageError):
    """A file cannot be written; the message says why and what to do."""


def _identifier(text: str, what: str) -> str:
    name = text.strip().lower().replace("-", "_")
    if not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"{what} {text!r} cannot name a flow: use letters, digits and underscores, "
            "starting with a letter (e.g. site, lab_sample)"
        )
    return name


def _documented(document: Mapping[str, Any], path: str) -> str:
    """``path`` as the document writes it: the other slash style when only that is there."""
    paths = document.get("paths", {})
    other = path.rstrip("/") if path.endswith("/") else f"{path}/"
    return other if path not in paths and other in paths and other != "" else path


def _item_path(document: Mapping[str, Any], collection: str) -> str | None:
    pattern = re.compile(re.escape(collection.rstrip("/")) + r"/\{[^}/]+\}/?")
    return next((p for p in document.get("paths", {}) if pattern.fullmatch(p)), None)


def _chosen_id_code(document: Mapping[str, Any], item: str) -> str:
    """Code choosing a new object's id, from the type of the item path's parameter."""
    operations = document.get("paths", {}).get(item, {})
    parameters = [
        *operations.get("parameters", []),
        *operations.get("put", {}).get("parameters", []),
    ]
    for raw in parameters:
        parameter = _resolve(document, raw)
        if isinstance(parameter, Mapping) and parameter.get("in") == "path":
            # OpenAPI 3 types a parameter in its schema; Swagger 2.0 on the parameter itself.
            schema = _resolve(document, parameter.get("schema", parameter))
            if isinstance(schema, Mapping) and schema.get("type") == "integer":
                return "unique_int()"
    return "unique_uuid()"


def _lit(value: Any) -> str:
    """A Python literal in the project's style (double-quoted strings)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "(" + ", ".join(_lit(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


@dataclass(frozen=True)
class _Field:
    """One field of a generated payload."""

    name: str
    code: str
    comment: str = ""
    text: str | None = None  # the example, for string fields holding one
    limit: int | None = None

    @property
    def unique(self) -> bool:
        return self.code.startswith("unique(")

    def changed(self, how: str) -> str:
        """Code for another valid value of this field (``how``: a word to append)."""
        if self.unique or self.text is None:
            return self.code
        return _lit(f"{self.text} ({how})"[: self.limit or None])


def _field(resource: str, name: str, schema: Mapping[str, Any]) -> _Field:
    """How to fill one field of a request schema."""
    kind, example = schema.get("type"), schema.get("example")
    lowered = name.lower()
    if schema.get("enum"):
        return _Field(name, _lit(schema["enum"][0]))
    if kind == "string":
        code = _string_value(resource, lowered, schema)
        text = example if isinstance(example, str) and code == _lit(example) else None
        limit = schema.get("maxLength")
        return _Field(name, code, text=text, limit=limit if isinstance(limit, int) else None)
    if kind == "integer" and lowered.endswith("_id"):
        target = lowered.removesuffix("_id")
        comment = f"TODO: build the {target} first, e.g. build_{target}(ctx)['id']"
        return _Field(name, _lit(example if example is not None else 1), comment)
    defaults = {"integer": schema.get("minimum", 1), "number": 1.0, "boolean": True}
    if example is None and kind not in defaults:
        return _Field(name, "None", "TODO: a valid value")
    return _Field(name, _lit(example if example is not None else defaults[str(kind)]))


def _string_value(resource: str, lowered: str, schema: Mapping[str, Any]) -> str:
    fmt, example, limit = schema.get("format", ""), schema.get("example"), schema.get("maxLength")
    special = {"uuid": "unique_uuid()", "email": "unique_email()"}
    if fmt in special:
        return special[fmt]
    if lowered.endswith("email"):
        return "unique_email()"
    if lowered == "mac" or lowered.endswith(("_mac", "mac_address")):
        return "unique_mac()"
    if lowered in _NAME_LIKE or lowered.endswith("_name") or example is None:
        prefix = resource if lowered in _NAME_LIKE else lowered
        if isinstance(limit, int) and limit < len(prefix) + 13:
            return f"unique(length={max(1, min(12, limit))})"
        return f"unique({_lit(prefix)})"
    return _lit(example)


def _fields(resource: str, schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[_Field]:
    """Every writable property of a request schema, filled in."""
    found = []
    for name, raw in (schema.get("properties") or {}).items():
        spec = _resolve(document, raw)
        if isinstance(spec, Mapping) and not spec.get("readOnly"):
            found.append(_field(resource, str(name), spec))
    return found


def _status_lines(doc: Mapping[str, Any], create: tuple[str, str], item: str | None) -> list[str]:
    """``create_status=`` and ``gone_status=`` where the document says other than crud()'s
    defaults (201; 404 or 410 for a deleted object)."""
    lines = []
    method, path = create
    success = [s for s in documented_statuses(doc, path, method) if 200 <= s < 300]
    if success and 201 not in success:
        lines.append(
            f"    create_status={success[0]},  # what the OpenAPI document lists for "
            f"{method.upper()} {path}"
        )
    listed = documented_statuses(doc, item, "get") if item else ()
    if 400 in listed and not {404, 410} & set(listed):
        lines.append(
            f"    gone_status=400,  # GET {item} lists 400, not 404, for an object not there"
        )
    return lines


def _dict_source(fields: list[_Field], indent: str) -> str:
    lines = ["{"]
    for item in fields:
        note = f"  # {item.comment}" if item.comment else ""
        lines.append(f"{indent}    {_lit(item.name)}: {item.code},{note}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def crud_source(
    resource: str,
    endpoint: str,
    *,
    document: Mapping[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    notes: list[str] | None = None,
) -> str:
    """The text of a CRUD flow module for ``resource`` at ``endpoint``.

    Args:
        notes: Receives one sentence per thing the document says that the flow could not
            be written from (a body that is not JSON, a collection it does not list).
    """
    name = _identifier(resource, "resource")
    doc: Mapping[str, Any] = document or {}
    notes = notes if notes is not None else []
    paths = doc.get("paths", {})
    asked = collection_path(endpoint)
    collection = _documented(doc, asked)
    item = _item_path(doc, collection)
    item_ops = paths.get(item, {}) if item else {}
    # No POST on the collection but PUT on the object: the client chooses ids.
    upsert = item is not None and "put" in item_ops and "post" not in paths.get(collection, {})
    create = ("put", item) if upsert and item else ("post", collection)
    schema, unread = request_schema(doc, create[1], create[0]) if doc else ({}, "")
    if unread:
        notes.append(unread)
    fields = _fields(name, schema, doc) if schema else []
    if doc and create[1] not in paths:
        notes.append(
            f"the OpenAPI document has no {collection} (nor {_other_slash(collection)}): "
            "check --endpoint against `nocrud coverage`'s paths"
        )
    elif doc and not fields and not unread:
        notes.append(
            f"the OpenAPI document describes no fields for {create[0].upper()} {create[1]}"
        )
    fields_todo = [f.name for f in fields if f.comment == "TODO: a valid value"]
    if fields_todo:
        notes.append(
            f"no type or example in the document for {', '.join(fields_todo)}: "
            "each is None with a TODO"
        )
    if not fields:
        todo = "TODO: the fields a new object needs"
        fields = [_Field("name", f"unique({_lit(name)})", todo)]
    # An "id" in the payload is the id the flow chose; otherwise one is chosen here.
    id_code = _chosen_id_code(doc, item) if upsert and item else ""
    if any(f.name == "id" for f in fields):
        id_code = ""
    # Change unique fields first, then fields holding an example; ids and UUIDs stay.
    candidates = [f for f in fields if f.unique] + [f for f in fields if f.text is not None]
    used = {"unique"} | {
        helper
        for helper in ("unique_uuid", "unique_email", "unique_mac", "unique_int")
        if any(f"{helper}()" in code for code in [id_code, *(f.code for f in fields)])
    }
    note = f"  # as the OpenAPI document writes it (asked: {asked})" if collection != asked else ""
    lines = [
        f'"""CRUD flow for {name} at {collection} (written by `nocrud new crud`; edit freely)."""',
        "",
        "from __future__ import annotations",
        "",
        # Flow authors import from the facade (STYLE.md 14); the modules behind it may move.
        f"from nocrud import {', '.join(sorted({'crud', *used}))}",
        "",
        f"{name}_crud = crud(",
        f"    {_lit(name + '_crud')},",
        f"    {_lit(collection)},{note}",
        f"    create=lambda ctx: {_dict_source(fields, '    ')},",
    ]
    if item and item.endswith("/") != collection.endswith("/"):
        # The crud() default follows the collection's slash; this app does not.
        template = re.sub(r"\{[^}/]+\}", "{id}", item)
        lines.append(f"    item_path={_lit(template)},")
    if upsert:
        if id_code:
            lines.append(f"    id=lambda ctx: {id_code},  # the app takes ids chosen by the client")
        lines.append(f"    upsert={_lit('PUT')},  # PUT {item} creates the object")
    if candidates and (not doc or "put" in item_ops):
        first = candidates[0]
        change = f"{{{_lit(first.name)}: {first.changed('updated')}}}"
        lines.append(f"    update=lambda ctx, obj: {change},")
    if candidates and "patch" in item_ops:
        second = candidates[1] if len(candidates) > 1 else candidates[0]
        change = f"{{{_lit(second.name)}: {second.changed('patched')}}}"
        lines.append(f"    partial_update=lambda ctx, obj: {change},")
    lines += _status_lines(doc, create, item) if doc and create[1] else []
    lines += _auth_lines(auth, doc)
    lines += [f"    tags=[{_lit(name)}],", ")", ""]
    return "\n".join(lines)


def _other_slash(path: str) -> str:
    return path.rstrip("/") if path.endswith("/") else f"{path}/"


def _auth_lines(auth: tuple[str, str] | None, doc: Mapping[str, Any]) -> list[str]:
    """``auth=`` for crud(): the login the OpenAPI document declares, if it declares one."""
    from nocrud.http.logins import password_token_url

    token_url = password_token_url(doc)
    if token_url is None:
        if auth is not None:
            return [f"    auth={_lit(auth)},"]
        return ['    auth=None,  # e.g. ("user", "password") when writes need a login']
    # An OAuth2 password flow: ctx.login(form=True) posts the form to its tokenUrl.
    user, password = auth or ("user", "password")
    login = f"lambda ctx: ctx.login({_lit(user)}, {_lit(password)}, form=True)"
    declared = f"    # the document declares an OAuth2 password flow (tokenUrl {token_url})"
    if auth is not None:
        return [declared, f"    auth={login},"]
    return [f"{declared}; if writes need a login:", f"    # auth={login},", "    auth=None,"]


def flow_source(name: str, *, health_path: str = "/health") -> str:
    """The text of a free-form flow module calling ``health_path``."""
    identifier = _identifier(name, "flow name")
    return "\n".join(
        [
            f'"""{identifier} (written by `nocrud new flow`; say here what it checks)."""',
            "",
            "from __future__ import annotations",
            "",
            "from nocrud import FlowContext, flow",
            "",
            "",
            "@flow(tags=[])",
            f"def {identifier}(ctx: FlowContext) -> None:",
            '    """The app answers its health check (replace with what this flow checks)."""',
            '    # ctx.login("user", "password") first for endpoints that need a login.',
            f"    response = ctx.api.get({_lit(health_path)}, expect=200)",
            '    ctx.log(f"health: {response.status} from {ctx.base_url}")',
            "",
        ]
    )


def _write(flows_dir: Path, filename: str, flow_name: str, source: str) -> Path:
    target = flows_dir / filename
    if target.exists():
        raise ScaffoldError(f"{target} exists; not overwriting it: pick another name")
    if not (flows_dir / "__init__.py").is_file():
        raise ScaffoldError(
            f"{flows_dir} is not a flows package (no __init__.py): check flows.path in nocrud.yaml"
        )
    from nocrud.flows import FlowDiscoveryError, discover

    try:
        existing = {f.name: f.origin for f in discover(flows_dir)}
    except FlowDiscoveryError:
        existing = {}  # a broken package is reported by `nocrud list`; do not hide the file
    if flow_name in existing:
        raise ScaffoldError(
            f"a flow named {flow_name!r} exists already ({existing[flow_name]}): pick another name"
        )
    target.write_text(source)
    return target


def new_crud(
    flows_dir: Path,
    resource: str,
    endpoint: str,
    *,
    document: Mapping[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write ``<resource>_crud.py`` into the flows package; returns its path.

    ``notes`` receives what the document says that the flow could not be written from.

    Raises:
        ScaffoldError: Bad resource name, the file or the flow name exists, or the
            directory is not a flows package.
    """
    name = _identifier(resource, "resource")
    source = crud_source(name, endpoint, document=document, auth=auth, notes=notes)
    return _write(flows_dir, f"{name}_crud.py", f"{name}_crud", source)


def new_flow(flows_dir: Path, name: str, *, health_path: str = "/health") -> Path:
    """Write ``<name>.py`` with one flow into the flows package; returns its path.

    Raises:
        ScaffoldError: Bad name, the file or the flow name exists, or the directory
            is not a flows package.
    """
    identifier = _identifier(name, "flow name")
    source = flow_source(identifier, health_path=health_path)
    return _write(flows_dir, f"{identifier}.py", identifier, source)
