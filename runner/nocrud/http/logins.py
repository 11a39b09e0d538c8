"""Token logins: JSON bearer logins of any body shape, and OAuth2's password flow.

:func:`bearer_login` posts JSON credentials (dotted field names nest them, as RealWorld's
``{"user": {...}}`` wants) and reads the token from a dotted path of the answer;
:func:`oauth2_login` posts OAuth2's password-flow form to the ``tokenUrl`` given or
declared in the app's OpenAPI document (:func:`password_token_url`, also read by
``nocrud new crud``). Both set a :class:`~nocrud.http.auth.BearerToken` on the client.
Their requests go without auth or session cookie (``auth=None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nocrud.http.auth import BearerToken, LoginError

if TYPE_CHECKING:
    from nocrud.http.client import ApiClient
    from nocrud.http.responses import Response

__all__ = ["bearer_login", "oauth2_login", "password_token_url"]


def bearer_login(
    client: ApiClient,
    path: str = "/api/auth/login",
    *,
    username: str,
    password: str,
    token_field: str = "token",  # noqa: S107 - a field name, not a secret
    username_field: str = "username",
    password_field: str = "password",  # noqa: S107 - a field name, not a secret
    scheme: str = "Bearer",
) -> BearerToken:
    """Log in with JSON credentials and use the returned token on ``client``.

    POSTs ``{username_field: username, password_field: password}`` to ``path``
    (without any auth or session cookie), reads the token from the JSON response and
    sets ``client.auth`` to it. Dots in the field names say where they sit in the body,
    for APIs that wrap it: a RealWorld-style login is ``username_field="user.email",
    password_field="user.password", token_field="user.token", scheme="Token"``, which
    posts ``{"user": {"email": ..., "password": ...}}`` and sends
    ``Authorization: Token <token>`` from then on.

    Args:
        client: The client to log in.
        path: The login endpoint.
        username: The user name.
        password: The password.
        token_field: Where the token is in the response; dots walk into nested
            objects (``"data.access_token"``).
        username_field: The JSON field for the user name; dots nest it.
        password_field: The JSON field for the password; dots nest it.
        scheme: The word before the token in the ``Authorization`` header.

    Returns:
        The token, already set on ``client``.

    Raises:
        UnexpectedStatus: The login endpoint did not answer 2xx (wrong credentials).
        LoginError: The response has no string at ``token_field``.
    """
    body: dict[str, Any] = {}
    _put(body, username_field, username)
    _put(body, password_field, password)
    response = client.post(path, json=body, auth=None)
    token = BearerToken(_token_at(response, token_field), scheme=scheme)
    client.auth = token
    return token


def oauth2_login(
    client: ApiClient,
    token_url: str | None = None,
    *,
    username: str,
    password: str,
    scope: str | None = None,
    openapi: str = "/openapi.json",
) -> BearerToken:
    """Log in with OAuth2's password flow (FastAPI's ``OAuth2PasswordBearer``).

    POSTs the form ``grant_type=password&username=...&password=...`` to the token URL
    (without any auth or session cookie) and uses the ``access_token`` it answers,
    with the ``token_type`` it names (``Bearer`` if none), on ``client``.

    Args:
        client: The client to log in.
        token_url: The token endpoint. If not given, it is read from the app's
            OpenAPI document (``GET openapi``): the ``tokenUrl`` of the password flow
            of the first OAuth2 security scheme it declares (Swagger 2.0's
            ``securityDefinitions`` too).
        username: The user name.
        password: The password.
        scope: Space-separated scopes to ask for.
        openapi: Where the app serves its OpenAPI document.

    Returns:
        The token, already set on ``client``.

    Raises:
        UnexpectedStatus: The token endpoint did not answer 2xx (wrong credentials), or
            ``token_url`` is not given and the document could not be fetched.
        LoginError: No token URL could be found, or the answer has no ``access_token``.
    """
    if token_url is None:
        token_url = _declared_token_url(client, openapi)
    form = {"grant_type": "password", "username": username, "password": password}
    if scope:
        form["scope"] = scope
    response = client.post(token_url, data=form, auth=None)
    data = response.json()
    token_type = data.get("token_type") if isinstance(data, dict) else None
    scheme = token_type.capitalize() if isinstance(token_type, str) and token_type else "Bearer"
    token = BearerToken(_token_at(response, "access_token"), scheme=scheme)
    client.auth = token
    return token


def _declared_token_url(client: ApiClient, openapi: str) -> str:
    """The ``tokenUrl`` of the first OAuth2 password flow the app's document declares."""
    document = client.get(openapi, auth=None).json()
    found = password_token_url(document)
    if found is not None:
        return found
    schemes = _security_schemes(document)
    raise LoginError(
        f"the app's OpenAPI document ({openapi}) declares no OAuth2 password flow "
        f'(security schemes: {sorted(schemes) or "none"}); pass token_url= (e.g. "/token"), '
        "or openapi= if the document is served elsewhere"
    )


def password_token_url(document: object) -> str | None:
    """The ``tokenUrl`` of the first OAuth2 password flow an OpenAPI document declares.

    Reads OpenAPI 3's ``components.securitySchemes`` and Swagger 2.0's
    ``securityDefinitions``; ``None`` when neither declares one.
    """
    for scheme in _security_schemes(document).values():
        if not isinstance(scheme, dict) or scheme.get("type") != "oauth2":
            continue
        flows = scheme.get("flows")
        password_flow = flows.get("password") if isinstance(flows, dict) else None
        if isinstance(password_flow, dict) and isinstance(password_flow.get("tokenUrl"), str):
            return str(password_flow["tokenUrl"])
        if scheme.get("flow") == "password" and isinstance(scheme.get("tokenUrl"), str):
            return str(scheme["tokenUrl"])
    return None


def _security_schemes(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        return {}
    components = document.get("components")
    if isinstance(components, dict) and isinstance(components.get("securitySchemes"), dict):
        return dict(components["securitySchemes"])
    definitions = document.get("securityDefinitions")  # Swagger 2.0
    return dict(definitions) if isinstance(definitions, dict) else {}


def _put(body: dict[str, Any], field: str, value: str) -> None:
    """Set ``value`` at ``field`` in ``body``; dots nest (``"user.email"``)."""
    *outer, last = field.split(".")
    for key in outer:
        inner = body.setdefault(key, {})
        if not isinstance(inner, dict):
            raise TypeError(f"login field {field!r} nests inside {key!r}, which holds a value")
        body = inner
    body[last] = value


def _token_at(response: Response, token_field: str) -> str:
    """The string at dotted ``token_field`` of the response's JSON."""
    data = response.json()
    found: Any = data
    for key in token_field.split("."):
        found = found.get(key) if isinstance(found, dict) else None
    if not isinstance(found, str) or not found:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise LoginError(
            f"{response.method} {response.url} -> {response.status} has no token at "
            f"{token_field!r} (top-level keys: {keys}); pass token_field= to say where it is"
        )
    return found
