"""A Docker daemon reached over TCP that vanishes is noticed in seconds (issue 14 item 2).

A killed DinD service sends no reset, so a call on a kept-alive connection waited out
the client's 60 s timeout before the run could say it lost the daemon. The run's
client asks the kernel to drop such connections (keepalive, ``TCP_USER_TIMEOUT``).
A plain TCP listener on 127.0.0.1 stands in for the daemon: no Docker needed.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import docker
import pytest

from nocrud.docker.engine import DEAD_PEER_SECONDS, notice_dead_peers


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def _connected_socket(api: docker.APIClient, url: str) -> socket.socket:
    pool = api.get_adapter(url).poolmanager.connection_from_url(url)
    conn = pool._new_conn()
    conn.connect()
    return conn.sock


@pytest.mark.skipif(sys.platform != "linux", reason="the options are Linux's")
def test_a_tcp_daemons_connections_give_up_on_a_silent_peer(listener: socket.socket) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    api = docker.APIClient(base_url=url.replace("http", "tcp"), version="1.41")
    try:
        notice_dead_peers(api)
        sock = _connected_socket(api, url)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        user_timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        assert user_timeout == DEAD_PEER_SECONDS * 1000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1  # urllib3's own
        sock.close()
    finally:
        api.close()


def test_without_it_the_connection_would_wait_for_the_whole_call(listener: socket.socket) -> None:
    # The check above is not vacuous: a client left alone opens plain connections.
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    api = docker.APIClient(base_url=url.replace("http", "tcp"), version="1.41")
    try:
        sock = _connected_socket(api, url)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        sock.close()
    finally:
        api.close()


def test_a_unix_socket_client_is_left_alone() -> None:
    api = docker.APIClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    try:
        notice_dead_peers(api)
        managers = [getattr(a, "poolmanager", None) for a in api.adapters.values()]
        assert all("socket_options" not in m.connection_pool_kw for m in managers if m), managers
    finally:
        api.close()
