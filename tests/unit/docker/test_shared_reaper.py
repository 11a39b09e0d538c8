"""One reaper per pytest-xdist session: the record that workers share, on real files and locks.

The reaper itself is a stand-in (a listening socket per "container"); what is checked is who
starts one, who joins, and who is told to stop it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nocrud.docker import shared_reaper


class Reapers:
    """Starts stand-in reapers (listening sockets) and registers on them."""

    def __init__(self) -> None:
        self.listening: dict[str, socket.socket] = {}
        self.connections: list[socket.socket] = []
        self.started = 0

    def start(self) -> tuple[socket.socket, str, int, str]:
        self.started += 1
        server = socket.create_server(("127.0.0.1", 0))
        container = f"reaper-{self.started}"
        self.listening[container] = server
        host, port = server.getsockname()[:2]
        return self.register(host, port), host, port, container

    def register(self, host: str, port: int) -> socket.socket:
        sock = socket.create_connection((host, port), timeout=1)
        self.connections.append(sock)
        return sock

    def stop(self, container: str) -> None:
        self.listening.pop(container).close()

    def close(self) -> None:
        for sock in [*self.connections, *self.listening.values()]:
            sock.close()


@pytest.fixture
def reapers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reapers]:
    monkeypatch.setattr(shared_reaper.tempfile, "gettempdir", lambda: str(tmp_path))
    made = Reapers()
    yield made
    made.close()


def _join(reapers: Reapers, key: str = "session-1") -> tuple[socket.socket, shared_reaper.Share]:
    return shared_reaper.join(key, start=reapers.start, register=reapers.register)


def test_the_first_process_starts_the_reaper_and_the_others_join_it(reapers: Reapers) -> None:
    first = _join(reapers)
    others = [_join(reapers) for _ in range(3)]
    assert reapers.started == 1
    assert first[1].started and not any(share.started for _, share in others)
    assert {share.container for _, share in others} == {first[1].container}


def test_only_the_last_to_leave_may_stop_it_and_the_record_goes_with_it(reapers: Reapers) -> None:
    joined = [_join(reapers) for _ in range(3)]
    path = joined[0][1].path
    verdicts = []
    for sock, share in joined:
        sock.close()
        verdicts.append(share.leave())
    assert verdicts == [False, False, True]
    assert not path.exists()
    assert joined[0][1].leave() is False, "leaving twice counts once"


def test_a_session_started_after_the_reaper_ended_starts_another(reapers: Reapers) -> None:
    sock, share = _join(reapers)
    reapers.stop(share.container)  # it pruned and exited: nobody answers at its address
    sock.close()
    again = _join(reapers)
    assert reapers.started == 2 and again[1].started
    assert again[1].container != share.container
    assert share.leave() is False, "the reaper recorded now is not the one it may stop"
    again[0].close()
    assert again[1].leave() is True


def test_sessions_with_other_keys_do_not_share(reapers: Reapers) -> None:
    _join(reapers, "session-1")
    _join(reapers, "session-2")
    assert reapers.started == 2
    assert shared_reaper.record_path("a/b") != shared_reaper.record_path("a/c")
    assert "/" not in shared_reaper.record_path("../../etc").name


def test_workers_joining_at_once_start_one_reaper(reapers: Reapers) -> None:
    shares: list[shared_reaper.Share] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        shares.append(_join(reapers)[1])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert reapers.started == 1 and len(shares) == 4
    assert sum(share.started for share in shares) == 1
