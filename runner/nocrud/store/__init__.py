"""The run store: every run's history in one database, and the recorders that fill it.

``nocrud up`` records each run here (:class:`StoreRecorder`) unless ``--no-record``, or
streams it to a console (:class:`RemoteRecorder`, ``--report-to``); ``nocrud serve``
reads it. SQLite under ``.nocrud/`` by default, PostgreSQL or any SQLAlchemy URL when nocrud.yaml's
``store.url`` (or ``NOCRUD_STORE_URL``) names one; Alembic migrations ship inside the package.
The store imports only results, masking and SQLAlchemy: never Docker or the runner.
Its names are loaded when first used: ``nocrud up`` reads the recorder's names before
its flows start and SQLAlchemy (a tenth of a second) only on the recorder's own thread
(:class:`InBackground`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nocrud.store.core import (
        ACTIVE,
        ActiveRunError,
        RunFilter,
        RunStatus,
        RunStore,
        StoreError,
        default_url,
        hash_token,
    )
    from nocrud.store.recorder import (
        Fanout,
        GitInfo,
        InBackground,
        OnCancel,
        Recorder,
        Recording,
        RemoteRecorder,
        RunStart,
        StoreRecorder,
        StoreSettings,
        git_info,
        owner,
        recorder_for,
        status_for,
        store_settings,
    )


__all__ = [
    "ACTIVE",
    "ActiveRunError",
    "Fanout",
    "GitInfo",
    "InBackground",
    "OnCancel",
    "Recorder",
    "Recording",
    "RemoteRecorder",
    "RunFilter",
    "RunStart",
    "RunStatus",
    "RunStore",
    "StoreError",
    "StoreRecorder",
    "StoreSettings",
    "default_url",
    "git_info",
    "hash_token",
    "owner",
    "recorder_for",
    "status_for",
    "store_settings",
]

#: Where each name lives, loaded on first use (PEP 562).
_HOME = dict.fromkeys(
    (
        "ACTIVE",
        "ActiveRunError",
        "RunFilter",
        "RunStatus",
        "RunStore",
        "StoreError",
        "default_url",
        "hash_token",
    ),
    "core",
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"nocrud.store.{_HOME.get(name, 'recorder')}")
    value = getattr(module, name)
    globals()[name] = value
    return value
