"""Declared CRUD flows: one :func:`crud` declaration, five reported steps.

``site_crud = crud("site_crud", "/api/sites", create={...}, update={...})`` in a flows
module declares a flow of kind ``crud`` that discovery finds like a decorated
function. Run, it performs and records, each as a step of the flow's result:

- **create**: log in (``auth=``), build the payload (builders may create
  prerequisites), ``POST`` it, expect ``create_status`` (unset: 201, or the 2xx the
  app's OpenAPI document lists for the create when it lists no 201, as FastAPI's 200)
  and an id: from the JSON answer, the ``Location`` header, or the flow itself
  (``id=``, or an ``id_field`` in the payload, sent as ``send_id_as`` when the app
  takes it under another name); with ``upsert=`` the payload goes to the object's own
  path instead;
- **read**: ``GET`` the object and compare every field that was sent;
- **update**: ``PUT`` the create payload merged with ``update`` and read it back,
  then ``PATCH`` ``partial_update`` and read back (patched fields changed, the
  others did not);
- **list**: find the object in the collection, following pagination;
- **delete**: ``DELETE`` it (200/202/204), then ``GET`` must answer 404 or 410
  (``gone_status=`` for an app that answers otherwise, e.g. 400).

A step that fails does not hide the others: read failing still lets update, list
and delete run; only a failed create skips the rest, with the reason. Messages name
the field that differs. The flow is FAILED when any step failed (ERROR when a step
hit something other than an assertion, e.g. the app went away).

Paths keep the endpoint's slash style: ``/sites/`` gives ``/sites/{id}/`` (Django REST
framework's default), ``/sites`` gives ``/sites/{id}``.
"""

from __future__ import annotations

import reprlib
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from nocrud.errors import one_line
from nocrud.flows.context import FlowContext
from nocrud.flows.discovery import declare
from nocrud.results import Status

if TYPE_CHECKING:  # the HTTP client (and requests) load when a flow runs, not when listed
    import requests.auth

    from nocrud.http.client import ApiClient, Response

__all__ = ["CrudFailed", "CrudFlow", "CrudSpec", "collection_path", "crud", "differences"]

#: A payload, or a function of the flow's context returning one (for builders).
Payload = Mapping[str, Any] | Callable[[FlowContext], Mapping[str, Any]]
#: A change, or a function of the context and the created object returning one.
Change = Mapping[str, Any] | Callable[[FlowContext, Mapping[str, Any]], Mapping[str, Any]]
#: An id the flow chooses, or a function of the context returning one.
ChosenId = Any | Callable[[FlowContext], Any]
#: How the flow authenticates: ``(username, password)`` for :meth:`FlowContext.login`,
#: a ``requests`` auth object set on ``ctx.api``, or a function of the context (it may
#: return the client to use).
AuthSpec: TypeAlias = (
    "tuple[str, str] | requests.auth.AuthBase | Callable[[FlowContext], Any] | None"
)

#: Pages the list step follows before giving up (a pagination loop is a bug too).
MAX_PAGES = 200
#: The methods ``upsert=`` takes: the one that creates at the object's own path.
UPSERT_METHODS = ("PUT", "POST")

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80


class CrudFailed(AssertionError):  # noqa: N818 - reads as what happened, like AssertionError
    """One or more steps of a CRUD flow failed; the message lists them."""


