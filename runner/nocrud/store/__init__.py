"""The run store: every run's history in one database, and the recorders that fill it.

``nocrud up`` records each run here (:class:`StoreRecorder`) unless ``--no-record``, or
streams it to a console (:class:`RemoteRecorder`, ``--report-to``); ``nocrud serve``
reads it. SQLite under ``.nocrud/`` by default, PostgreSQL or any SQLAlchemy URL when nocrud.yaml's
``store.url`` (or ``NOCRUD_STORE_URL``) names one; Alembic migrations ship inside the package.
The store imports only results, masking and SQLAlchemy: never Docker or the runner.
"""

from __future__ import annotations

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
