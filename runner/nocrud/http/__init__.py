"""The flow author's HTTP client: requests on one app, expectations, auth, masked logs.

:mod:`~nocrud.http.client` (:class:`ApiClient`), :mod:`~nocrud.http.responses`
(:class:`Response`, the ``expect=`` logic, FAILED-vs-ERROR exception types) and
:mod:`~nocrud.http.auth` (bearer, OAuth2 password, basic, API key and Django session logins).
"""

from nocrud.http.client import (
    ANY,
    ApiClient,
    ApiConnectionError,
    ApiKey,
    ApiTimeoutError,
    Auth,
    BasicAuth,
    BearerToken,
    Expect,
    LoginError,
    NotJSONError,
    RequestRecorder,
    Response,
    SessionLogin,
    UnexpectedStatus,
    bearer_login,
    oauth2_login,
)

__all__ = [
    "ANY",
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
    "RequestRecorder",
    "Response",
    "SessionLogin",
    "UnexpectedStatus",
    "bearer_login",
    "oauth2_login",
]
