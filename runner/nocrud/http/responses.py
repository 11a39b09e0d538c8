"""What a call of :class:`~nocrud.http.client.ApiClient` returns, and how it fails.

:class:`Response` wraps a :class:`requests.Response` with test-friendly helpers and
``expect()``; :class:`UnexpectedStatus` (an ``AssertionError``: the flow is FAILED)
carries a message showing the request and the response, secrets masked;
:class:`ApiConnectionError` (the flow is an ERROR) says the app could not be reached.
:class:`RequestRecorder` collects the timing of every request for ``--perf`` and
endpoint coverage.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from functools import cached_property
from typing import Any, Final, Self

import requests
import requests.auth
from requests.structures import CaseInsensitiveDict

from nocrud.http.auth import Redactor
from nocrud.results import RequestRecord

#: Bodies longer than this many characters are cut in error messages.
MAX_BODY_CHARS = 2000

# Request headers every call carries; listing them in an error message is noise.
_BORING_HEADERS = ("user-agent", "accept-encoding", "connection", "content-length")


class _AnyStatus:
    def __repr__(self) -> str:
        return "ANY"


#: Pass as ``expect=ANY`` to accept whatever status comes back (check it later with
#: :meth:`Response.expect`).
ANY: Final = _AnyStatus()

#: What ``expect=`` accepts: a status, a collection of statuses (a ``range`` works),
#: a class such as ``"4xx"``, or :data:`ANY`.
Expect = int | str | Collection[int | str] | _AnyStatus


class UnexpectedStatus(AssertionError):  # noqa: N818 - reads as what happened, like AssertionError
    """The app answered a status the call did not expect.

    An ``AssertionError`` on purpose: the app not doing what the flow expects makes the
    flow FAILED, not ERROR.

    Attributes:
        response: The response that did not match.
        expected: The expected statuses, as shown in the message (``"2xx"``, ``"201"``).
    """

    def __init__(self, response: Response, expected: str) -> None:
        self.response = response
        self.expected = expected
        super().__init__(_describe(response, f"expected {expected}"))


class NotJSONError(AssertionError):
    """The flow asked for a response's JSON and the body is not JSON."""


class ApiConnectionError(Exception):
    """The app could not be reached (refused, reset, DNS, timeout...).

    Not an ``AssertionError``: the flow's environment broke, so the flow is an ERROR.

    Attributes:
        method: The HTTP method.
        url: The full URL, secrets masked.
        cause: The ``requests`` exception (also the ``__cause__``).
    """

    def __init__(
        self, method: str, redactor: Redactor, url: str, cause: requests.RequestException
    ) -> None:
        self.method = method
        self.url = redactor.url(url)
        self.cause = cause
        super().__init__(f"{method} {self.url} failed: {self._what()}: {redactor.text(str(cause))}")

    def _what(self) -> str:
        return "could not reach the app"


class ApiTimeoutError(ApiConnectionError):
    """The app did not answer within the client's timeout."""

    def _what(self) -> str:
        return "the app did not answer in time"