@dataclass(frozen=True)
class CrudSpec:
    """What a :func:`crud` declaration says; see :func:`crud` for each field."""

    name: str
    endpoint: str
    create: Payload
    update: Change | None = None
    partial_update: Change | None = None
    id_field: str = "id"
    item_path: str | None = None
    list_path: str | None = None
    list_params: Mapping[str, Any] = field(default_factory=dict)
    items_key: str = "items"
    auth: AuthSpec = None
    ignore: frozenset[str] = frozenset()
    #: None: 201, or what the app's OpenAPI document lists for the create (see _CrudRun).
    create_status: int | tuple[int, ...] | None = None
    delete_status: Collection[int] = (200, 202, 204)
    gone_status: Collection[int] = (404, 410)
    chosen_id: ChosenId = None
    upsert: str | None = None
    send_id_as: str | None = None

    @property
    def sent_id_field(self) -> str:
        """Where the payload carries an id the flow chose (``send_id_as``, else ``id_field``)."""
        return self.send_id_as or self.id_field

    @property
    def collection(self) -> str:
        """The path of the collection, slash style kept (``/api/sites``, ``/sites/``)."""
        return collection_path(self.endpoint)

    @property
    def item_template(self) -> str:
        """The path template of one object (``/api/sites/{id}``, ``/sites/{id}/``)."""
        if self.item_path:
            return self.item_path
        if self.collection.endswith("/"):
            return f"{self.collection}{{id}}/"
        return f"{self.collection}/{{id}}"

    @property
    def list_template(self) -> str:
        """The path the list step starts from."""
        return self.list_path or self.collection


class CrudFlow:
    """A declared CRUD flow: call it with a :class:`FlowContext` to run its steps.

    Attributes:
        spec: The declaration.
    """

    def __init__(self, spec: CrudSpec, doc: str) -> None:
        self.spec = spec
        self.__doc__ = doc
        self.__name__ = spec.name

    def __call__(self, ctx: FlowContext) -> None:
        _CrudRun(self.spec, ctx).run()

    def __repr__(self) -> str:
        return f"<CrudFlow {self.spec.name} {self.spec.collection}>"


