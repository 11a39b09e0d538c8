"""Credentials for :class:`~nocrud.http.client.ApiClient`, and keeping them out of output.

The auth helpers here (:class:`BearerToken`, :class:`BasicAuth`, :class:`ApiKey`,
:class:`SessionLogin`; the token logins are in :mod:`nocrud.http.logins`) are ``requests``
auth objects with two extra duties: they tell the client which headers, query parameters
and literal values are secret, and they may log in lazily before the first request
(Django-style cookie sessions); :class:`NoAuth` is what ``auth=None`` on one call sends.
:class:`Redactor` turns a request's headers, URL and bodies into the text of
the request log, as a person may read it; what is secret there (``Authorization``,
cookies, API keys, CSRF tokens, fields such as ``password`` or ``apiKey``, a URL's
password) is decided by :mod:`nocrud.masking`, the policy the config display and the
reports follow too. A secret never appears in a ``repr()``, a log line or an error message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any

import requests
import requests.auth

from nocrud.masking import MASK, mask_header, mask_mapping, mask_text

if TYPE_CHECKING:
    from nocrud.http.client import ApiClient

#: Methods that change state; Django wants the CSRF header on these.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginError(AssertionError):
    """A login helper could not log in: wrong credentials, or the app answered oddly.

    An ``AssertionError`` because the app under test did not behave as the flow
    expects, which makes the flow FAILED rather than ERROR.
    """


@dataclass(frozen=True)
class Redactor:
    """Turns request and response parts into the request log's text, secrets masked.

    The formatting (header lines, indented JSON, decoded forms, summarised binary
    bodies) is this class's; every "is this secret" and URL decision is
    :mod:`nocrud.masking`'s. An auth helper adds what only it knows: the headers and
    parameters it fills and its literal secret values.

    Attributes:
        headers: Extra header names to mask, lower case, on top of
            :data:`~nocrud.masking.SECRET_HEADERS` and secret names.
        params: Extra query parameter and field names to mask, on top of
            :func:`~nocrud.masking.is_secret_name`.
        literals: Secret values scrubbed wherever they appear in free text.
    """

    headers: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()
    literals: tuple[str, ...] = ()

    @property
    def _names(self) -> frozenset[str]:
        return self.headers | self.params

    def header(self, name: str, value: str) -> str:
        """One header's value, masked if the header is secret.

        Cookie headers keep the cookie names (``sessionid=********``) because which
        cookies were sent is what one needs to debug a login.
        """
        return mask_header(name, value, literals=self.literals, names=self._names)

    def header_lines(self, headers: Mapping[str, str], skip: Iterable[str] = ()) -> list[str]:
        """``Name: value`` lines, masked, leaving out the (lower-case) names in ``skip``."""
        skipped = set(skip)
        return [
            f"{name}: {self.header(name, value)}"
            for name, value in headers.items()
            if name.lower() not in skipped
        ]

    def json(self, value: Any) -> Any:
        """A copy of a parsed JSON value with every secret field's value masked."""
        return mask_mapping(value, literals=self.literals, names=self.params)

    def query(self, query: str) -> str:
        """A query string (or form body) with secret parameters' values masked."""
        return self.text(query)

    def url(self, url: str) -> str:
        """A URL with its password or lone userinfo and secret parameters masked."""
        return self.text(url)

    def body(self, body: bytes | str | None, content_type: str = "") -> str:
        """A request or response body as readable text: JSON indented, forms decoded.

        Args:
            body: The raw body; ``None`` or empty gives ``""``.
            content_type: The ``Content-Type`` header, used to pick the format. JSON
                is also recognised without it.

        Returns:
            The body with secrets masked; binary bodies are summarised, not dumped.
        """
        if not body:
            return ""
        if isinstance(body, bytes):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return f"<{len(body)} bytes of {content_type or 'binary data'}>"
        else:
            text = body
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime == "application/x-www-form-urlencoded":
            return self.query(text)
        if mime.startswith("multipart/"):
            return f"<{len(text)} characters of {mime}>"
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.text(text)
        return self.text(json.dumps(self.json(parsed), indent=2, ensure_ascii=False))

    def text(self, text: str) -> str:
        """Free text (an exception message, a body that is not JSON), secrets masked.

        See :func:`nocrud.masking.mask_text`: literal secrets, URLs, ``name=value`` and
        ``"name": value`` pairs, secret header lines.
        """
        return mask_text(text, literals=self.literals, names=self.params)


