"""The HTTP client handed to every flow as ``ctx.api``.

:class:`ApiClient` wraps a :class:`requests.Session` bound to one app's base URL. Each
call states the statuses it expects (any 2xx unless told otherwise) and raises
:class:`UnexpectedStatus`, an ``AssertionError``, when the app answers anything else, so
the flow is FAILED and the message shows the request and the response, secrets masked.
When the app cannot be reached the call raises :class:`ApiConnectionError` instead, so
the flow is an ERROR of its environment. Every request is timed into a
:class:`RequestRecorder` as a :class:`~nocrud.results.RequestRecord` for ``--perf`` and
endpoint coverage. Credentials live in :mod:`nocrud.http.auth` and :mod:`nocrud.http.logins`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json as jsonlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import urljoin, urlsplit

import requests
import requests.auth
from requests.structures import CaseInsensitiveDict

from nocrud.http.auth import (
    ApiKey,
    Auth,
    BasicAuth,
    BearerToken,
    LoginError,
    NoAuth,
    Redactor,
    SessionLogin,
)
from nocrud.http.logins import bearer_login, oauth2_login, password_token_url
from nocrud.http.responses import (
    _INHERIT,
    _SUCCESS,
    ANY,
    ApiConnectionError,
    ApiTimeoutError,
    Expect,
    NotJSONError,
    RequestRecorder,
    Response,
    UnexpectedStatus,
    _Expectation,
)
from nocrud.masking import MASK
from nocrud.results import RequestRecord

__all__ = [
    "ANY",
    "MASK",
    "ApiClient",
    "ApiConnectionError",
    "ApiKey",
    "ApiTimeoutError",
    "Auth",
    "BasicAuth",
    "BearerToken",
    "Expect",
    "LoginError",
    "NotJSONError",
    "RequestOptions",
    "RequestRecorder",
    "Response",
    "SessionLogin",
    "UnexpectedStatus",
    "bearer_login",
    "oauth2_login",
    "password_token_url",
]


class RequestOptions(TypedDict, total=False):
    """Keyword arguments of the verb methods; see :meth:`ApiClient.request`."""

    json: Any
    params: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    expect: Expect | None
    endpoint: str | None
    auth: Auth | requests.auth.AuthBase | None
    data: Any
    files: Any
    cookies: Mapping[str, str] | None
    timeout: float | tuple[float, float] | None
    allow_redirects: bool


class ApiClient:
    """HTTP client for one app: relative paths, status checks, timing, masked output.

    Args:
        base_url: The app's root, e.g. ``"http://127.0.0.1:49153"``; a path prefix is kept.
        timeout: Seconds to wait for the app to connect and to answer, per request.
        auth: How to authenticate; switch later with ``client.auth = ...``.
        recorder: Where to record requests; a private one if not given.
        name: Shown in ``repr()`` and error messages (``"alice"`` for a second user).
        log: Called with one line per request: ``POST /api/sites -> 201 (12.3 ms)``;
            a client not named ``"api"`` prefixes its name (``bob: POST ...``) because a
            flow's clients usually share one log.
        headers: Headers sent with every request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        auth: Auth | requests.auth.AuthBase | None = None,
        recorder: RequestRecorder | None = None,
        name: str = "api",
        log: Callable[[str], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url {base_url!r} must look like http://host:port")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self.timeout = timeout
        self.name = name
        self.log = log
        self.recorder = recorder if recorder is not None else RequestRecorder()
        self.session = _AppSession(self._origin)
        # The app under test is reached directly, never through the HTTP(S)_PROXY a CI job
        # may set: requests would send even 127.0.0.1 (or the DinD host) there.
        self.session.trust_env = False
        self.session.headers["Accept"] = "application/json"
        self.session.headers.update(headers or {})
        self._auth: Auth | requests.auth.AuthBase | None = None
        self._override = threading.local()
        try:
            self.auth = auth
        except BaseException:
            self.session.close()
            raise

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Close the session and its connections; safe to call twice."""
        self.auth = None
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ApiClient({self.name!r}, {self.base_url!r}, auth={_auth_repr(self._auth)})"

    @property
    def auth(self) -> Auth | requests.auth.AuthBase | None:
        """The auth sent with every request; assign to switch users or schemes."""
        return self._auth

    @auth.setter
    def auth(self, value: Auth | requests.auth.AuthBase | None) -> None:
        if isinstance(value, Auth):
            value.attach(self)
        if isinstance(self._auth, Auth) and self._auth is not value:
            self._auth.detach(self)
        self._auth = value

    # -- requests --------------------------------------------------------------

    def url(self, path: str) -> str:
        """The full URL for ``path``: relative to ``base_url``, or absolute on its origin.

        Raises:
            ValueError: ``path`` is an absolute URL on another host.
        """
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise ValueError(
                    f"{path} is not on this client's app ({self.base_url}); "
                    "pass a path, or a URL on the same scheme, host and port"
                )
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect | None = None,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> Response:
        """Send one request and check its status.

        Args:
            method: The HTTP method.
            path: A path relative to ``base_url`` (a query string is allowed), or an
                absolute URL on the same origin.
            json: A body to send as JSON; ``datetime``, ``date``, ``time`` and ``UUID``
                values are sent as strings.
            params: Query parameters.
            headers: Headers for this request only.
            expect: The statuses this call should return: an int, a collection of ints,
                a class like ``"4xx"``, or :data:`ANY` to check nothing now. ``None``
                means 2xx, or what an enclosing :meth:`expect_status` block says.
            endpoint: The path template to record for coverage (``"/api/sites/{id}"``);
                the concrete path if not given.
            **kwargs: Passed to :meth:`requests.Session.request` (``data``, ``files``,
                ``timeout``, ``allow_redirects``...). ``auth=`` replaces the client's
                auth for this request only; ``auth=None`` sends none, and no session cookie.
                Redirects are followed on the app's own origin only; a redirect
                elsewhere comes back as the 3xx (a FAILED status check naming its
                ``Location`` unless ``expect=`` accepts it).

        Returns:
            The response.

        Raises:
            UnexpectedStatus: The status is not the expected one.
            ApiConnectionError: The app could not be reached or did not answer in time.
        """
        # pytest leaves this frame out of a failing test's traceback: the message has it all.
        __tracebackhide__ = True
        method = method.upper()
        url = self.url(path)
        expectation = self._expectation(expect)
        auth = kwargs.pop("auth", _INHERIT)
        if auth is _INHERIT:
            auth = self._auth
            if isinstance(auth, Auth):
                auth.before_request(self)
        elif auth is None:
            auth = NoAuth(kwargs.get("cookies"))
        redactor = self._redactor(auth)
        send_headers = CaseInsensitiveDict(headers or {})
        if json is not None:
            if kwargs.get("data") is not None:
                raise TypeError("pass json= or data=, not both")
            kwargs["data"] = jsonlib.dumps(json, default=_json_default, allow_nan=False).encode()
            send_headers.setdefault("Content-Type", "application/json")
        kwargs.setdefault("timeout", self.timeout)

        started = time.perf_counter()
        try:
            raw = self.session.request(
                method, url, params=params, headers=send_headers, auth=auth, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            error_class = (
                ApiTimeoutError if isinstance(exc, requests.Timeout) else ApiConnectionError
            )
            sent = requests.PreparedRequest()
            sent.prepare_url(url, params)
            error = error_class(method, redactor, sent.url or url, exc)
            self._log(f"{method} {self._shown_path(url, redactor, sent.url)} -> {error._what()}")
            raise error from exc
        elapsed = time.perf_counter() - started

        response = Response(
            raw, method=method, elapsed_s=elapsed, redactor=redactor, via=self._via(auth)
        )
        self.recorder.record(
            RequestRecord(method, endpoint or self._relative_path(url), raw.status_code, elapsed)
        )
        self._log(
            f"{method} {self._shown_path(url, redactor, raw.request.url)} -> "
            f"{raw.status_code} ({elapsed * 1000:.1f} ms)"
        )
        if not expectation.matches(response.status):
            raise UnexpectedStatus(response, str(expectation))
        return response

    def get(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """GET ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """POST to ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """PUT ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """PATCH ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """DELETE ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("DELETE", path, **options)

    def head(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """HEAD ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("HEAD", path, **options)

    def options(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """OPTIONS ``path``; options as for :meth:`request`."""
        __tracebackhide__ = True
        return self.request("OPTIONS", path, **options)

    @contextlib.contextmanager
    def expect_status(self, status: Expect, *more: int | str) -> Iterator[None]:
        """Make the calls in a ``with`` block expect other statuses than 2xx.

        ``with api.expect_status(403): api.post("/api/sites", json=site)`` reads as
        "this must be refused". Calls that pass ``expect=`` themselves keep it. The
        block applies to this client in this thread only, and must make at least one
        request through it, so a request sent through the wrong client is caught.

        Args:
            status: A status, a collection of statuses, or a class like ``"4xx"``.
            *more: More acceptable statuses.

        Raises:
            AssertionError: The block made no request through this client.
        """
        expectation = _Expectation.parse(status, *more)
        previous = getattr(self._override, "value", None)
        self._override.value = expectation
        self._override.used = False
        try:
            yield
        finally:
            used = self._override.used
            self._override.value = previous
            self._override.used = True  # an enclosing block saw a request too
        if not used:
            raise AssertionError(
                f"expect_status({expectation}) block made no request through client "
                f"{self.name!r}; was the call made on another client?"
            )

    # -- helpers ---------------------------------------------------------------

    def _expectation(self, expect: Expect | None) -> _Expectation:
        override: _Expectation | None = getattr(self._override, "value", None)
        if override is not None:
            self._override.used = True
        if expect is not None:
            return _Expectation.parse(expect)
        return override or _SUCCESS

    def _via(self, auth: object) -> str:
        return f"{self.name!r}, auth {_auth_repr(auth)}"

    def _redactor(self, auth: object) -> Redactor:
        if not isinstance(auth, Auth):
            return Redactor()
        return Redactor(auth.secret_headers, auth.secret_params, auth.secrets())

    def _relative_path(self, url: str) -> str:
        path = urlsplit(url).path or "/"
        prefix = urlsplit(self.base_url).path
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        return path

    def _shown_path(self, url: str, redactor: Redactor, sent_url: str | None = None) -> str:
        """The relative path and masked query string, for log lines."""
        query = urlsplit(sent_url or url).query
        path = self._relative_path(url)
        return f"{path}?{redactor.query(query)}" if query else path

    def _log(self, line: str) -> None:
        if self.log is not None:
            self.log(line if self.name == "api" else f"{self.name}: {line}")


class _AppSession(requests.Session):
    """A session that follows redirects on the app's own origin only.

    A redirect elsewhere (an anonymous POST sent to an external login page, say) is
    returned as it is, so the call's status check reports the 3xx and its ``Location``
    as a FAILED step instead of a connection error from a host nocrud cannot reach.
    """

    def __init__(self, origin: tuple[str, str]) -> None:
        super().__init__()
        self.origin = origin

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target: str | None = super().get_redirect_target(resp)
        if target is None:
            return None
        parts = urlsplit(urljoin(resp.url, target))
        return target if (parts.scheme, parts.netloc.lower()) == self.origin else None


def _auth_repr(auth: object) -> str:
    # Our helpers mask their own repr; another AuthBase's repr (a dataclass's, say)
    # may show its secret, so only its type is shown.
    if auth is None or isinstance(auth, Auth):
        return repr(auth)
    return f"{type(auth).__name__}(...)"


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(
        f"json= body holds a {type(value).__name__} ({value!r}), which has no JSON form; "
        "convert it (str(), float(), a dict) before sending"
    )
