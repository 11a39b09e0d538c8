"""Waiting until a database and an app are really ready, and saying why when they are not.

Readiness is a strategy of its own (testcontainers' ``wait_strategies`` idea): a check
polled every 15 ms, a watch on the container (a crash is reported at once with its exit
code and last log lines, not after the whole timeout), and a deadline whose error
carries the evidence. Every provisioning strategy uses the same two waits: the
database accepts its app's role (and gets this environment's own passwords), then the
app answers 200 on its health path. Two mistakes every flow would wait for are stopped
in seconds as a :class:`~nocrud.environment.MisconfigurationError`: a health path the
running app answers 404 (with a health-like path that answers suggested), and an
``app.port`` where connections are refused while the app listens elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg2

from nocrud.docker.postgres import DatabaseAddress, replace_passwords
from nocrud.docker.resources import Container
from nocrud.environment import MisconfigurationError, ProvisionError
from nocrud.logs import collapse_repeats

__all__ = [
    "COMMON_HEALTH_PATHS",
    "POLL_INTERVAL",
    "poll",
    "suggest_health_path",
    "wait_for_app",
    "wait_for_database",
]

#: How often readiness is polled. Start-up takes a few hundred ms; a 1 s poll would double it.
POLL_INTERVAL = 0.015
#: How often, while polling, we ask Docker whether a container has died (an API call each time).
STATUS_INTERVAL = 0.25
#: How long an up app may answer 404/405 on the health path before the path is judged wrong.
WRONG_PATH_AFTER = 1.5

#: Raises ProvisionError when the environment was torn down while it was starting.
Interrupted = Callable[[], None]


def poll(
    ready: Callable[[], str | None],
    container: Container,
    timeout: float,
    *,
    check_interrupted: Interrupted,
    interval: float = POLL_INTERVAL,
) -> str | None:
    """Call ``ready`` every ``interval`` until it returns None (ready) or time runs out.

    Every STATUS_INTERVAL it also asks Docker whether ``container`` died, so a crash is
    reported at once instead of after the whole timeout.

    Returns:
        None when ready; otherwise the last failure ``ready`` described.

    Raises:
        ProvisionError: The container died; the message has its exit code and logs.
    """
    deadline = time.monotonic() + timeout
    next_status = time.monotonic() + STATUS_INTERVAL
    while True:
        check_interrupted()
        last = ready()
        if last is None:
            return None
        now = time.monotonic()
        if now >= next_status:
            next_status = now + STATUS_INTERVAL
            raise_if_dead(container, check_interrupted)
        if now > deadline:
            return last
        time.sleep(interval)


def raise_if_dead(container: Container, check_interrupted: Interrupted) -> None:
    """ProvisionError with the container's last log lines when it is no longer running."""
    death = container.death()
    if death is None:
        return
    check_interrupted()  # a container we removed ourselves is not a crash
    logs = collapse_repeats(container.logs(40))
    raise ProvisionError(
        f"{death} before becoming ready.\nLast {container.what} log lines:\n{logs}"
    )


def wait_for_database(
    address: DatabaseAddress,
    container: Container,
    timeout: float,
    *,
    configured_password: str,
    check_interrupted: Interrupted,
) -> None:
    """Wait until PostgreSQL answers, then give the roles this environment's own passwords.

    The readiness check *is* the password change: the first connection that works
    replaces the image's passwords with ``address.password`` (see
    :func:`~nocrud.docker.postgres.replace_passwords`).
    """

    def ready() -> str | None:
        try:
            replace_passwords(
                address, configured_password=configured_password, password=address.password
            )
        except psycopg2.OperationalError as exc:
            return str(exc).strip()
        return None

    last = poll(ready, container, timeout, check_interrupted=check_interrupted)
    if last is not None:
        raise ProvisionError(
            f"database not ready after {timeout:g}s (last error: {last}); raise "
            f"timeouts.db_ready or check the db image.\n"
            f"Last database log lines:\n{container.logs(30)}"
        )