class Auth(requests.auth.AuthBase):
    """Base of nocrud's auth helpers: a ``requests`` auth that knows what is secret.

    Subclasses override :meth:`__call__` to decorate each request and may override
    the hooks. Any plain :class:`requests.auth.AuthBase` also works with the client;
    it just gets the default masking (``Authorization`` and friends).
    """

    #: Header names this auth fills with secrets (lower case).
    secret_headers: frozenset[str] = frozenset()
    #: Query parameter names this auth fills with secrets.
    secret_params: frozenset[str] = frozenset()

    def secrets(self) -> tuple[str, ...]:
        """Literal secret values to scrub from anything printed."""
        return ()

    def attach(self, client: ApiClient) -> None:
        """Called when this auth is set on ``client`` (constructor or ``client.auth = ...``)."""

    def detach(self, client: ApiClient) -> None:
        """Called when ``client`` switches to another auth or closes."""

    def before_request(self, client: ApiClient) -> None:
        """Called before each request ``client`` sends with this auth, e.g. to log in."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class NoAuth(Auth):
    """What ``auth=None`` on one call sends: no credentials, and no session cookie.

    The session's cookie jar is left out so an anonymous call is anonymous (a session
    cookie would also make a Django app demand a CSRF token). Cookies passed to that
    call with ``cookies=`` are still sent.

    Args:
        cookies: The call's own cookies.
        keep_session: Send the session's cookies after all (a login's own requests).
    """

    def __init__(
        self, cookies: Mapping[str, str] | None = None, *, keep_session: bool = False
    ) -> None:
        self.cookies = dict(cookies or {})
        self.keep_session = keep_session

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self.keep_session:
            r.headers.pop("Cookie", None)
            if self.cookies:
                r.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return r

    def __repr__(self) -> str:
        return "None"


class BearerToken(Auth):
    """``Authorization: Bearer <token>`` on every request.

    ``BearerToken(token, scheme="Token")`` sends ``Authorization: Token <token>``, as
    RealWorld (Conduit) apps and Django REST framework's ``TokenAuthentication`` want.

    Args:
        token: The token.
        scheme: The word before the token; some APIs want ``Token`` or ``JWT``.
    """

    def __init__(self, token: str, *, scheme: str = "Bearer") -> None:
        self.token = token
        self.scheme = scheme

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"{self.scheme} {self.token}"
        return r

    def __repr__(self) -> str:
        return f"BearerToken({MASK})"


class BasicAuth(Auth):
    """HTTP Basic authentication.

    Args:
        username: The user name; it is shown in ``repr()``.
        password: The password; it never is.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        signed: requests.PreparedRequest = requests.auth.HTTPBasicAuth(
            self.username, self.password
        )(r)
        return signed

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, {MASK})"


class ApiKey(Auth):
    """An API key sent in a header, or in a query parameter.

    Args:
        key: The key.
        header: The header to send it in.
        param: Send the key as this query parameter instead of a header.
    """

    def __init__(self, key: str, header: str = "X-API-Key", *, param: str | None = None) -> None:
        self.key = key
        self.header = header
        self.param = param
        self.secret_headers = frozenset() if param else frozenset({header.lower()})
        self.secret_params = frozenset({param}) if param else frozenset()

    def secrets(self) -> tuple[str, ...]:
        return (self.key,)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.param is None:
            r.headers[self.header] = self.key
        else:
            r.prepare_url(r.url, {self.param: self.key})
        return r

    def __repr__(self) -> str:
        where = f"param={self.param!r}" if self.param else f"header={self.header!r}"
        return f"ApiKey({MASK}, {where})"