def crud(
    name: str,
    endpoint: str,
    *,
    create: Payload,
    update: Change | None = None,
    partial_update: Change | None = None,
    id_field: str = "id",
    item_path: str | None = None,
    list_path: str | None = None,
    list_params: Mapping[str, Any] | None = None,
    items_key: str = "items",
    auth: AuthSpec = None,
    ignore: Collection[str] = (),
    tags: Collection[str] = (),
    doc: str | None = None,
    timeout: float | None = None,
    create_status: int | Collection[int] | None = None,
    delete_status: Collection[int] = (200, 202, 204),
    gone_status: int | Collection[int] = (404, 410),
    id: ChosenId = None,
    upsert: str | None = None,
    send_id_as: str | None = None,
) -> CrudFlow:
    """Declare a CRUD flow in a flows module; discovery finds it as kind ``crud``.

    Args:
        name: The flow's name.
        endpoint: The collection path (``/api/sites``); objects live at
            ``<endpoint>/{id}``. A trailing slash is kept: ``/sites/`` gives
            ``/sites/{id}/``.
        create: The POST body, or ``lambda ctx: {...}`` building it (builders may
            create prerequisites there). Every field sent is compared on read.
        update: Fields to change with PUT; the body sent is the create payload with
            these on top. A function gets ``(ctx, created_object)``. ``None``: no PUT.
        partial_update: Fields to PATCH, or ``(ctx, obj) -> fields``. ``None``: no PATCH.
        id_field: Where the id is in the created object and in listed ones (dots
            walk into objects); the ``Location`` header is used when it is missing.
            When the create payload holds this field, the flow chose the id and it is
            used.
        item_path: Template of an object's path when not ``<endpoint>/{id}``.
        list_path: Where to list when not ``endpoint``.
        list_params: Query parameters of the first list request (``{"limit": 500}``).
        items_key: Where the items are in a list response that is an object (dots
            walk into objects); a response that is a JSON array is the items. Left at
            ``items``, ``results`` and ``data`` are tried too.
        auth: ``("user", "password")`` to log in with :meth:`FlowContext.login`, a
            ``requests`` auth object for ``ctx.api``, or ``lambda ctx: ...``.
        ignore: Fields the server may legitimately change (normalised values).
        tags: Tags for ``-m``.
        doc: First line shown by ``nocrud list``; generated if not given.
        timeout: Per-flow timeout in seconds.
        create_status: The status (or statuses) create must answer. Unset: 201, or,
            when the app's OpenAPI document lists no 201 for the create, the 2xx it
            lists (FastAPI's default is 200); a failure says which it expected and why.
        delete_status: The statuses delete may answer.
        gone_status: What ``GET`` answers after the delete (the app's own not-found,
            e.g. 400).
        id: An id the flow chooses, or ``lambda ctx: unique_uuid()`` choosing one
            per run. Create sends it as ``send_id_as`` (else ``id_field``) in the
            payload (unless the payload has that field), or in the path with ``upsert=``.
        send_id_as: The payload field that carries a chosen id when the app takes it
            under another name than it answers it (``"site_id"`` sent, ``"id"``
            answered: ``send_id_as="site_id"``). Read and list then check ``id_field``
            against the chosen id instead of comparing this field.
        upsert: ``"PUT"`` or ``"POST"``: create by sending the payload with this
            method to the object's own path (``item_path``), for apps where that
            creates. The flow must choose the id (``id=`` or ``id_field`` in the
            payload).

    Returns:
        The flow; assign it to a module-level name (discovery also finds it if not).

    Raises:
        ValueError: ``upsert`` is not a method that can create at the object's
            path, or the flow can never know the id it would create at.
    """
    method = upsert.upper() if upsert is not None else None
    if method is not None and method not in UPSERT_METHODS:
        raise ValueError(
            f"crud({name!r}): upsert={upsert!r}: the method that creates an object at its "
            f"own path is 'PUT' or 'POST'; leave upsert out to POST to the collection"
        )
    sent_field = send_id_as or id_field
    if method and id is None and isinstance(create, Mapping) and _dig(create, sent_field) is None:
        raise ValueError(
            f"crud({name!r}): upsert={upsert!r} creates at the object's own path, so the flow "
            f"chooses the id: pass id=lambda ctx: unique_uuid() (or a value), or put "
            f"{sent_field!r} in the create payload"
        )
    spec = CrudSpec(
        name=name,
        endpoint=endpoint,
        create=create,
        update=update,
        partial_update=partial_update,
        id_field=id_field,
        item_path=item_path,
        list_path=list_path,
        list_params=dict(list_params or {}),
        items_key=items_key,
        auth=auth,
        ignore=frozenset(ignore),
        create_status=(
            create_status
            if create_status is None or isinstance(create_status, int)
            else tuple(create_status)
        ),
        delete_status=tuple(delete_status),
        gone_status=(gone_status,) if isinstance(gone_status, int) else tuple(gone_status),
        chosen_id=id,
        upsert=method,
        send_id_as=send_id_as,
    )
    text = doc or f"Create, read, update, list and delete at {spec.collection}."
    flow_object = CrudFlow(spec, text)
    declare(
        flow_object,
        {"name": name, "tags": frozenset(tags), "timeout": timeout, "kind": "crud", "doc": text},
    )
    return flow_object


def differences(
    sent: Mapping[str, Any],
    got: Any,
    *,
    ignore: Collection[str] = (),
    prefix: str = "",
    label: str = "sent",
) -> list[str]:
    """How ``got`` (a response object) disagrees with the fields that were ``sent``.

    Nested objects are compared field by field (``address.city``); ``True`` is not
    ``1``. Fields in ``ignore`` are skipped. ``label`` names where the expected values
    come from in the lines (``field 'name': sent 'a', got 'b'``).

    Returns:
        One line per field that is missing or differs, naming it; empty when all agree.
    """
    if not isinstance(got, Mapping):
        return [f"expected a JSON object, got {_short.repr(got)}"]
    problems: list[str] = []
    for key, value in sent.items():
        path = f"{prefix}{key}"
        if key in ignore or path in ignore:
            continue
        if key not in got:
            problems.append(f"field {path!r} is missing ({label} {_short.repr(value)})")
        elif isinstance(value, Mapping) and isinstance(got[key], Mapping):
            problems.extend(
                differences(value, got[key], ignore=ignore, prefix=f"{path}.", label=label)
            )
        elif not _same(value, got[key]):
            problems.append(
                f"field {path!r}: {label} {_short.repr(value)}, got {_short.repr(got[key])}"
            )
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _same_id(a: Any, b: Any) -> bool:
    # An id read from a Location header is text; the API's objects may hold a number.
    return a is not None and str(a) == str(b)


