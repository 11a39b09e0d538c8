"""nocrud: API test flows, each against its own PostgreSQL and app instance, in Docker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str

__all__ = ["__version__"]


def _version() -> str:
    # importlib.metadata costs ~80 ms to import: only when someone asks.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nocrud")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'nocrud' has no attribute {name!r}")
