"""What a flow receives: :class:`FlowContext`, its app's client, its own database, more users.

The executor builds one context per flow run. A flow drives its app through
``ctx.api`` (an :class:`~nocrud.http.client.ApiClient` on this flow's own app),
reads its own database through ``ctx.db``, logs in or makes more users with
``ctx.login`` and ``ctx.new_client``, and records CRUD steps with ``ctx.step``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nocrud.errors import one_line
from nocrud.results import Status, StepResult

if TYPE_CHECKING:
    from nocrud.http.client import ApiClient

__all__ = ["DEFAULT_LOGIN_PATH", "FlowContext"]

#: Where :meth:`FlowContext.login` posts credentials unless told otherwise.
DEFAULT_LOGIN_PATH = "/api/auth/login"


@dataclass
class FlowContext:
    """What a flow receives: its own app, its own database, a log.

    Attributes:
        name: The flow's name (``name[param-id]`` for a parametrised flow).
        base_url: Root URL of this flow's app.
        api: HTTP client bound to this flow's app; anonymous until the flow logs in.
        lines: What :meth:`log` collected, in order.
        steps: The steps recorded so far (:meth:`step`, CRUD flows); they become the
            result's steps, printed as ``C✔ R✔ U✔ L✔ D✘``.
    """

    name: str
    base_url: str
    api: ApiClient
    _connect_db: Callable[[], Any]
    _new_client: Callable[..., ApiClient]
    lines: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    _db: Any = None
    _clients: list[ApiClient] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _openapi: Callable[[], Mapping[str, Any] | None] = lambda: None

    def openapi(self) -> Mapping[str, Any] | None:
        """The app's OpenAPI document (``app.openapi``, else the usual paths), or None.

        Read once per run and shared by its flows; ``crud()`` takes its create status
        from it. Its requests are not recorded (they cover nothing).
        """
        return self._openapi()

    def log(self, message: str) -> None:
        """Add a line to this flow's captured output (shown when it fails, and in reports)."""
        with self._lock:
            self.lines.extend(str(message).splitlines() or [""])

    @property
    def db(self) -> Any:
        """A psycopg2 connection to this flow's own database, opened on first use (autocommit)."""
        if self._db is None:
            self._db = self._connect_db()
            self._db.autocommit = True
        return self._db

    def login(
        self,
        username: str,
        password: str,
        *,
        client: ApiClient | None = None,
        path: str | None = None,
        token_field: str = "token",  # noqa: S107 - a field name, not a secret
        form: bool = False,
        username_field: str = "username",
        password_field: str = "password",  # noqa: S107 - a field name, not a secret
        scheme: str = "Bearer",
    ) -> ApiClient:
        """Log a client in with a token login; the token goes with every later request.

        - JSON (the default): ``POST path`` with ``{"username": ..., "password": ...}``,
          the token read from ``token_field`` (see :func:`~nocrud.http.auth.bearer_login`;
          dotted field names nest, e.g. RealWorld's ``username_field="user.email",
          password_field="user.password", token_field="user.token", scheme="Token"``).
        - ``form=True``: OAuth2's password flow, as FastAPI's ``OAuth2PasswordBearer``
          wants: a form posted to ``path``, or to the ``tokenUrl`` the app's OpenAPI
          document declares when ``path`` is not given (see
          :func:`~nocrud.http.auth.oauth2_login`).

        For other schemes set the client's auth yourself:
        ``ctx.api.auth = BasicAuth(...)`` (or ``ApiKey``, ``SessionLogin``, any
        ``requests`` auth).

        Args:
            username: The user name.
            password: The password (masked in every log line and message).
            client: The client to log in; ``ctx.api`` if not given.
            path: The login endpoint; ``/api/auth/login`` for a JSON login.
            token_field: Where the token is in a JSON login's response (dots walk
                into objects).
            form: Log in with OAuth2's password flow instead of JSON.
            username_field: The JSON field for the user name (dots nest).
            password_field: The JSON field for the password (dots nest).
            scheme: The word before a JSON login's token (``Token`` for RealWorld).

        Returns:
            The client, now sending the token with every request.

        Raises:
            UnexpectedStatus: The login was refused (the flow is FAILED).
            LoginError: No token in the answer, or no token URL to post a form to.
        """
        from nocrud.http.logins import bearer_login, oauth2_login

        target = client if client is not None else self.api
        if form:
            oauth2_login(target, path, username=username, password=password)
        else:
            bearer_login(
                target,
                path or DEFAULT_LOGIN_PATH,
                username=username,
                password=password,
                token_field=token_field,
                username_field=username_field,
                password_field=password_field,
                scheme=scheme,
            )
        return target

    def new_client(
        self,
        name: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        login_path: str = DEFAULT_LOGIN_PATH,
        **options: Any,
    ) -> ApiClient:
        """Another client on the same app: its own session, cookies and credentials.

        ``ctx.new_client("bob", username="bob", password="...")`` is a second user,
        logged in like :meth:`login`; ``ctx.new_client(auth=BasicAuth(...))`` uses any
        other auth. Its requests go to this flow's log (prefixed with its name) and
        timings. It is closed when the flow ends.

        Args:
            name: Shown in log lines and messages; defaults to ``username``.
            username: Log in as this user (needs ``password``).
            password: The password for ``username``.
            login_path: The login endpoint for ``username``/``password``.
            **options: More :class:`~nocrud.http.client.ApiClient` arguments
                (``auth``, ``headers``, ``timeout``).

        Raises:
            TypeError: ``username`` without ``password`` or the other way round.
        """
        if (username is None) != (password is None):
            raise TypeError("new_client() needs both username= and password=, or neither")
        with self._lock:
            label = name or username or f"client{len(self._clients) + 1}"
        client = self._new_client(name=label, **options)
        with self._lock:
            self._clients.append(client)
        if username is not None and password is not None:
            self.login(username, password, client=client, path=login_path)
        return client

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record the ``with`` block as a named step of this flow's result.

        ``with ctx.step("login"): ...`` adds a PASSED step, or a FAILED (assertion)
        or ERROR (anything else) one with the exception's first line, and lets the
        exception through. Steps print by their initials: ``L✔ C✔ D✘``.
        """
        started = time.perf_counter()
        try:
            yield
        except AssertionError as exc:
            self.add_step(name, Status.FAILED, one_line(exc), time.perf_counter() - started)
            raise
        except Exception as exc:
            self.add_step(name, Status.ERROR, one_line(exc), time.perf_counter() - started)
            raise
        self.add_step(name, Status.PASSED, "", time.perf_counter() - started)

    def add_step(
        self, name: str, status: Status, message: str = "", duration: float = 0.0
    ) -> StepResult:
        """Record one step's outcome (what :meth:`step` and CRUD flows use)."""
        result = StepResult(name=name, status=status, message=message, duration=duration)
        with self._lock:
            self.steps.append(result)
        return result

    def close(self) -> None:
        """Close the database connection and the clients made by :meth:`new_client`."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