def _dig(value: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _with_field(payload: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``payload`` with ``value`` at ``dotted`` (objects made on the way)."""
    head, _, rest = dotted.partition(".")
    copy = dict(payload)
    if rest:
        inner = copy.get(head)
        copy[head] = _with_field(inner if isinstance(inner, Mapping) else {}, rest, value)
    else:
        copy[head] = value
    return copy


def collection_path(endpoint: str) -> str:
    """``endpoint`` with one leading slash, and a trailing one only if it had one.

    ``"api/sites"`` gives ``/api/sites``, ``"/sites/"`` stays ``/sites/``: apps built
    on Django REST framework answer 404 without the slash, others 404 with it.
    """
    inner = endpoint.strip("/")
    return f"/{inner}/" if inner and endpoint.endswith("/") else f"/{inner}"


class _CrudRun:
    """One run of a CRUD flow against one context."""

    def __init__(self, spec: CrudSpec, ctx: FlowContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.api: ApiClient = ctx.api
        self.sent: dict[str, Any] = {}
        self.object_id: Any = None
        self.created: Mapping[str, Any] = {}
        self.current: Mapping[str, Any] = {}  # the object as last read
        self.errors: list[BaseException] = []

    # -- driver ------------------------------------------------------------------

    def run(self) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [("read", self.read)]
        if self.spec.update is not None or self.spec.partial_update is not None:
            steps.append(("update", self.update))
        steps += [("list", self.find_in_list), ("delete", self.delete)]
        if self._step("create", self.create):
            for name, action in steps:
                self._step(name, action)
        else:
            for name, _ in steps:
                self.ctx.add_step(name, Status.SKIPPED, "not run: create failed")
        if self.errors:
            raise self.errors[0]
        failed = [s for s in self.ctx.steps if s.status is Status.FAILED]
        if failed:
            raise CrudFailed("\n".join(f"{s.name}: {s.message}" for s in failed))

    def _step(self, name: str, action: Callable[[], None]) -> bool:
        started = time.perf_counter()
        try:
            action()
        except AssertionError as exc:
            status, message = Status.FAILED, str(exc).strip() or "assertion failed"
        except Exception as exc:  # noqa: BLE001 - kept, re-raised after the other steps ran
            self.errors.append(exc)
            status, message = Status.ERROR, one_line(exc)
        else:
            status, message = Status.PASSED, ""
        self.ctx.add_step(name, status, message, time.perf_counter() - started)
        self.ctx.log(f"step {name}: {status.value}")  # ties the request lines to the steps
        return status is Status.PASSED

    # -- steps -------------------------------------------------------------------

    def create(self) -> None:
        self.api = self._authenticate()
        spec = self.spec
        body = spec.create(self.ctx) if callable(spec.create) else spec.create
        self.sent = dict(body)
        chosen = self._choose_id()
        self.current = self.sent
        method, path, endpoint = "POST", spec.collection, spec.collection
        if spec.upsert:
            if chosen is None:
                raise AssertionError(
                    f"upsert={spec.upsert!r} creates at {spec.item_template}, but the flow chose "
                    f"no id: pass id=lambda ctx: unique_uuid() (or a value), or put "
                    f"{spec.id_field!r} in the create payload"
                )
            method, endpoint = spec.upsert, spec.item_template
            path = spec.item_template.replace("{id}", str(chosen))
        from nocrud.http.client import ANY

        expect = ANY if spec.create_status is None else spec.create_status
        response = self.api.request(method, path, json=self.sent, expect=expect, endpoint=endpoint)
        if spec.create_status is None:
            self._check_create_status(response, method, endpoint)
        answer = _json_or_none(response)
        self.object_id = self._created_id(chosen, answer, response, f"{method} {path}")
        if isinstance(answer, Mapping):
            self.created = answer
        else:  # what update functions get when create answered no JSON object
            self.created = _with_field(self.sent, spec.id_field, self.object_id)

    def _check_create_status(self, response: Response, method: str, endpoint: str) -> None:
        """Create's status when the flow did not say: 201, or the 2xx the document lists."""
        from nocrud.http.openapi import documented_path, documented_statuses
        from nocrud.http.responses import UnexpectedStatus

        status = response.status
        if status == 201:
            return
        if not 200 <= status < 300:  # an error: what the document says changes nothing
            raise UnexpectedStatus(response, "201, crud()'s default for a create")
        document = self.ctx.openapi()
        key = documented_path(document, method, endpoint) if document else None
        listed = documented_statuses(document, key, method) if document and key else ()
        success = tuple(s for s in listed if 200 <= s < 300)
        if success and 201 not in success:
            if status in success:
                self.ctx.log(
                    f"create answered {status}: the app's OpenAPI document lists "
                    f"{' or '.join(map(str, success))} for {method} {key}, not 201"
                )
                return
            expected = (
                f"{' or '.join(map(str, success))}: what the app's OpenAPI document lists "
                f"for {method} {key}"
            )
        elif document is None:
            expected = "201: crud()'s default for a create; the app has no OpenAPI document"
        elif key is None:
            expected = f"201: crud()'s default; the OpenAPI document has no {method} {endpoint}"
        elif 201 in success:
            expected = (
                f"201: crud()'s default, and the OpenAPI document lists it for {method} {key}"
            )
        else:
            expected = (
                f"201: crud()'s default; the OpenAPI document lists no 2xx for {method} {key}"
            )
        expected += f"; if {status} is right, pass create_status={status}"
        raise UnexpectedStatus(response, expected)

    def read(self) -> None:
        got = self._get()
        self._compare(self._checked(self.sent), got, f"GET {self._item()} after create")

    def update(self) -> None:
        spec, problems = self.spec, []
        expected = dict(self.sent)
        before: Any = None
        if spec.update is not None:
            change = self._change(spec.update)
            expected.update(change)
            try:
                self.api.put(self._item(), json=expected, endpoint=spec.item_template)
                before = self._get()
                where = f"after PUT {self._item()}"
                problems += self._differences(self._checked(expected), before, where)
            except AssertionError as exc:
                problems.append(str(exc).strip())
        if spec.partial_update is not None:
            patch = self._change(spec.partial_update)
            try:
                if before is None:
                    before = self._get()
                self.api.patch(self._item(), json=patch, endpoint=spec.item_template)
                after = self._get()
                where = f"after PATCH {self._item()}"
                problems += self._differences(patch, after, where)
                untouched = {
                    k: before[k] for k in self._checked(expected) if k not in patch and k in before
                }
                problems += self._differences(untouched, after, where, label="not patched, was")
            except AssertionError as exc:
                problems.append(str(exc).strip())
        if problems:
            raise AssertionError("\n".join(problems))

    def find_in_list(self) -> None:
        spec = self.spec
        path: str | None = spec.list_template
        params: Mapping[str, Any] | None = spec.list_params or None
        pages = seen = 0
        while path is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise AssertionError(
                    f"GET {spec.list_template}: still paging after {MAX_PAGES} pages "
                    f"({seen} items); a pagination loop?"
                )
            response = self.api.get(path, params=params, endpoint=spec.list_template)
            items = self._items(response)
            seen += len(items)
            for item in items:
                if isinstance(item, Mapping) and _same_id(
                    _dig(item, spec.id_field), self.object_id
                ):
                    self._compare_listed(item)
                    return
            path, params = _next_page(response, items, path, params)
        raise AssertionError(
            f"GET {spec.list_template} does not list {spec.id_field}={self.object_id!r} "
            f"({seen} items on {pages} page{'s' if pages != 1 else ''})"
        )

    def delete(self) -> None:
        spec, item = self.spec, self._item()
        self.api.delete(item, expect=spec.delete_status, endpoint=spec.item_template)
        from nocrud.http.client import ANY

        response = self.api.get(item, expect=ANY, endpoint=spec.item_template)
        if response.status not in spec.gone_status:
            gone = " or ".join(map(str, spec.gone_status))
            hint = (
                f"; if the app answers {response.status} for an object it deleted, pass "
                f"gone_status={response.status}"
                if 400 <= response.status < 500
                else ""
            )
            raise AssertionError(
                f"after DELETE {item}, GET {item} -> {response.status}: still there "
                f"(expected {gone}){hint}"
            )

    # -- helpers -----------------------------------------------------------------

    def _authenticate(self) -> ApiClient:
        import requests.auth

        from nocrud.http.client import ApiClient

        auth, ctx = self.spec.auth, self.ctx
        if auth is None:
            return ctx.api
        if isinstance(auth, tuple):
            username, password = auth
            return ctx.login(username, password)
        if isinstance(auth, requests.auth.AuthBase):
            ctx.api.auth = auth
            return ctx.api
        chosen = auth(ctx)
        return chosen if isinstance(chosen, ApiClient) else ctx.api

    def _choose_id(self) -> Any:
        """The id the flow chose (``id=``, else ``id_field`` in the payload), or ``None``."""
        spec, field_name = self.spec, self.spec.sent_id_field
        chosen = spec.chosen_id(self.ctx) if callable(spec.chosen_id) else spec.chosen_id
        if chosen is None:
            return _dig(self.sent, field_name)
        if _dig(self.sent, field_name) is None and not spec.upsert:
            # Posted to the collection, the payload is the only way the id reaches the app.
            self.sent = _with_field(self.sent, field_name, chosen)
        return chosen

    def _checked(self, sent: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``sent`` the object must show: a ``send_id_as`` field is answered
        as ``id_field`` (checked against the chosen id at create), so it is left out."""
        spec = self.spec
        if spec.send_id_as is None or spec.send_id_as == spec.id_field:
            return dict(sent)
        return {k: v for k, v in sent.items() if k != spec.send_id_as.split(".")[0]}

    def _created_id(self, chosen: Any, answer: Any, response: Response, request: str) -> Any:
        """The new object's id: chosen by the flow, else in the answer, else in Location."""
        field_name = self.spec.id_field
        answered = _dig(answer, field_name)
        if chosen is not None and answered is not None and not _same_id(chosen, answered):
            raise AssertionError(
                f"{request} -> {response.status}: the flow chose {field_name}={chosen!r}, "
                f"the answer says {answered!r}"
            )
        for found in (chosen, answered, _id_from_location(response)):
            if found is not None:
                return found
        raise AssertionError(
            f"{request} -> {response.status} gave no id: {_no_id(answer, response, field_name)}, "
            f"no Location header, and the flow chose none. Pass id_field= to where the answer's "
            f"JSON holds the id, or let the flow choose it: id=lambda ctx: unique_uuid() (sent "
            f"as {self.spec.sent_id_field!r}; with upsert='PUT' when the app takes the id in "
            "the path)"
        )

    def _change(self, change: Change) -> dict[str, Any]:
        return dict(change(self.ctx, self.created) if callable(change) else change)

    def _item(self) -> str:
        return self.spec.item_template.replace("{id}", str(self.object_id))

    def _get(self) -> Any:
        data = self.api.get(self._item(), expect=200, endpoint=self.spec.item_template).data
        if isinstance(data, Mapping):
            self.current = data
        return data

    def _compare_listed(self, item: Mapping[str, Any]) -> None:
        # The list must agree with the object as last read, on the fields both show.
        shown = {
            k: self.current[k] for k in self._checked(self.sent) if k in item and k in self.current
        }
        self._compare(shown, item, f"GET {self.spec.list_template}", label="read")

    def _differences(
        self, sent: Mapping[str, Any], got: Any, where: str, *, label: str = "sent"
    ) -> list[str]:
        lines = differences(sent, got, ignore=self.spec.ignore, label=label)
        return [f"{where}: {line}" for line in lines]

    def _compare(
        self, sent: Mapping[str, Any], got: Any, where: str, *, label: str = "sent"
    ) -> None:
        problems = self._differences(sent, got, where, label=label)
        if problems:
            raise AssertionError("\n".join(problems))

    def _items(self, response: Response) -> list[Any]:
        data = response.data
        items = data if isinstance(data, list) else _dig(data, self.spec.items_key)
        if items is None and self.spec.items_key == "items" and isinstance(data, Mapping):
            # Left at its default: the other common envelopes, e.g. Django REST framework's
            # {"count", "next", "previous", "results"}, so a scaffolded flow needs no option.
            items = next(
                (data[k] for k in _COMMON_ITEMS_KEYS if isinstance(data.get(k), list)), None
            )
        if not isinstance(items, list):
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise AssertionError(  # noqa: TRY004 - the app's answer is wrong: FAILED, not ERROR
                f"GET {self.spec.list_template}: no list of items at {self.spec.items_key!r} "
                f"(keys: {keys}); pass items_key="
            )
        return items


#: Where list answers commonly keep their items when ``items_key`` is left at ``items``.
_COMMON_ITEMS_KEYS = ("results", "data")


def _json_or_none(response: Response) -> Any:
    """The answer's JSON, or ``None`` when it is empty or not JSON (``201 Created`` text)."""
    from nocrud.http.client import NotJSONError

    if not response.content:
        return None
    try:
        return response.data
    except NotJSONError:
        return None


def _no_id(answer: Any, response: Response, id_field: str) -> str:
    """Why the create answer holds no id, for the FAILED message."""
    if isinstance(answer, Mapping):
        return f"no {id_field!r} in the JSON answer (keys: {sorted(answer)})"
    if answer is not None:
        return f"the JSON answer is {type(answer).__name__}, not an object"
    if not response.content:
        return "the answer is empty"
    kind = response.headers.get("Content-Type", "no Content-Type")
    return f"the answer is not JSON ({kind}: {_short.repr(response.text)})"


def _id_from_location(response: Response) -> str | None:
    location = response.headers.get("Location")
    if not location:
        return None
    segment = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def _relative(url: str) -> str:
    """A next-page link as a path: apps behind Docker often link with their inner host."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _next_page(
    response: Response, items: list[Any], path: str, params: Mapping[str, Any] | None
) -> tuple[str | None, Mapping[str, Any] | None]:
    """Where the next page is: a Link header, a ``next`` link, offset/total or page/pages."""
    link = response.raw.links.get("next", {}).get("url")
    data = response.data
    if not link and isinstance(data, Mapping):
        for key in ("next", "links.next", "_links.next.href", "next_url"):
            if isinstance(_dig(data, key), str) and _dig(data, key):
                link = _dig(data, key)
                break
    if link:
        return _relative(link), None
    if not items or not isinstance(data, Mapping):
        return None, None
    query = dict(params or {})
    total = data.get("total", data.get("count"))
    if isinstance(total, int) and isinstance(data.get("offset"), int):
        offset = data["offset"] + len(items)
        if offset >= total:
            return None, None
        query["offset"] = offset
        if isinstance(data.get("limit"), int):
            query["limit"] = data["limit"]
        return path, query
    pages = data.get("pages", data.get("total_pages"))
    if isinstance(data.get("page"), int) and isinstance(pages, int) and data["page"] < pages:
        query["page"] = data["page"] + 1
        return path, query
    return None, None
