"""The bundled examples' gunicorn settings: what nocrud's pool relies on.

Both examples run gunicorn with a preloaded master (``pool_app_reload: HUP`` forks fresh
workers from it) and a ``worker_exit`` hook that skips the interpreter's shutdown of a
worker told to stop. The hook must leave a worker that failed to boot alone: its exit
code is how the master learns to stop instead of forking it again and again.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
CONFIGS = [
    REPO / "example_app" / "gunicorn.conf.py",
    REPO / "examples" / "django" / "gunicorn.conf.py",
]


class ExitedError(Exception):
    """os._exit, caught."""


@pytest.fixture(params=CONFIGS, ids=lambda path: path.parent.name)
def settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PORT", "8123")
    return runpy.run_path(str(request.param))


def _exit(code: int) -> None:
    raise ExitedError(code)


def test_preloaded_workers_on_the_port_from_the_environment(settings: dict[str, Any]) -> None:
    assert settings["preload_app"] is True
    assert settings["workers"] == 2
    assert settings["bind"] == "0.0.0.0:8123"
    assert settings["accesslog"] == "-"


def test_a_worker_told_to_stop_exits_at_once(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings["os"], "_exit", _exit)
    with pytest.raises(ExitedError) as exited:
        settings["worker_exit"](None, SimpleNamespace(booted=True, alive=False))
    assert exited.value.args == (0,)


@pytest.mark.parametrize(
    "worker",
    [SimpleNamespace(booted=False, alive=True), SimpleNamespace(booted=True, alive=True)],
    ids=["failed to boot", "still serving"],
)
def test_other_exits_keep_their_code(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch, worker: SimpleNamespace
) -> None:
    monkeypatch.setattr(settings["os"], "_exit", _exit)
    assert settings["worker_exit"](None, worker) is None
