"""nocrud: API test flows, each against its own PostgreSQL and app instance, in Docker.

This module is the flow author's facade: everything a flow file needs imports from
here (``from nocrud import FlowContext, flow, unique``), and only these names are
the public API; the modules behind them may move. The names load on first use (a
module ``__getattr__``), so ``import nocrud`` costs nothing and ``nocrud --help``
stays fast; type checkers and IDEs see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nocrud.flows import FlowContext, flow, param
    from nocrud.flows.builders import (
        Target,
        client_of,
        create,
        fields,
        unique,
        unique_email,
        unique_int,
        unique_mac,
        unique_uuid,
    )
    from nocrud.flows.crud import crud
    from nocrud.http import (
        ANY,
        ApiClient,
        ApiKey,
        BasicAuth,
        BearerToken,
        Response,
        SessionLogin,
        UnexpectedStatus,
        bearer_login,
        oauth2_login,
    )

    __version__: str

__all__ = [
    "ANY",
    "ApiClient",
    "ApiKey",
    "BasicAuth",
    "BearerToken",
    "FlowContext",
    "Response",
    "SessionLogin",
    "Target",
    "UnexpectedStatus",
    "__version__",
    "bearer_login",
    "client_of",
    "create",
    "crud",
    "fields",
    "flow",
    "oauth2_login",
    "param",
    "unique",
    "unique_email",
    "unique_int",
    "unique_mac",
    "unique_uuid",
]

#: Where each public name lives (a package facade or the defining module).
_HOMES = {
    "FlowContext": "nocrud.flows",
    "flow": "nocrud.flows",
    "param": "nocrud.flows",
    "crud": "nocrud.flows.crud",
    **dict.fromkeys(
        (
            "Target",
            "client_of",
            "create",
            "fields",
            "unique",
            "unique_email",
            "unique_int",
            "unique_mac",
            "unique_uuid",
        ),
        "nocrud.flows.builders",
    ),
    **dict.fromkeys(
        (
            "ANY",
            "ApiClient",
            "ApiKey",
            "BasicAuth",
            "BearerToken",
            "Response",
            "SessionLogin",
            "UnexpectedStatus",
            "bearer_login",
            "oauth2_login",
        ),
        "nocrud.http",
    ),
}


def _version() -> str:
    # importlib.metadata costs ~80 ms to import: only when someone asks.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nocrud")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'nocrud' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
