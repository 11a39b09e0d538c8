"""Flows: what they are, how they are declared, found and selected.

A flow is a function taking a :class:`FlowContext`; it fails by raising. The
:func:`flow` decorator marks a function (it stays callable as before) and
:func:`discover` imports the flows package and every module in it, collecting
marked functions. Discovery is idempotent (marks live on the functions, not in
a global list), reports a package that fails to import with its traceback, and
refuses two flows with one name, naming both places. :func:`select` applies
``-f`` names and ``-k`` expressions.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from nocrud.client import ApiClient

FlowFunction = Callable[["FlowContext"], Any]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__nocrud_flow__"


class FlowDiscoveryError(Exception):
    """The flows could not be collected; the message says where and why."""


class SelectionError(Exception):
    """A ``-f`` or ``-k`` selection does not make sense; the message says what to change."""


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
        name: The flow's name.
        base_url: Root URL of this flow's app.
        api: HTTP client bound to this flow's app.
        log: Call with a string to add a line to the flow's captured output.
    """

    name: str
    base_url: str
    api: ApiClient
    _connect_db: Callable[[], Any]
    _new_client: Callable[..., ApiClient]
    lines: list[str] = field(default_factory=list)
    _db: Any = None
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

    def new_client(self, **kwargs: Any) -> ApiClient:
        """Another client on the same app: its own session, cookies and credentials."""
        return self._new_client(**kwargs)

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None


@overload
def flow(func: F, /) -> F: ...
@overload
def flow(
    *, name: str | None = None, tags: Iterable[str] = (), timeout: float | None = None
) -> Callable[[F], F]: ...
def flow(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    tags: Iterable[str] = (),
    timeout: float | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a flow.

    Use bare (``@flow``) or with options (``@flow(name="...", tags=["auth"], timeout=30)``).
    The function receives a :class:`FlowContext` and fails by raising.
    """

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@flow must decorate a function, not {fn!r}")
        setattr(
            fn, _MARK, {"name": name or fn.__name__, "tags": frozenset(tags), "timeout": timeout}
        )
        return fn

    return mark(func) if func is not None else mark


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


def discover(package_dir: Path) -> list[Flow]:
    """All flows in the package, in the order they are defined (module by module)."""
    found: dict[str, Flow] = {}
    seen: set[int] = set()
    for module in _import_all(package_dir):
        members = sorted(
            (obj for obj in vars(module).values() if hasattr(obj, _MARK)),
            key=lambda obj: getattr(getattr(obj, "__code__", None), "co_firstlineno", 0),
        )
        for obj in members:
            if id(obj) in seen or getattr(obj, "__module__", None) != module.__name__:
                continue  # imported into another module: count it where it is defined
            seen.add(id(obj))
            meta = getattr(obj, _MARK)
            item = Flow(
                name=meta["name"],
                func=obj,
                doc=inspect.getdoc(obj) or "",
                tags=meta["tags"],
                kind=meta.get("kind", "flow"),
                timeout=meta["timeout"],
                origin=_origin(obj),
            )
            if item.name in found:
                raise FlowDiscoveryError(
                    f"two flows are named {item.name!r}: {found[item.name].origin} and "
                    f"{item.origin}; rename one (@flow(name=...))"
                )
            found[item.name] = item
    return list(found.values())


_WORD = re.compile(r"\(|\)|[^\s()]+")


def keyword_matcher(expression: str) -> Callable[[Flow], bool]:
    """Compile a ``-k`` expression like pytest's: words match name substrings, with and/or/not.

    Raises:
        SelectionError: The expression does not parse.
    """
    tokens = _WORD.findall(expression)
    words: list[str] = []
    parts: list[str] = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            parts.append(token)
        else:
            parts.append(f"_w[{len(words)}]")
            words.append(token.lower())
    code_text = " ".join(parts)
    try:
        code = compile(code_text, "<-k>", "eval")
    except SyntaxError:
        raise SelectionError(
            f"-k {expression!r} is not a valid expression: use names joined with and/or/not, "
            "e.g. -k 'site and not delete'"
        ) from None
    if not tokens:
        raise SelectionError("-k needs an expression, e.g. -k site")

    def matches(item: Flow) -> bool:
        haystack = " ".join([item.name.lower(), *sorted(t.lower() for t in item.tags)])
        values = [w in haystack for w in words]
        return bool(eval(code, {"__builtins__": {}}, {"_w": values}))  # noqa: S307 - built from our own tokens

    return matches


def select(
    flows: Sequence[Flow], *, names: Sequence[str] = (), keyword: str | None = None
) -> list[Flow]:
    """Filter flows by exact names (``-f``) and a keyword expression (``-k``), keeping order."""
    chosen = list(flows)
    if names:
        known = {f.name for f in flows}
        unknown = [n for n in names if n not in known]
        if unknown:
            import difflib

            hints = [
                f"{n!r} (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(n, known, 1))
                else repr(n)
                for n in unknown
            ]
            raise SelectionError(
                f"no flow named {', '.join(hints)}: `nocrud list` shows the flows there are"
            )
        wanted = set(names)
        chosen = [f for f in chosen if f.name in wanted]
    if keyword:
        matcher = keyword_matcher(keyword)
        chosen = [f for f in chosen if matcher(f)]
    return chosen
