"""nocrud: API test flows, each against its own PostgreSQL and app instance, in Docker."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nocrud")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
