"""The reaper without Docker: its protocol, timing rules and removal order, and image choice.

The server (``images/reaper/reaper.py``) is not part of the package; it is loaded from
its file. Its Docker calls go through a fake; its sockets are real, on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nocrud.docker import reaper as runner_reaper

SERVER_FILE = Path(__file__).resolve().parents[3] / "images" / "reaper" / "reaper.py"


def _load_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nocrud_reaper_server", SERVER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


srv = _load_server()


# --------------------------------------------------------------------------- protocol


def test_a_line_with_one_label_is_one_filter_set() -> None:
    line = "label=org.testcontainers.session-id=2f1c-aa\r\n"
    assert srv.parse_filter_line(line) == (("label", ("org.testcontainers.session-id=2f1c-aa",)),)


def test_ampersand_joined_labels_make_one_set_whose_parts_must_all_match() -> None:
    assert srv.parse_filter_line("label=a=b&label=c=d\r\n") == (("label", ("a=b", "c=d")),)
    assert srv.as_docker_filters(srv.parse_filter_line("label=a=b&label=c=d")) == {
        "label": ["a=b", "c=d"]
    }


def test_the_same_set_in_another_order_is_the_same_filter() -> None:
    first = srv.parse_filter_line("label=c=d&name=x&label=a=b")
    assert first == srv.parse_filter_line("name=x&label=a=b&label=c=d")
    assert first == (("label", ("a=b", "c=d")), ("name", ("x",)))


def test_values_are_url_unescaped_like_gos_parse_query() -> None:
    assert srv.parse_filter_line("label=team%3Dred%26blue") == (("label", ("team=red&blue",)),)
    assert srv.parse_filter_line("label=") == (("label", ("",)),)


@pytest.mark.parametrize("line", ["", "\r\n", "&", "=x", "&&\n"])
def test_a_line_without_any_filter_is_refused_rather_than_matching_everything(line: str) -> None:
    with pytest.raises(ValueError, match="no filter"):
        srv.parse_filter_line(line)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("2h45m0.5s", 9900.5),
        (".5s", 0.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),  # the micro sign, which Go accepts too
        ("7ns", 7e-9),
        ("0", 0.0),
        ("-1s", -1.0),
        (" 2s ", 2.0),
    ],
)
def test_go_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert srv.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10x", "1m 30s", "ten seconds", "1.s2"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        srv.parse_duration(text)


def test_config_has_ryuks_defaults() -> None:
    config = srv.Config.from_env({})
    assert (config.port, config.connection_timeout, config.reconnection_timeout) == (8080, 60, 10)
    assert (config.remove_retries, config.shutdown_timeout) == (10, 600)


def test_config_reads_ryuks_variables() -> None:
    config = srv.Config.from_env(
        {"RYUK_RECONNECTION_TIMEOUT": "2s", "RYUK_CONNECTION_TIMEOUT": "1m", "RYUK_PORT": "9000"}
    )
    assert (config.reconnection_timeout, config.connection_timeout, config.port) == (2, 60, 9000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RYUK_RECONNECTION_TIMEOUT": "10"}, "RYUK_RECONNECTION_TIMEOUT='10': invalid duration"),
        ({"RYUK_PORT": "http"}, "RYUK_PORT='http'"),
        ({"RYUK_CONNECTION_TIMEOUT": "-5s"}, "must not be negative"),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        srv.Config.from_env(env)


# --------------------------------------------------------------------------- lifecycle

CONFIG = srv.Config(connection_timeout=60, reconnection_timeout=10, shutdown_timeout=600)


def test_nobody_connecting_ends_it_after_the_connection_timeout() -> None:
    life = srv.Lifecycle(CONFIG, now=100.0)
    assert life.wait(100.0) == 60
    assert not life.due(159.9)
    assert life.due(160.0)
    assert "connection timeout" in life.reason


def test_nothing_is_due_while_a_client_is_connected() -> None:
    life = srv.Lifecycle(CONFIG, now=0.0)
    life.connected()
    assert life.wait(1.0) is None
    assert not life.due(10_000.0)


def test_the_last_disconnect_starts_the_reconnection_timeout_and_a_reconnect_stops_it() -> None:
    life = srv.Lifecycle(CONFIG, now=0.0)
    life.connected()
    life.connected()
    life.disconnected(5.0)
    assert not life.due(10_000.0)  # one client left
    life.disconnected(6.0)
    assert life.wait(6.0) == 10
    life.connected()  # came back in time
    assert not life.due(17.0)
    life.disconnected(20.0)
    assert not life.due(29.9)
    assert life.due(30.0)
    assert "reconnection timeout" in life.reason


def test_a_signal_with_nobody_connected_prunes_at_once() -> None:
    life = srv.Lifecycle(CONFIG, now=0.0)
    life.signal(3.0)
    assert life.due(3.0)
    assert life.reason == "signal received"


def test_a_signal_waits_for_connected_clients_but_not_forever() -> None:
    life = srv.Lifecycle(CONFIG, now=0.0)
    life.connected()
    life.signal(1.0)
    assert not life.due(2.0)
    assert life.due(601.0)  # shutdown timeout
    other = srv.Lifecycle(CONFIG, now=0.0)
    other.connected()
    other.signal(1.0)
    other.disconnected(2.0)  # the last client left: no reconnection timeout after a signal
    assert other.due(2.0)


# --------------------------------------------------------------------------- pruning


class FakeDocker:
    """Objects by kind and filter; removal failures scripted per (kind, id)."""

    def __init__(self, objects: dict[tuple[str, str], list[str]]) -> None:
        self.objects = objects
        self.failures: dict[tuple[str, str], int] = {}
        self.gone: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def find(self, kind: str, filters: dict[str, list[str]]) -> list[str]:
        if kind == "image" and "name" in filters:
            raise RuntimeError("invalid filter 'name'")
        return list(self.objects.get((kind, repr(filters)), []))

    def remove(self, kind: str, ident: str) -> bool:
        self.calls.append((kind, ident))
        left = self.failures.get((kind, ident), 0)
        if left:
            self.failures[kind, ident] = left - 1
            raise RuntimeError(f"{kind} {ident} is in use")
        return ident not in self.gone


A = srv.parse_filter_line("label=a=1")
B = srv.parse_filter_line("label=b=2&label=c=3")


def _key(filter_set: Any) -> str:
    return repr(srv.as_docker_filters(filter_set))


def test_prune_removes_containers_then_networks_volumes_images_of_every_filter_once() -> None:
    docker = FakeDocker(
        {
            ("network", _key(A)): ["net1"],
            ("container", _key(A)): ["c1", "c2"],
            ("container", _key(B)): ["c2", "c3"],
            ("volume", _key(B)): ["vol1"],
            ("image", _key(A)): ["img1"],
        }
    )
    lines: list[str] = []
    removed = srv.prune(docker, [A, B], retries=3, log=lines.append, sleep=lambda _s: None)
    assert docker.calls == [
        ("container", "c1"),
        ("container", "c2"),
        ("container", "c3"),
        ("network", "net1"),
        ("volume", "vol1"),
        ("image", "img1"),
    ]
    assert removed == {"container": 3, "network": 1, "volume": 1, "image": 1}
    assert "Removed network net1" in lines


def test_a_network_still_in_use_is_retried_a_second_later() -> None:
    docker = FakeDocker({("network", _key(A)): ["net1", "net2"]})
    docker.failures["network", "net1"] = 2
    sleeps: list[float] = []
    lines: list[str] = []
    removed = srv.prune(docker, [A], retries=5, log=lines.append, sleep=sleeps.append)
    assert removed["network"] == 2
    assert docker.calls == [("network", "net1"), ("network", "net2"), *[("network", "net1")] * 2]
    assert sleeps == [1.0, 1.0]
    assert any("attempt 1/5" in line for line in lines)


def test_prune_gives_up_after_the_retries_and_says_what_is_left() -> None:
    docker = FakeDocker({("container", _key(A)): ["stuck"]})
    docker.failures["container", "stuck"] = 99
    lines: list[str] = []
    removed = srv.prune(docker, [A], retries=3, log=lines.append, sleep=lambda _s: None)
    assert removed["container"] == 0
    assert len(docker.calls) == 3
    assert lines[-1] == "Gave up on 1 container(s): stuck"


def test_already_gone_is_not_counted_and_a_failed_listing_does_not_stop_the_rest() -> None:
    by_name = srv.parse_filter_line("name=web")
    docker = FakeDocker({("container", _key(by_name)): ["c1", "c9"]})
    docker.gone.add("c9")
    lines: list[str] = []
    removed = srv.prune(docker, [by_name], retries=2, log=lines.append, sleep=lambda _s: None)
    assert removed["container"] == 1
    assert any("Listing images" in line and "invalid filter" in line for line in lines)


# --------------------------------------------------------------------------- server


def _serve(server: Any, client: Any) -> list[Any]:
    """Run ``server.serve()`` in this (main) thread while ``client`` runs in another."""
    errors: list[BaseException] = []

    def run_client() -> None:
        try:
            client()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run_client)
    thread.start()
    try:
        filters = server.serve()
    finally:
        thread.join(10)
    if errors:
        raise errors[0]
    return filters


def _listener() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


def _ask(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(16)
        assert chunk, "connection closed before ACK"
        data += chunk
    return data


def test_server_acks_each_line_and_prunes_after_the_last_client_is_gone() -> None:
    listener = _listener()
    port = listener.getsockname()[1]
    config = srv.Config(reconnection_timeout=0.2, connection_timeout=10)
    lines: list[str] = []
    server = srv.Server(listener, config, lines.append)
    replies: list[bytes] = []

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as one:
            replies.append(_ask(one, b"label=a=1\r\n"))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as two:
                replies.append(_ask(two, b"label=b=2&label=c=3\r\n"))
                replies.append(_ask(two, b"&\r\n"))  # unusable, but ACKed as Ryuk does
                replies.append(_ask(one, b"label=a=1\n"))  # already known
            # A last line without newline still counts when the connection ends.
            one.sendall(b"label=d=4")

    filters = _serve(server, client)
    assert replies == [b"ACK\n"] * 4
    assert filters == [A, B, srv.parse_filter_line("label=d=4")]
    assert any("reconnection timeout" in line for line in lines)
    assert listener.fileno() == -1  # closed: no client is accepted once pruning starts


def test_server_gives_up_when_nobody_connects() -> None:
    listener = _listener()
    lines: list[str] = []
    server = srv.Server(listener, srv.Config(connection_timeout=0.1), lines.append)
    assert server.serve() == []
    assert "nobody connected" in lines[-1]


def test_sigterm_with_no_client_left_prunes_at_once() -> None:
    listener = _listener()
    port = listener.getsockname()[1]
    lines: list[str] = []
    config = srv.Config(reconnection_timeout=600, connection_timeout=600)
    server = srv.Server(listener, config, lines.append)

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert _ask(sock, b"label=a=1\r\n") == b"ACK\n"
        # What the C-level handler writes for a real SIGTERM (signal.set_wakeup_fd); a
        # real signal could outlive serve() and hit pytest itself.
        server._wakeup_write.send(bytes([signal.SIGTERM]))

    filters = _serve(server, client)
    assert filters == [A]
    assert "Signal received: SIGTERM" in lines
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


# --------------------------------------------------------------------------- nocrud side


def _present(*images: str) -> Any:
    return lambda image: image in images


def _no_pull(image: str) -> bool:
    raise AssertionError(f"pulled {image}")


DEFAULT = "testcontainers/ryuk:0.8.1"


def test_the_users_image_wins() -> None:
    env = {"RYUK_CONTAINER_IMAGE": "registry.local/ryuk:9"}
    chosen = runner_reaper.choose_image(env, default=DEFAULT, present=_present(), pull=_no_pull)
    assert chosen == "registry.local/ryuk:9"


def test_testcontainers_ryuk_then_nocrud_reaper_when_present() -> None:
    both = _present(DEFAULT, "nocrud/reaper:1")
    assert runner_reaper.choose_image({}, default=DEFAULT, present=both, pull=_no_pull) == DEFAULT
    ours = _present("nocrud/reaper:1")
    chosen = runner_reaper.choose_image({}, default=DEFAULT, present=ours, pull=_no_pull)
    assert chosen == "nocrud/reaper:1"


def test_a_pull_is_the_last_resort_and_none_without_it() -> None:
    pulled: list[str] = []
    chosen = runner_reaper.choose_image(
        {}, default=DEFAULT, present=_present(), pull=lambda i: bool(pulled.append(i)) or True
    )
    assert (chosen, pulled) == (DEFAULT, [DEFAULT])
    nothing = runner_reaper.choose_image(
        {}, default=DEFAULT, present=_present(), pull=lambda _i: False
    )
    assert nothing is None


@pytest.mark.parametrize(
    ("env", "properties", "disabled"),
    [
        ({"TESTCONTAINERS_RYUK_DISABLED": "true"}, {}, True),
        ({"TESTCONTAINERS_RYUK_DISABLED": "1"}, {}, True),
        ({"TESTCONTAINERS_RYUK_DISABLED": "false"}, {"ryuk.disabled": "true"}, False),
        ({}, {"ryuk.disabled": "yes"}, True),
        ({}, {}, False),
    ],
)
def test_the_user_can_turn_ryuk_off(
    env: dict[str, str], properties: dict[str, str], disabled: bool
) -> None:
    assert runner_reaper.disabled_by_user(env, properties) is disabled


def test_default_image_is_testcontainers_own() -> None:
    assert runner_reaper.default_ryuk_image().startswith("testcontainers/ryuk:")


def test_session_labels_are_what_testcontainers_asks_ryuk_to_remove() -> None:
    from testcontainers.core.labels import SESSION_ID

    assert runner_reaper.session_labels() == {"org.testcontainers.session-id": SESSION_ID}


class _UntouchableDocker:
    """A Docker client that fails the test if anything is asked of it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the reaper asked Docker for {name!r} although it is off")


