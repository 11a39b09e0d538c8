"""Flows: what they are, what they receive, how they are declared, found and selected.

A flow is a function taking a :class:`FlowContext` (its app's client, its own
database, more users, a log, recorded steps); it fails by raising. The :func:`flow`
decorator marks a function (it stays callable as before), optionally with
``params=`` to run it once per input; :func:`declare` marks other flow objects
such as CRUD declarations (:mod:`nocrud.crud`) in the module that declares them.
:func:`discover` imports the flows package and every module in it and collects the
marks. Discovery is idempotent (marks live on the objects and their modules, not in
a global list), reports a package that fails to import with its traceback, and
refuses two flows with one name, naming both places. Selecting flows (``-f``, ``-k``,
``-m``, ``--crud``) lives in :mod:`nocrud.selection`; its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from nocrud.results import Status, StepResult
from nocrud.selection import SelectionError, keyword_matcher, select, tag_matcher

if TYPE_CHECKING:
    from nocrud.client import ApiClient

FlowFunction = Callable[["FlowContext"], Any]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__nocrud_flow__"
# Module global listing the flow objects (CRUD declarations) a module declared.
_DECLARED = "__nocrud_flows__"

#: Where :meth:`FlowContext.login` posts credentials unless told otherwise.
DEFAULT_LOGIN_PATH = "/api/auth/login"


class FlowDiscoveryError(Exception):
    """The flows could not be collected; the message says where and why."""


@dataclass(frozen=True)
class Flow:
    """One runnable flow."""

    name: str
    func: FlowFunction
    doc: str = ""
    tags: frozenset[str] = frozenset()
    kind: str = "flow"
    timeout: float | None = None
    origin: str = ""

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


@dataclass
class FlowContext:
    """What a flow receives: its own app, its own database, a log.

    Attributes:
        name: The flow's name (``name[param-id]`` for a parametrised flow).
        base_url: Root URL of this flow's app.
        api: HTTP client bound to this flow's app; anonymous until the flow logs in.
        lines: What :meth:`log` collected, in order.
        steps: The steps recorded so far (:meth:`step`, CRUD flows); they become the
            result's steps, printed as ``C✔ R✔ U✔ L✔ D✘``.
    """

    name: str
    base_url: str
    api: ApiClient
    _connect_db: Callable[[], Any]
    _new_client: Callable[..., ApiClient]
    lines: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    _db: Any = None
    _clients: list[ApiClient] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, message: str) -> None:
        """Add a line to this flow's captured output (shown when it fails, and in reports)."""
        with self._lock:
            self.lines.extend(str(message).splitlines() or [""])

    @property
    def db(self) -> Any:
        """A psycopg2 connection to this flow's own database, opened on first use (autocommit)."""
        if self._db is None:
            self._db = self._connect_db()
            self._db.autocommit = True
        return self._db

    def login(
        self,
        username: str,
        password: str,
        *,
        client: ApiClient | None = None,
        path: str = DEFAULT_LOGIN_PATH,
        token_field: str = "token",  # noqa: S107 - a field name, not a secret
    ) -> ApiClient:
        """Log a client in with a JSON bearer-token login (``POST path``).

        For other schemes set the client's auth yourself:
        ``ctx.api.auth = BasicAuth(...)`` (or ``ApiKey``, ``SessionLogin``, any
        ``requests`` auth).

        Args:
            username: The user name.
            password: The password (masked in every log line and message).
            client: The client to log in; ``ctx.api`` if not given.
            path: The login endpoint.
            token_field: Where the token is in the response (dots walk into objects).

        Returns:
            The client, now sending the token with every request.

        Raises:
            UnexpectedStatus: The login was refused (the flow is FAILED).
        """
        from nocrud.auth import bearer_login

        target = client if client is not None else self.api
        bearer_login(target, path, username=username, password=password, token_field=token_field)
        return target

    def new_client(
        self,
        name: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        login_path: str = DEFAULT_LOGIN_PATH,
        **options: Any,
    ) -> ApiClient:
        """Another client on the same app: its own session, cookies and credentials.

        ``ctx.new_client("bob", username="bob", password="...")`` is a second user,
        logged in like :meth:`login`; ``ctx.new_client(auth=BasicAuth(...))`` uses any
        other auth. Its requests go to this flow's log (prefixed with its name) and
        timings. It is closed when the flow ends.

        Args:
            name: Shown in log lines and messages; defaults to ``username``.
            username: Log in as this user (needs ``password``).
            password: The password for ``username``.
            login_path: The login endpoint for ``username``/``password``.
            **options: More :class:`~nocrud.client.ApiClient` arguments
                (``auth``, ``headers``, ``timeout``).

        Raises:
            TypeError: ``username`` without ``password`` or the other way round.
        """
        if (username is None) != (password is None):
            raise TypeError("new_client() needs both username= and password=, or neither")
        with self._lock:
            label = name or username or f"client{len(self._clients) + 1}"
        client = self._new_client(name=label, **options)
        with self._lock:
            self._clients.append(client)
        if username is not None and password is not None:
            self.login(username, password, client=client, path=login_path)
        return client

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record the ``with`` block as a named step of this flow's result.

        ``with ctx.step("login"): ...`` adds a PASSED step, or a FAILED (assertion)
        or ERROR (anything else) one with the exception's first line, and lets the
        exception through. Steps print by their initials: ``L✔ C✔ D✘``.
        """
        started = time.perf_counter()
        try:
            yield
        except AssertionError as exc:
            self.add_step(name, Status.FAILED, first_line(exc), time.perf_counter() - started)
            raise
        except Exception as exc:
            self.add_step(name, Status.ERROR, first_line(exc), time.perf_counter() - started)
            raise
        self.add_step(name, Status.PASSED, "", time.perf_counter() - started)

    def add_step(
        self, name: str, status: Status, message: str = "", duration: float = 0.0
    ) -> StepResult:
        """Record one step's outcome (what :meth:`step` and CRUD flows use)."""
        result = StepResult(name=name, status=status, message=message, duration=duration)
        with self._lock:
            self.steps.append(result)
        return result

    def close(self) -> None:
        """Close the database connection and the clients made by :meth:`new_client`."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None


def first_line(exc: BaseException) -> str:
    """An exception as one short line: its message's first line, or its type's name."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if isinstance(exc, AssertionError):
        return line or "assertion failed"
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