def wait_for_app(
    base_url: str,
    health_path: str,
    container: Container,
    timeout: float,
    *,
    check_interrupted: Interrupted,
    ready_when: str = "healthy",
    app_port: int | None = None,
) -> None:
    """Wait until the app is ready by ``app.ready_when``'s rule.

    ``healthy``: ``GET health_path`` answers 2xx; ``answers``: any answer below 500
    there; ``listening``: any HTTP answer at all. Under ``healthy``, a path that keeps
    answering 404 or 405 while the app is up for :data:`WRONG_PATH_AFTER` seconds is a
    :class:`~nocrud.environment.MisconfigurationError`: the app serves, the path is wrong,
    and waiting out the timeout (for every flow) would only hide that. ``app_port``
    (``app.port``) is where the app must listen in its container: refused connections while
    it does are not a wrong port (its network namespace may be gone: a killed database).
    """
    import requests

    url = base_url + health_path
    wrong_since: float | None = None
    port_watch = _PortWatch(container, app_port)
    with requests.Session() as session:
        # The app is reached directly, never through the HTTP(S)_PROXY a CI job may set
        # (requests would send even 127.0.0.1 there); and so the proxy variables are not
        # read again on every poll.
        session.trust_env = False

        def ready() -> str | None:
            nonlocal wrong_since
            try:
                response = session.get(url, timeout=2)
            except requests.RequestException as exc:
                wrong_since = None
                if isinstance(exc, requests.ConnectionError):
                    port_watch.refused(base_url)
                return type(exc).__name__
            port_watch.answered()
            status = response.status_code
            if (
                ready_when == "listening"
                or (ready_when == "answers" and status < 500)
                or 200 <= status < 300
            ):
                return None
            if ready_when == "healthy" and status in (404, 405):
                now = time.monotonic()
                wrong_since = now if wrong_since is None else wrong_since
                if now - wrong_since >= WRONG_PATH_AFTER:
                    # The app's own lines, read before the suggestion's requests add theirs:
                    # the polls' 404s say nothing the message does not.
                    logs = without_health_checks(container.logs(2000), health_path, 40)
                    suggestion = suggest_health_path(session, base_url, health_path)
                    problem = MisconfigurationError(_wrong_path(health_path, response, suggestion))
                    problem.app_logs = logs
                    raise problem
            else:
                wrong_since = None
            return f"HTTP {status}"

        last = poll(ready, container, timeout, check_interrupted=check_interrupted)
    if last is not None:
        raise ProvisionError(
            f"app not ready after {timeout:g}s: GET {health_path} gave {last}; raise "
            "timeouts.app_ready or fix the app's start-up.\n"
            "Last app log lines (health checks left out):\n"
            + collapse_repeats(without_health_checks(container.logs(2000), health_path, 40))
        )


#: How long the app's port may refuse connections before nocrud looks at what it listens on.
REFUSED_AFTER = 2.0
#: How long the app may listen elsewhere, but not where nocrud connects, before it is a mistake.
WRONG_PORT_AFTER = 3.0
#: PostgreSQL's port: under image and pool the app shares the database's network namespace.
_POSTGRES_PORT = 5432
#: Docker's embedded DNS resolver listens here in every container on a user-defined network.
_DOCKER_DNS = "127.0.0.11"


class _PortWatch:
    """Tells a wrong ``app.port`` (or an app bound to loopback only) from a slow start.

    While connections to the app are refused although its container runs, it reads the
    container's listening TCP sockets (``/proc/net/tcp``, with the image's ``cat``; an
    image without one is simply not checked). Sockets that listen, but never where nocrud
    connects, for :data:`WRONG_PORT_AFTER` seconds are a
    :class:`~nocrud.environment.MisconfigurationError` naming them: waiting out
    ``timeouts.app_ready`` for every flow would only hide the mistake.
    """

    def __init__(self, container: Container, app_port: int | None = None) -> None:
        self.container = container
        self.app_port = app_port
        self.refused_since: float | None = None
        self.seen_since: float | None = None
        self.next_look = 0.0

    def answered(self) -> None:
        self.refused_since = self.seen_since = None

    def refused(self, base_url: str) -> None:
        now = time.monotonic()
        self.refused_since = self.refused_since or now
        if now - self.refused_since < REFUSED_AFTER or now < self.next_look:
            return
        self.next_look = now + 0.5
        sockets = listening_sockets(self.container)
        right = [
            port
            for address, port in sockets
            if port == self.app_port and address not in ("127.0.0.1", "::1")
        ]
        if not sockets or right:
            # Nothing to judge, or the app listens where it should: the refusal is not
            # the port's (a database container killed with the namespace the app is in).
            self.seen_since = None
            return
        self.seen_since = self.seen_since or now
        if now - self.seen_since >= WRONG_PORT_AFTER:
            raise MisconfigurationError(_wrong_port(sockets, base_url))


def listening_sockets(container: Container) -> list[tuple[str, int]]:
    """The app container's listening TCP sockets (address, port), PostgreSQL's left out;
    empty when they cannot be read (no ``cat`` in the image, the container gone)."""
    obj = getattr(container, "obj", None)
    if obj is None:
        return []
    try:
        code, output = obj.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
    except Exception:  # noqa: BLE001 - no answer is no evidence
        return []
    if code not in (0, 1) or not output:  # 1: no IPv6 table, the IPv4 one is there
        return []
    return [
        (address, port)
        for address, port in parse_listening(output.decode(errors="replace"))
        if port != _POSTGRES_PORT
    ]