def test_disabled_start_does_not_touch_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_reaper, "_started", None)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    said: list[str] = []
    client: Any = _UntouchableDocker()
    assert runner_reaper.start_reaper(client, say=said.append, disabled=True) is None
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    assert runner_reaper.start_reaper(client, say=said.append) is None
    assert said == []


def test_no_image_leaves_the_reaper_off_and_says_what_happens_instead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_reaper, "_started", None)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    monkeypatch.setattr(runner_reaper, "_choose_with_docker", lambda _client, _say: None)
    said: list[str] = []
    assert runner_reaper.start_reaper(_UntouchableDocker(), say=said.append) is None  # type: ignore[arg-type]
    assert said == [runner_reaper.NO_IMAGE]


def test_register_retries_until_the_reaper_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = _listener()
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def fake_reaper() -> None:
        first, _ = listener.accept()  # like Docker's port proxy with nobody behind it
        first.close()
        second, _ = listener.accept()
        with second:
            received.append(second.recv(1024))
            second.sendall(b"ACK\n")
            second.recv(1)  # until the client closes

    thread = threading.Thread(target=fake_reaper)
    thread.start()
    monkeypatch.setattr(runner_reaper.time, "sleep", lambda _s: None)
    try:
        sock = runner_reaper._register("127.0.0.1", port, {"k": "v", "x": "y"})
        sock.close()
    finally:
        thread.join(10)
        listener.close()
    assert received == [b"label=k=v&label=x=y\r\n"]