@dataclass(frozen=True)
class Param:
    """One input of a parametrised flow, with the id that names its result."""

    value: Any
    id: str | None = None


def param(value: Any, *, id: str | None = None) -> Param:
    """An input of ``@flow(params=[...])`` with its own id: ``param(("bob", "pw"), id="bob")``."""
    return Param(value, id)


Params = Iterable[Any] | Mapping[str, Any]
Ids = Sequence[str] | Callable[[Any], str] | None


@overload
def flow(func: F, /) -> F: ...
@overload
def flow(
    *,
    name: str | None = None,
    tags: Iterable[str] = (),
    timeout: float | None = None,
    params: Params | None = None,
    ids: Ids = None,
) -> Callable[[F], F]: ...
def flow(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    tags: Iterable[str] = (),
    timeout: float | None = None,
    params: Params | None = None,
    ids: Ids = None,
) -> F | Callable[[F], F]:
    """Mark a function as a flow.

    Use bare (``@flow``) or with options (``@flow(name="...", tags=["auth"], timeout=30)``).
    The function receives a :class:`FlowContext` and fails by raising.

    With ``params``, the function takes ``(ctx, value)`` and runs once per value, each
    run its own flow named ``name[id]``. Ids come from ``ids`` (a list, or a function
    of the value), from :func:`param`, from the keys when ``params`` is a dict, from
    the value itself when it is a str, number, bool or None, else from its position.

    Raises:
        ValueError: ``params`` is empty, or two values get the same id.
    """

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@flow must decorate a function, not {fn!r}")
        flow_name = name or fn.__name__
        meta: dict[str, Any] = {"name": flow_name, "tags": frozenset(tags), "timeout": timeout}
        if params is not None:
            meta["params"] = _param_ids(flow_name, params, ids)
        setattr(fn, _MARK, meta)
        return fn

    return mark(func) if func is not None else mark


def _param_ids(flow_name: str, params: Params, ids: Ids) -> tuple[tuple[str, Any], ...]:
    if isinstance(params, Mapping):
        pairs = [(str(key), value) for key, value in params.items()]
    else:
        items = list(params)
        if ids is not None and not callable(ids) and len(ids) != len(items):
            raise ValueError(f"flow {flow_name!r}: {len(items)} params but {len(ids)} ids")
        pairs = []
        for index, item in enumerate(items):
            value = item.value if isinstance(item, Param) else item
            if isinstance(item, Param) and item.id is not None:
                label = item.id
            elif callable(ids):
                label = str(ids(value))
            elif ids is not None:
                label = str(ids[index])
            elif value is None or isinstance(value, str | int | float | bool):
                label = str(value)
            else:
                label = str(index)
            pairs.append((label, value))
    if not pairs:
        raise ValueError(f"flow {flow_name!r}: params= is empty; give at least one value")
    labels = [label for label, _ in pairs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"flow {flow_name!r}: params share the ids {repeated}; pass ids=")
    return tuple(pairs)


def _bind(func: Callable[..., Any], value: Any) -> FlowFunction:
    def run(ctx: FlowContext) -> Any:
        return func(ctx, value)

    run.__name__ = getattr(func, "__name__", "flow")
    run.__doc__ = func.__doc__
    return run