class SessionLogin(Auth):
    """Django-style cookie session login with CSRF protection.

    Logs in before the client's first request: GETs the login page to obtain the
    CSRF cookie, POSTs the credentials with the CSRF header and a ``Referer``, and
    keeps the session cookie in the client's cookie jar. From then on every unsafe
    request (POST, PUT, PATCH, DELETE) carries the CSRF header, read from the
    current cookie because Django rotates the token on login.

    One instance logs in one client; give a second user its own ``SessionLogin``.
    Switching the client to another auth drops the session and CSRF cookies.

    Args:
        path: The login page, e.g. ``"/accounts/login/"``.
        username: The user name.
        password: The password.
        csrf_cookie: The cookie the CSRF token comes in.
        csrf_header: The header the CSRF token goes back in.
        form: POST the credentials as a form (True) or as JSON (False).
        username_field: The field for the user name.
        password_field: The field for the password.
        session_cookie: The cookie a successful login sets; its absence after the
            POST means the login failed (Django answers a bad password with 200 and
            the form again). ``None`` skips the check.
    """

    def __init__(
        self,
        path: str,
        username: str,
        password: str,
        *,
        csrf_cookie: str = "csrftoken",
        csrf_header: str = "X-CSRFToken",
        form: bool = True,
        username_field: str = "username",
        password_field: str = "password",  # noqa: S107 - a field name, not a secret
        session_cookie: str | None = "sessionid",
    ) -> None:
        self.path = path
        self.username = username
        self.password = password
        self.csrf_cookie = csrf_cookie
        self.csrf_header = csrf_header
        self.form = form
        self.username_field = username_field
        self.password_field = password_field
        self.session_cookie = session_cookie
        self.secret_headers = frozenset({csrf_header.lower()})
        self._client: ApiClient | None = None
        self._logged_in = False
        self._logging_in = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SessionLogin({self.path!r}, {self.username!r}, {MASK})"

    @property
    def logged_in(self) -> bool:
        """Whether the login has happened on the attached client."""
        return self._logged_in

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)

    def attach(self, client: ApiClient) -> None:
        if self._client is not None and self._client is not client:
            raise ValueError(
                f"{self!r} is already logged in on another client; "
                "create one SessionLogin per client"
            )
        self._client = client

    def detach(self, client: ApiClient) -> None:
        _drop_cookies(client.session.cookies, {self.csrf_cookie, self.session_cookie})
        self._client = None
        self._logged_in = False

    def before_request(self, client: ApiClient) -> None:
        # The lock makes other threads wait for a login in progress; the flag lets the
        # login's own requests (same thread, re-entrant lock) through.
        with self._lock:
            if self._logged_in or self._logging_in:
                return
            self._logging_in = True
            try:
                self.login(client)
            finally:
                self._logging_in = False

    def login(self, client: ApiClient) -> None:
        """Log ``client`` in now (normally done lazily before its first request).

        Raises:
            UnexpectedStatus: The login page or the POST answered an unexpected status.
            LoginError: No CSRF cookie came with the login page, or no session
                cookie came back from the POST.
        """
        # The login's own requests carry the CSRF cookie the page set: no auth, cookies kept.
        anonymous = NoAuth(keep_session=True)
        page = client.get(self.path, auth=anonymous)
        token = _cookie(client.session.cookies, self.csrf_cookie)
        if token is None:
            raise LoginError(
                f"GET {page.url} -> {page.status} set no {self.csrf_cookie!r} cookie; "
                "check the login path, or pass csrf_cookie= if the app names it differently"
            )
        credentials = {self.username_field: self.username, self.password_field: self.password}
        body: dict[str, Any] = {"data": credentials} if self.form else {"json": credentials}
        response = client.post(
            self.path,
            **body,
            headers={self.csrf_header: token, "Referer": client.url(self.path)},
            expect=range(200, 400),
            # A successful Django login redirects to LOGIN_REDIRECT_URL, which may not
            # exist in an API-only app; the session cookie is on the redirect itself.
            allow_redirects=False,
            auth=anonymous,
        )
        if self.session_cookie and _cookie(client.session.cookies, self.session_cookie) is None:
            raise LoginError(
                f"POST {response.url} -> {response.status} set no {self.session_cookie!r} "
                f"cookie: wrong username or password for {self.username!r}? "
                "(pass session_cookie= if the app names it differently)"
            )
        self._logged_in = True

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        client = self._client
        if client is None or (r.method or "").upper() not in UNSAFE_METHODS:
            return r
        token = _cookie(client.session.cookies, self.csrf_cookie)
        if token is not None:
            r.headers[self.csrf_header] = token
        if "Referer" not in r.headers:
            r.headers["Referer"] = client.base_url + "/"
        return r


def _cookie(jar: CookieJar, name: str) -> str | None:
    """The value of cookie ``name``; the last one set wins if several paths hold it."""
    value = None
    for cookie in jar:
        if cookie.name == name:
            value = cookie.value
    return value


def _drop_cookies(jar: CookieJar, names: set[str | None]) -> None:
    for cookie in list(jar):
        if cookie.name in names:
            jar.clear(cookie.domain, cookie.path, cookie.name)