def test_register_names_the_address_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = _listener()
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    monkeypatch.setattr(runner_reaper, "CONFIRM_TIMEOUT", 0.0)
    with pytest.raises(runner_reaper.ReaperError, match=f"no ACK from 127.0.0.1:{port}"):
        runner_reaper._register("127.0.0.1", port, {"k": "v"})


def test_no_image_is_built_on_demand_when_a_builder_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh engine (Podman's store, a new CI machine): the first run builds its backstop."""
    monkeypatch.setattr(runner_reaper, "_started", None)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    monkeypatch.setattr(runner_reaper, "_choose_with_docker", lambda _client, _say: None)
    started: list[str] = []

    def fake_start(_client: Any, image: str, _timeout: str, _link: Any, _abort: Any = None) -> Any:
        started.append(image)
        return runner_reaper._Started(description=f"reaper {image}")

    monkeypatch.setattr(runner_reaper, "_start", fake_start)
    built: list[str] = []
    said: list[str] = []
    client: Any = _UntouchableDocker()
    described = runner_reaper.start_reaper(client, say=said.append, build=built.append)
    assert (described, built, started) == (
        f"reaper {runner_reaper.REAPER_IMAGE}",
        [runner_reaper.REAPER_IMAGE],
        [runner_reaper.REAPER_IMAGE],
    )
    assert said == []


def test_a_failed_build_leaves_the_reaper_off_with_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_reaper, "_started", None)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    monkeypatch.setattr(runner_reaper, "_choose_with_docker", lambda _client, _say: None)

    def broken(_ref: str) -> None:
        raise RuntimeError("apt-get failed")

    said: list[str] = []
    client: Any = _UntouchableDocker()
    assert runner_reaper.start_reaper(client, say=said.append, build=broken) is None
    assert said == [
        f"could not build {runner_reaper.REAPER_IMAGE} (RuntimeError: apt-get failed): "
        f"{runner_reaper.BACKSTOP}"
    ]