class RequestRecorder:
    """Thread-safe collector of the :class:`RequestRecord` values clients produce.

    Several clients (a flow's ``ctx.api`` and its ``ctx.new_client()`` users) may share
    one recorder, from several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def record(self, record: RequestRecord) -> None:
        """Add one record."""
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> tuple[RequestRecord, ...]:
        """Everything recorded so far, in order."""
        with self._lock:
            return tuple(self._records)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


class _Expectation:
    """A set of acceptable statuses and how to show it."""

    def __init__(self, statuses: frozenset[int] | None) -> None:
        self.statuses = statuses  # None accepts anything

    @classmethod
    def parse(cls, spec: Expect, *more: int | str) -> _Expectation:
        if isinstance(spec, _AnyStatus):
            return cls(None)
        parts: list[int | str] = [spec] if isinstance(spec, int | str) else list(spec)
        parts.extend(more)
        statuses: set[int] = set()
        for part in parts:
            if isinstance(part, str) and re.fullmatch(r"[1-5][xX][xX]", part):
                hundred = int(part[0]) * 100
                statuses.update(range(hundred, hundred + 100))
                continue
            if isinstance(part, bool) or not isinstance(part, int) or not 100 <= part <= 599:
                raise ValueError(
                    f"expect={spec!r}: statuses are ints 100-599 or classes like '4xx'; "
                    "use expect=ANY to accept any status"
                )
            statuses.add(part)
        if not statuses:
            raise ValueError("expect= needs at least one status; use expect=ANY for any")
        return cls(frozenset(statuses))

    def matches(self, status: int) -> bool:
        return self.statuses is None or status in self.statuses

    def __str__(self) -> str:
        if self.statuses is None:
            return "any status"
        left = set(self.statuses)
        labels: list[str] = []
        for hundred in range(100, 600, 100):
            block = set(range(hundred, hundred + 100))
            if block <= left:
                labels.append(f"{hundred // 100}xx")
                left -= block
        labels.extend(str(s) for s in sorted(left))
        return labels[0] if len(labels) == 1 else "one of " + ", ".join(labels)


_SUCCESS = _Expectation.parse("2xx")
# Per-request override of auth: "use the client's auth" unless a value is passed.
_INHERIT: Final = object()


class Response:
    """What a call returned: a :class:`requests.Response` with test-friendly helpers.

    Attributes:
        raw: The underlying :class:`requests.Response`.
        method: The HTTP method of the request.
        elapsed_s: Seconds from sending the request to having read the whole body.
    """

    def __init__(
        self,
        raw: requests.Response,
        *,
        method: str,
        elapsed_s: float,
        redactor: Redactor,
        via: str = "",
    ) -> None:
        self.raw = raw
        self.method = method
        self.elapsed_s = elapsed_s
        self.via = via
        self._redactor = redactor

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self.raw.status_code

    @property
    def status_code(self) -> int:
        """The HTTP status code, by the name requests and Starlette's TestClient give it."""
        return self.raw.status_code

    @property
    def reason(self) -> str:
        """The reason phrase (``"Not Found"``)."""
        return self.raw.reason or ""

    @property
    def url(self) -> str:
        """The full URL that answered (after redirects)."""
        return self.raw.url

    @property
    def headers(self) -> CaseInsensitiveDict[str]:
        """The response headers, case-insensitive."""
        return self.raw.headers

    @property
    def text(self) -> str:
        """The body decoded as text."""
        return self.raw.text

    @property
    def content(self) -> bytes:
        """The body as bytes."""
        return self.raw.content

    def json(self) -> Any:
        """Parse the body as JSON.

        Raises:
            NotJSONError: The body is empty or not JSON; the message names the URL
                and shows the start of the body.
        """
        try:
            return self.raw.json()
        except requests.JSONDecodeError:
            shown = _truncate(self._redactor.body(self.raw.content), 300) or "(empty body)"
            raise NotJSONError(
                f"{self.method} {self._redactor.url(self.url)} -> {self.status}: body is not "
                f"JSON (Content-Type: {self.headers.get('Content-Type', 'none')}):\n"
                f"{_indent(shown)}"
            ) from None

    @cached_property
    def data(self) -> Any:
        """The body parsed as JSON, parsed once (see :meth:`json`)."""
        return self.json()

    def expect(self, status: Expect, *more: int | str) -> Self:
        """Check the status after the fact; for calls made with ``expect=ANY``.

        Args:
            status: A status, a collection of statuses, or a class like ``"4xx"``.
            *more: More acceptable statuses.

        Returns:
            This response, for chaining: ``api.get(url, expect=ANY).expect(200, 404).data``.

        Raises:
            UnexpectedStatus: The status is not one of those.
        """
        __tracebackhide__ = True  # pytest: the message says it all
        expectation = _Expectation.parse(status, *more)
        if not expectation.matches(self.status):
            raise UnexpectedStatus(self, str(expectation))
        return self

    def __repr__(self) -> str:
        return f"<Response {self.method} {self._redactor.url(self.url)} {self.status}>"


def describe(response: Response, note: str) -> str:
    """A response and the request that made it, masked, as an unexpected status shows them.

    ``note`` is said after the status, in parentheses (``"expected 201"``).
    """
    return _describe(response, note)


def _describe(response: Response, expectation: str) -> str:
    """The body of an :class:`UnexpectedStatus` message: request and response, masked."""
    redactor = response._redactor
    raw = response.raw
    request = raw.request
    status = f"{raw.status_code} {response.reason}".rstrip()
    lines = [f"{response.method} {redactor.url(raw.url)} -> {status} ({expectation})"]
    if response.via:
        lines.append(f"client: {response.via}")
    if raw.history:
        hops = " -> ".join(f"{r.status_code} {redactor.url(r.url)}" for r in raw.history)
        lines.append(f"redirected: {hops}")
    location = raw.headers.get("Location")
    if raw.is_redirect and location:
        # Only redirects on the app's own origin are followed (see client._AppSession).
        lines.append(f"Location: {redactor.url(location)} (not followed)")
    header_lines = redactor.header_lines(request.headers, skip=_BORING_HEADERS)
    if header_lines:
        lines.append("request headers:")
        lines.extend(f"  {line}" for line in header_lines)
    sent = request.body
    sent_text = redactor.body(
        sent if isinstance(sent, bytes | str) else None, request.headers.get("Content-Type", "")
    )
    if sent_text:
        lines.append("request body:")
        lines.append(_indent(_truncate(sent_text, MAX_BODY_CHARS)))
    content_type = raw.headers.get("Content-Type", "")
    received = redactor.body(raw.content, content_type)
    if received:
        lines.append(f"response body ({content_type or 'no Content-Type'}):")
        lines.append(_indent(_truncate(received, MAX_BODY_CHARS)))
    else:
        lines.append("response body: (empty)")
    return "\n".join(lines)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit} more characters)"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
