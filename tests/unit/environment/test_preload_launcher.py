"""The preloading launcher, run for real on this machine's uvicorn (no Docker).

It is what a pool pair's lone uvicorn runs under in its container: these tests run it the
same way, as a process with a tiny ASGI app on a port of 127.0.0.1, and check what a
reset relies on: SIGHUP gives a new server process whose state no request touched, and
the launcher stops, exits and steps aside as uvicorn itself would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from nocrud.environment import preload_launcher
from nocrud.environment.reload import last_renewal

pytest.importorskip("uvicorn")

APP = """
import os

served = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    served.append(scope["path"])
    body = f"{os.getpid()} {len(served)}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Launched:
    def __init__(self, tmp_path: Path, *extra: str, keep_app: bool = False) -> None:
        if not keep_app:
            (tmp_path / "tinyapp.py").write_text(APP)
        self.port = _free_port()
        command = [sys.executable, "-m", "uvicorn", "tinyapp:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", *extra]
        self.process = subprocess.Popen(
            [sys.executable, preload_launcher.__file__, "--", *command],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )

    def get(self, timeout: float = 20) -> tuple[int, int]:
        """(pid of the server that answered, requests that server has served)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, count = requests.get(f"http://127.0.0.1:{self.port}/", timeout=2).text.split()
                return int(pid), int(count)
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)

    def stop(self) -> str:
        """Stop it (and, with uvicorn's workers, its process group); what it said on stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.communicate(timeout=10)[1]


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    launched = Launched(tmp_path)
    try:
        yield launched
    finally:
        launched.stop()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_hup_gives_a_new_server_forked_from_the_app_as_imported(launched: Launched) -> None:
    first, _ = launched.get()
    assert launched.get() == (first, 2)
    assert _parent(first) == launched.process.pid  # the launcher itself never serves

    launched.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    pid, served = launched.get()
    while pid == first and time.monotonic() < deadline:
        time.sleep(0.02)
        pid, served = launched.get()

    assert pid != first
    assert served == 1  # the new process starts from state no request touched
    assert _parent(pid) == launched.process.pid
    assert not Path(f"/proc/{first}").exists() or _parent(first) != launched.process.pid
    said = launched.stop()
    # nocrud's reset waits for the number to grow: the old server is gone by then.
    assert f"server pid {first} forked from the app as imported 0 s ago (renewal 0)" in said
    assert f"server pid {pid} forked" in said and last_renewal(said) == 1


def test_sigterm_stops_the_server_and_the_launcher_with_it(launched: Launched) -> None:
    server, _ = launched.get()
    launched.process.send_signal(signal.SIGTERM)
    code = launched.process.wait(15)
    assert code in (0, 128 + signal.SIGTERM, -signal.SIGTERM)
    assert not Path(f"/proc/{server}").exists() or _parent(server) != launched.process.pid


def test_a_server_that_dies_takes_the_launcher_with_it(launched: Launched) -> None:
    """As uvicorn's own exit stops its container, so does the launcher's child's."""
    server, _ = launched.get()
    os.kill(server, signal.SIGKILL)
    assert launched.process.wait(15) == 128 + signal.SIGKILL


def test_uvicorns_workers_are_as_many_servers_all_renewed_by_a_hup(tmp_path: Path) -> None:
    launched = Launched(tmp_path, "--workers", "2")
    try:
        launched.get()
        first = _servers(launched.process.pid)
        assert len(first) == 2
        launched.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while (
            _servers(launched.process.pid) & first or len(_servers(launched.process.pid)) < 2
        ) and (time.monotonic() < deadline):
            time.sleep(0.02)
        assert len(_servers(launched.process.pid)) == 2
        assert not _servers(launched.process.pid) & first
        launched.get()
    finally:
        launched.stop()


def test_a_reloading_uvicorn_is_left_to_itself(tmp_path: Path) -> None:
    launched = Launched(tmp_path, "--reload")
    try:
        launched.get()
        cmdline = Path(f"/proc/{launched.process.pid}/cmdline").read_bytes().split(b"\0")
        assert preload_launcher.__file__.encode() not in cmdline  # exec'd: uvicorn as it was
        assert b"uvicorn" in cmdline
    finally:
        said = launched.stop()
    assert "nocrud-preload: not preloading: --reload restarts the server" in said


def test_fastapi_run_is_driven_through_fastapis_own_cli(tmp_path: Path) -> None:
    """FastAPI's documented Dockerfile runs ``fastapi run``, which runs uvicorn."""
    pytest.importorskip("fastapi_cli")
    (tmp_path / "main.py").write_text(
        "import os\nfrom fastapi import FastAPI\n\napp = FastAPI()\nserved = []\n\n\n"
        "@app.get('/')\ndef root():\n    served.append(1)\n"
        "    return f'{os.getpid()} {len(served)}'\n"
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, preload_launcher.__file__, "--", sys.executable, "-m", "fastapi",
         "run", "main.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                pid, served = requests.get(url, timeout=2).json().split()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert _parent(int(pid)) == process.pid
        process.send_signal(signal.SIGHUP)
        while True:
            try:
                again, served = requests.get(url, timeout=2).json().split()
                if again != pid:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert served == "1"
    finally:
        process.terminate()
        said = process.communicate(timeout=15)[1]
    assert "not preloading" not in said, said
    assert "nocrud-preload: server pid " in said and "forked from the app as imported" in said


def test_an_app_that_connects_while_imported_is_not_preloaded(tmp_path: Path) -> None:
    """Forked servers would share the import's connection: uvicorn runs as it was instead."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (tmp_path / "tinyapp.py").write_text(
            f"import socket\nbroker = socket.create_connection(('127.0.0.1', {port}))\n" + APP
        )
        launched = Launched(tmp_path, keep_app=True)
        try:
            launched.get()
            cmdline = Path(f"/proc/{launched.process.pid}/cmdline").read_bytes().split(b"\0")
            assert preload_launcher.__file__.encode() not in cmdline
        finally:
            said = launched.stop()
    assert "not preloading: the app opened 1 connection(s) while it was imported" in said


def _servers(launcher: int) -> set[int]:
    """The launcher's children (the servers), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if _parent(int(entry.name)) == launcher:
                    found.add(int(entry.name))
    return found


class _OldUvicornConfig:
    """uvicorn 0.17's (Debian bookworm's) ``bind_socket``: a TCP socket of protocol 0."""

    def bind_socket(self) -> socket.socket:
        sock = socket.socket(family=socket.AF_INET)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        return sock


def test_connections_to_the_launchers_socket_get_tcp_nodelay_as_uvicorns_own_do() -> None:
    """Without TCP_NODELAY a response in two writes waits ~40 ms for the client's delayed ACK
    (measured on fastapi_items: 48 ms per request under the launcher, 3 ms under uvicorn)."""
    import asyncio

    sock = preload_launcher.listening_socket(_OldUvicornConfig())
    assert sock.proto == socket.IPPROTO_TCP
    nodelay: list[int] = []

    async def accept_one() -> None:
        accepted = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        async with server:
            host, port = sock.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            nodelay.append(await asyncio.wait_for(accepted, 10))
            writer.close()

    asyncio.run(accept_one())
    assert nodelay and nodelay[0] != 0