class _PodmanLikeDocker:
    """Answers every pull with success (Podman's compat API: 200, error in the stream)."""

    def __init__(self) -> None:
        self.api = self
        self.images = self

    def pull(self, image: str) -> None:
        del image

    def get(self, image: str) -> Any:
        import docker.errors

        raise docker.errors.ImageNotFound(image)


def test_a_pull_that_answers_ok_but_brings_no_image_is_no_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RYUK_CONTAINER_IMAGE", raising=False)
    said: list[str] = []
    client: Any = _PodmanLikeDocker()
    assert runner_reaper._choose_with_docker(client, said.append) is None
    assert said == []


# --------------------------------------------------------------------------- the early start


class _FakeEngine:
    def __init__(self) -> None:
        self.client: Any = _UntouchableDocker()
        self.connection: Any = None
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def early(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A reaper module with no reaper yet, Docker faked, and exit handlers collected."""
    import nocrud.docker.engine

    monkeypatch.setattr(runner_reaper, "_started", None)
    monkeypatch.setattr(runner_reaper, "_early", None)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    seen: dict[str, Any] = {"at_exit": [], "pulls": [], "starts": [], "handed_over": []}
    engine = _FakeEngine()
    seen["engine"] = engine
    monkeypatch.setattr(nocrud.docker.engine, "open_engine", lambda: engine)
    monkeypatch.setattr(
        runner_reaper.atexit, "register", lambda *call: seen["at_exit"].append(call)
    )

    def choose(_client: Any, _say: Any, *, pull: bool = True) -> str:
        seen["pulls"].append(pull)
        return "nocrud/reaper:1"

    monkeypatch.setattr(runner_reaper, "_choose_with_docker", choose)
    monkeypatch.setattr(runner_reaper, "_hand_over", seen["handed_over"].append)
    return seen


def test_start_reaper_returns_only_once_the_early_start_has_its_ack(
    monkeypatch: pytest.MonkeyPatch, early: dict[str, Any]
) -> None:
    """The guarantee: nothing the run makes can exist before the reaper watches."""
    acked = threading.Event()

    def slow_start(_client: Any, image: str, *_args: Any) -> Any:
        early["starts"].append(image)
        assert acked.wait(10)
        return runner_reaper._Started(description=f"reaper {image}")

    monkeypatch.setattr(runner_reaper, "_start", slow_start)
    runner_reaper.start_early()  # returns at once: its thread waits for the ACK
    returned: list[str | None] = []
    said: list[str] = []
    waiter = threading.Thread(
        target=lambda: returned.append(
            runner_reaper.start_reaper(_UntouchableDocker(), say=said.append)  # type: ignore[arg-type]
        )
    )
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive(), "start_reaper returned before the reaper acknowledged"
    acked.set()
    waiter.join(10)
    assert returned == ["reaper nocrud/reaper:1"]
    assert early["starts"] == ["nocrud/reaper:1"], "one reaper, started once"
    assert early["pulls"] == [False], "the early start never pulls: start_reaper would say so"
    assert said == []
    # Handed over at exit, by start_reaper's handler and by the early start's own.
    assert [call[0].__name__ for call in early["at_exit"]] == ["_early_at_exit", "append"]


def test_an_early_start_without_an_image_leaves_the_search_and_the_build_to_start_reaper(
    monkeypatch: pytest.MonkeyPatch, early: dict[str, Any]
) -> None:
    def choose(_client: Any, _say: Any, *, pull: bool = True) -> str | None:
        early["pulls"].append(pull)
        return None

    monkeypatch.setattr(runner_reaper, "_choose_with_docker", choose)

    def fake_start(_client: Any, image: str, *_args: Any) -> Any:
        early["starts"].append(image)
        return runner_reaper._Started(description=f"reaper {image}")

    monkeypatch.setattr(runner_reaper, "_start", fake_start)
    runner_reaper.start_early()
    built: list[str] = []
    described = runner_reaper.start_reaper(
        _UntouchableDocker(),  # type: ignore[arg-type]
        say=pytest.fail,
        build=built.append,
    )
    assert described == f"reaper {runner_reaper.REAPER_IMAGE}"
    assert early["pulls"] == [False, True]
    assert built == [runner_reaper.REAPER_IMAGE]
    assert early["engine"].closed, "the early start's own client is closed when it gives up"


def test_an_early_start_that_fails_is_said_once_and_not_tried_again(
    monkeypatch: pytest.MonkeyPatch, early: dict[str, Any]
) -> None:
    def broken(_client: Any, image: str, *_args: Any) -> Any:
        early["starts"].append(image)
        raise runner_reaper.ReaperError("no ACK from 127.0.0.1:1 within 45s")

    monkeypatch.setattr(runner_reaper, "_start", broken)
    runner_reaper.start_early()
    said: list[str] = []
    assert runner_reaper.start_reaper(_UntouchableDocker(), say=said.append) is None  # type: ignore[arg-type]
    assert early["starts"] == ["nocrud/reaper:1"]
    assert said == [
        "reaper nocrud/reaper:1 did not start (ReaperError: no ACK from 127.0.0.1:1 within 45s): "
        f"{runner_reaper.BACKSTOP}"
    ]


def test_a_run_that_turns_out_to_want_no_reaper_hands_the_early_one_over_at_once(
    monkeypatch: pytest.MonkeyPatch, early: dict[str, Any]
) -> None:
    """--keep-failed from the config after all: kept environments must outlive the process."""
    started = runner_reaper._Started(description="reaper nocrud/reaper:1")
    monkeypatch.setattr(runner_reaper, "_start", lambda *_args: started)
    runner_reaper.start_early()
    assert runner_reaper.start_reaper(_UntouchableDocker(), say=pytest.fail, disabled=True) is None  # type: ignore[arg-type]
    assert early["handed_over"] == [started]
    assert runner_reaper._started is None


def test_at_exit_an_early_start_nobody_joined_is_cut_short_and_handed_over(
    monkeypatch: pytest.MonkeyPatch, early: dict[str, Any]
) -> None:
    """E.g. `nocrud up` with no flow selected: the reaper started, the workflow never asked."""
    waiting = threading.Event()

    def waits_for_ack(*args: Any) -> Any:
        abandon = args[4]
        waiting.set()
        assert abandon.wait(10), "exit did not cut the wait for the ACK short"
        raise runner_reaper.ReaperError("gave up: this process is exiting")

    monkeypatch.setattr(runner_reaper, "_start", waits_for_ack)
    runner_reaper.start_early()
    assert waiting.wait(10)
    ((handler, pending),) = early["at_exit"]
    handler(pending)
    assert not pending.thread.is_alive()
    assert early["handed_over"] == []  # nothing had started; the failed start killed its container


# --------------------------------------------------------------------------- the hand-over


class _FakeReaperContainer:
    """A reaper container whose client lists ``left`` as this process's objects."""

    def __init__(self, left: list[dict[str, Any]]) -> None:
        self.calls: list[str] = []
        self.client = self
        self.api = self
        self._left = left

    def containers(self, **kwargs: Any) -> list[dict[str, Any]]:
        assert kwargs["filters"]["label"] == "=".join(
            next(iter(runner_reaper.session_labels().items()))
        )
        self.calls.append("list containers")
        return self._left

    def networks(self, **_kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append("list networks")
        return []

    def kill(self, signal: str = "SIGKILL") -> None:
        self.calls.append(f"kill {signal}")

    def wait(self, **kwargs: Any) -> None:
        self.calls.append(f"wait {kwargs['condition']}")


def test_hand_over_does_not_wait_for_a_reaper_with_nothing_left_to_remove() -> None:
    """Docker removes its container (auto_remove) once the signal has ended it."""
    reaper_itself = {"Id": "r", "Labels": {runner_reaper.LABEL_RYUK: "true"}}
    container = _FakeReaperContainer([reaper_itself])
    sock_a, sock_b = socket.socketpair()
    started = runner_reaper._Started(description="d", sockets=[sock_a], container=container)
    with sock_b:
        runner_reaper._hand_over(started)
        assert sock_b.recv(1) == b"", "the connection is dropped first"
    assert container.calls == ["list containers", "list networks", "kill SIGTERM"]
    runner_reaper._hand_over(started)  # once only
    assert container.calls == ["list containers", "list networks", "kill SIGTERM"]


def test_hand_over_waits_while_the_reaper_removes_what_is_left() -> None:
    container = _FakeReaperContainer([{"Id": "left", "Labels": {}}])
    started = runner_reaper._Started(description="d", container=container)
    runner_reaper._hand_over(started)
    assert container.calls == [
        "list containers",
        "list networks",
        "kill SIGTERM",
        "wait removed",
    ]
