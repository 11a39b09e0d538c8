"""Flows: what they are, what they receive, how they are declared, found and selected.

A flow is a function taking a :class:`FlowContext` (its app's client, its own
database, more users, a log, recorded steps); it fails by raising. The :func:`flow`
decorator marks a function (it stays callable as before), optionally with
``params=`` to run it once per input; :func:`declare` marks other flow objects
such as CRUD declarations (:mod:`nocrud.flows.crud`) in the module that declares them.
:func:`discover` imports the flows package and every module in it and collects the
marks. Discovery is idempotent (marks live on the objects and their modules, not in
a global list), reports a package that fails to import with its traceback, and
refuses two flows with one name, naming both places. Selecting flows (``-f``, ``-k``,
``-m``, ``--crud``) lives in :mod:`nocrud.flows.selection`; its names are re-exported here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from nocrud.errors import UsageError
from nocrud.flows.context import FlowContext

if TYPE_CHECKING:
    pass

FlowFunction = Callable[["FlowContext"], Any]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__nocrud_flow__"
# Module global listing the flow objects (CRUD declarations) a module declared.
_DECLARED = "__nocrud_flows__"


class FlowDiscoveryError(UsageError):
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
    #: Asks for an environment that has never served another flow (``@flow(fresh=True)``).
    fresh: bool = False

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


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
    fresh: bool = False,
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
    fresh: bool = False,
) -> F | Callable[[F], F]:
    """Mark a function as a flow.

    Use bare (``@flow``) or with options (``@flow(name="...", tags=["auth"], timeout=30)``).
    The function receives a :class:`FlowContext` and fails by raising.

    With ``params``, the function takes ``(ctx, value)`` and runs once per value, each
    run its own flow named ``name[id]``. Ids come from ``ids`` (a list, or a function
    of the value), from :func:`param`, from the keys when ``params`` is a dict, from
    the value itself when it is a str, number, bool or None, else from its position.

    With ``fresh=True`` the flow never gets an environment another flow has used: under
    ``run.strategy: pool`` its pair is newly started (a reset pair keeps files the app
    wrote into its container and the server's roles and settings); every other strategy
    gives every flow a new environment anyway.

    Raises:
        ValueError: ``params`` is empty, or two values get the same id.
    """

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@flow must decorate a function, not {fn!r}")
        flow_name = name or fn.__name__
        meta: dict[str, Any] = {
            "name": flow_name,
            "tags": frozenset(tags),
            "timeout": timeout,
            "fresh": fresh,
        }
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


def _forget(package_name: str, package_dir: Path) -> None:
    """Drop the flows package and its submodules from ``sys.modules``: the next import reads
    the files again, and a removed flow (or module) is gone from the new module objects.

    Bytecode is neither read nor written while re-importing (:func:`_import_all`): a
    ``.pyc`` records its source's mtime in whole seconds and its size, so a same-size edit
    within the second of the last compile would otherwise load the older code.
    """
    root = package_dir.resolve()
    for name in [n for n in sys.modules if n == package_name or n.startswith(package_name + ".")]:
        where = getattr(sys.modules[name], "__file__", None)
        if where is None or Path(where).resolve().is_relative_to(root):
            del sys.modules[name]
    importlib.invalidate_caches()


def _import_all(package_dir: Path, *, reload: bool = False) -> list[ModuleType]:
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
    writes_bytecode, pycache_prefix = sys.dont_write_bytecode, sys.pycache_prefix
    if reload:
        _forget(package_name, package_dir)
        sys.dont_write_bytecode = True
        # A cache directory that never exists: every module compiles from its source.
        sys.pycache_prefix = str(package_dir / "__pycache__" / "nocrud-reload-none")
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
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = writes_bytecode, pycache_prefix
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


def discover(package_dir: Path, *, reload: bool = False) -> list[Flow]:
    """All flows in the package, in the order they are defined (module by module).

    With ``reload`` the package's modules are imported again from their files
    (``nocrud watch`` after an edit): changed flows run their new code, removed ones
    are gone.

    Raises:
        FlowDiscoveryError: The package does not import (with the traceback), or two
            flows share a name (naming both places).
    """
    found: dict[str, Flow] = {}
    for module in _import_all(package_dir, reload=reload):
        for obj, meta in _members(module):
            base = Flow(
                name=meta["name"],
                func=obj,
                doc=meta.get("doc") or inspect.getdoc(obj) or "",
                tags=meta["tags"],
                kind=meta.get("kind", "flow"),
                timeout=meta["timeout"],
                origin=meta.get("origin") or _origin(obj),
                fresh=bool(meta.get("fresh", False)),
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


__all__ = ["Flow", "FlowDiscoveryError", "declare", "discover", "flow", "param"]
