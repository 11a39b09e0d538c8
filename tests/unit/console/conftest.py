"""A console over a throwaway project whose "nocrud" is a small fake: no Docker, no real run.

The launcher starts ``settings.command -c CONFIG up ...`` as a process; here that command
is :data:`FAKE`, which prints like ``nocrud up``, sleeps when told to (so a run stays
active), turns SIGTERM into exit 130 like the workflow, and answers ``clean``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from nocrud.console.app import create_app
from nocrud.console.settings import ConsoleSettings
from nocrud.store import RunStore

FAKE = r"""
import os, signal, sys, time
args = sys.argv[1:]
if "clean" in args:
    print("removed 2 container(s), 1 network(s)")
    sys.exit(0)
def stop(*_):
    print("SIGTERM: stopping; tearing down running environments", flush=True)
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)
print("fake nocrud", " ".join(args), flush=True)
print("\x1b[32mPASSED\x1b[0m  alpha  password=hunter22", flush=True)
mode = os.environ.get("FAKE_MODE", "pass")
if mode == "sleep":
    time.sleep(60)
sys.exit({"pass": 0, "fail": 1, "broken": 3}.get(mode, 0))
"""

FLOWS = '''
from nocrud import flow


@flow(tags=["alpha"])
def alpha(ctx):
    """First."""


@flow(tags=["beta"])
def beta(ctx):
    """Second."""
'''


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    # Flow packages are imported by name: each test gets its own, as two projects would.
    package = f"consoleflows_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "two.py").write_text(FLOWS)
    (tmp_path / "nocrud.yaml").write_text(
        'project: demo\napp:\n  image: demo/app:1\ndatabase:\n  migrate: ["true"]\n'
        f"flows:\n  path: {package}\n"
    )
    (tmp_path / "fake_nocrud.py").write_text(FAKE)
    return tmp_path


@pytest.fixture
def make_settings(project_dir: Path) -> Callable[..., ConsoleSettings]:
    def make(**changes: Any) -> ConsoleSettings:
        values: dict[str, Any] = {
            "store_url": f"sqlite:///{project_dir / '.nocrud' / 'history.db'}",
            "project": "demo",
            "config_path": project_dir / "nocrud.yaml",
            "command": (sys.executable, str(project_dir / "fake_nocrud.py")),
            "public_url": "http://127.0.0.1:1",
            "strategies": ("image", "template"),
            **changes,
        }
        return ConsoleSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., ConsoleSettings]) -> ConsoleSettings:
    return make_settings()


@pytest.fixture
def store(settings: ConsoleSettings) -> RunStore:
    return RunStore(settings.store_url)


def csrf_client(client: TestClient) -> TestClient:
    """A client that sends the CSRF header like the pages' script does."""
    token = client.get("/api/csrf").json()["token"]
    client.headers["X-CSRF-Token"] = token
    return client


@pytest.fixture
def client(settings: ConsoleSettings, store: RunStore) -> Iterator[TestClient]:
    app = create_app(settings, store=store)
    with TestClient(app) as test_client:
        yield csrf_client(test_client)


@pytest.fixture
def served(settings: ConsoleSettings, store: RunStore) -> Iterator[str]:
    """The console on uvicorn on a free loopback port, over ``store``; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