def _origin(obj: Any) -> str:
    try:
        path = inspect.getsourcefile(obj) or "?"
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return getattr(obj, "__module__", "?")
    return f"{path}:{line}"


def _import_all(package_dir: Path) -> list[ModuleType]:
    """Import a package directory and all its submodules, with its parent on sys.path."""
    if not package_dir.is_dir():
        raise FlowDiscoveryError(
            f"flows path {package_dir} is not a directory: fix flows.path in nocrud.yaml"
        )
    if not (package_dir / "__init__.py").is_file():
        raise FlowDiscoveryError(
            f"flows path {package_dir} is not a Python package: add an __init__.py to it"
        )
    parent = str(package_dir.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    package_name = package_dir.name
    modules: list[ModuleType] = []
    try:
        package = importlib.import_module(package_name)
        package_file = getattr(package, "__file__", None)
        if package_file and Path(package_file).resolve().parent != package_dir.resolve():
            raise FlowDiscoveryError(  # noqa: TRY301 - re-raised as is by the handler below
                f"importing {package_name!r} found {package_file}, not {package_dir}: another "
                f"package of that name shadows your flows; rename the flows directory"
            )
        modules.append(package)
        for info in pkgutil.walk_packages([str(package_dir)], prefix=f"{package_name}."):
            modules.append(importlib.import_module(info.name))
    except FlowDiscoveryError:
        raise
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        raise FlowDiscoveryError(f"importing the flows in {package_dir} failed:\n{text}") from exc
    return modules


def declare(obj: Any, meta: dict[str, Any], *, depth: int = 1) -> None:
    """Mark ``obj`` as a flow declared by the module calling this, ``depth`` frames up.

    For flows that are objects rather than decorated functions (CRUD declarations):
    the mark records the declaring module and line, and the object is also listed in
    that module's globals, so discovery finds it even when it is not assigned to a name.

    Args:
        obj: A callable taking a :class:`FlowContext`.
        meta: ``name``, ``tags``, ``timeout``, ``kind`` and ``doc`` of the flow.
        depth: How many frames above the caller the declaring module's code runs.
    """
    frame = sys._getframe(depth + 1)
    where = frame.f_globals
    setattr(
        obj,
        _MARK,
        {
            "timeout": None,
            "tags": frozenset(),
            **meta,
            "module": where.get("__name__"),
            "line": frame.f_lineno,
            "origin": f"{frame.f_code.co_filename}:{frame.f_lineno}",
        },
    )
    where.setdefault(_DECLARED, []).append(obj)


def _members(module: ModuleType) -> list[tuple[Any, dict[str, Any]]]:
    """The flows a module defines (not those it imports), in the order they are defined."""
    candidates = [*vars(module).get(_DECLARED, ()), *vars(module).values()]
    found: dict[int, tuple[Any, dict[str, Any]]] = {}
    for obj in candidates:
        meta = getattr(obj, _MARK, None)
        if not isinstance(meta, dict) or id(obj) in found:
            continue
        if meta.get("module", getattr(obj, "__module__", None)) != module.__name__:
            continue  # imported into another module: count it where it is defined
        found[id(obj)] = (obj, meta)
    return sorted(found.values(), key=_line)


def _line(pair: tuple[Any, dict[str, Any]]) -> int:
    obj, meta = pair
    if isinstance(meta.get("line"), int):
        return int(meta["line"])
    code = getattr(obj, "__code__", None)
    return code.co_firstlineno if code is not None else 0


def discover(package_dir: Path) -> list[Flow]:
    """All flows in the package, in the order they are defined (module by module).

    Raises:
        FlowDiscoveryError: The package does not import (with the traceback), or two
            flows share a name (naming both places).
    """
    found: dict[str, Flow] = {}
    for module in _import_all(package_dir):
        for obj, meta in _members(module):
            base = Flow(
                name=meta["name"],
                func=obj,
                doc=meta.get("doc") or inspect.getdoc(obj) or "",
                tags=meta["tags"],
                kind=meta.get("kind", "flow"),
                timeout=meta["timeout"],
                origin=meta.get("origin") or _origin(obj),
            )
            expanded = [
                replace(base, name=f"{base.name}[{label}]", func=_bind(obj, value))
                for label, value in meta.get("params", ())
            ]
            for item in expanded or [base]:
                if item.name in found:
                    raise FlowDiscoveryError(
                        f"two flows are named {item.name!r}: {found[item.name].origin} and "
                        f"{item.origin}; rename one (@flow(name=...))"
                    )
                found[item.name] = item
    return list(found.values())


__all__ = [
    "Flow",
    "FlowContext",
    "FlowDiscoveryError",
    "SelectionError",
    "declare",
    "discover",
    "flow",
    "keyword_matcher",
    "param",
    "select",
    "tag_matcher",
]