def parse_listening(table: str) -> list[tuple[str, int]]:
    """Listening sockets in ``/proc/net/tcp`` (and ``tcp6``) text: ``("0.0.0.0", 8081)``.

    IPv4 addresses are decoded (``0.0.0.0`` any, ``127.0.0.1`` loopback); Docker's own DNS
    resolver (``127.0.0.11``, on user-defined networks) is left out. IPv6 addresses are
    ``::`` (any), ``::1`` (loopback), or the kernel's hex.
    """
    found: list[tuple[str, int]] = []
    for line in table.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A" or ":" not in parts[1]:
            continue
        raw, _, port = parts[1].partition(":")
        if len(raw) == 8:
            address = ".".join(str(int(raw[i : i + 2], 16)) for i in (6, 4, 2, 0))
        else:
            address = {"0" * 32: "::", "0" * 24 + "01000000": "::1"}.get(raw.upper(), raw)
        if address == _DOCKER_DNS:
            continue
        entry = (address, int(port, 16))
        if entry not in found:
            found.append(entry)
    return found


def _wrong_port(sockets: list[tuple[str, int]], base_url: str) -> str:
    shown = ", ".join(
        f"{address}:{port}" if ":" not in address else f"[{address}]:{port}"
        for address, port in sockets
    )
    loopback = [port for address, port in sockets if address in ("127.0.0.1", "::1")]
    others = sorted({port for address, port in sockets if address not in ("127.0.0.1", "::1")})
    advice = []
    if others:
        advice.append(f"set app.port to the port it serves on ({' or '.join(map(str, others))})")
    if loopback:
        advice.append(
            f"make the app listen on 0.0.0.0, not 127.0.0.1 (port {loopback[0]}): a loopback "
            "address cannot be reached from outside its container"
        )
    return (
        f"app.port: connections to the app ({base_url}) are refused, but its container "
        f"listens on {shown}; stopping the run, every flow would wait for it.\n"
        f"Fix: {'; or '.join(advice)}."
    )


def _wrong_path(health_path: str, response: Any, suggestion: str) -> str:
    body = " ".join(response.text.split())[:200] or "(empty body)"
    kind = response.headers.get("Content-Type", "no Content-Type")
    return (
        f"app.health_path: GET {health_path} answered {response.status_code} "
        f"{response.reason} for {WRONG_PATH_AFTER:g}s while the app was up, so the path is "
        "probably wrong; stopping the run, every flow would wait for it.\n"
        f"The app answered: HTTP {response.status_code} ({kind}): {body}\n"
        + (f"{suggestion}\n" if suggestion else "")
        + "Fix: set app.health_path in nocrud.yaml to a path that answers 2xx once the app "
        "can serve; for an app without a health endpoint, set app.ready_when: answers "
        "(any answer below 500 on app.health_path) or listening (any HTTP answer)."
    )


#: The last segment of a path that is probably a health check, best first.
_HEALTH_WORDS = (
    "health",
    "healthz",
    "health-check",
    "healthcheck",
    "livez",
    "readyz",
    "ready",
    "alive",
    "ping",
    "heartbeat",
    "status",
)
#: Tried when the app has no OpenAPI document (or it lists no health-like path).
COMMON_HEALTH_PATHS = ("/healthz", "/health/", "/api/health", "/ping", "/status", "/ready")


def suggest_health_path(session: Any, base_url: str, wrong: str) -> str:
    """A sentence naming a health-like path that answers 2xx, or ``""`` when none does.

    Candidates are the parameterless GET paths of the app's OpenAPI document (at the
    usual paths) whose last segment is health-like, else :data:`COMMON_HEALTH_PATHS`;
    each is tried once, briefly, on the app that is up.
    """
    from nocrud.http.openapi import fetch_from_app

    document, tried = fetch_from_app(base_url, timeout=1.0)
    listed = _health_like(document) if document is not None else []
    where = f"listed in the app's OpenAPI document ({tried[-1]['path']})"
    candidates = [(path, where) for path in listed]
    candidates += [(path, "a common health path") for path in COMMON_HEALTH_PATHS]
    for path, why in candidates:
        if path == wrong:
            continue
        try:
            status = session.get(base_url + path, timeout=1.0).status_code
        except Exception:  # noqa: BLE001, S112 - a path that does not answer is no suggestion
            continue
        if 200 <= status < 300:
            return f"GET {path} answers {status} ({why}): try app.health_path: {path}"
    return ""


def _health_like(document: dict[str, Any]) -> list[str]:
    """Parameterless GET paths whose last segment is health-like, best first."""
    from nocrud.http.openapi import documented_path

    found: list[tuple[int, str]] = []
    for path, item in (document.get("paths") or {}).items():
        last = str(path).rstrip("/").rsplit("/", 1)[-1].lower()
        if "{" in str(path) or not isinstance(item, dict) or "get" not in item:
            continue
        if last in _HEALTH_WORDS and documented_path(document, "get", str(path)) is not None:
            found.append((_HEALTH_WORDS.index(last), str(path)))
    prefix = str(document.get("basePath") or "").rstrip("/")
    return [prefix + path for _, path in sorted(found)]


def without_health_checks(logs: str, health_path: str, keep: int) -> str:
    """Log lines minus our own readiness polls, which would crowd out the app's start-up output."""
    needle = f"GET {health_path}"
    lines = [line for line in logs.splitlines() if needle not in line]
    return "\n".join(lines[-keep:]) or "(the app printed nothing but health checks)"
