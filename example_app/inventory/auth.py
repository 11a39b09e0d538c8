"""Authentication and authorisation: login, bearer tokens and the writer check.

Tokens are random strings handed out by ``POST /api/auth/login``; only their SHA-256
lives in ``auth_token``, so every gunicorn worker (and every app instance on the same
database) accepts them and a database dump does not leak usable tokens. Reads are
anonymous, but a token that is sent must be valid (401 otherwise). Writes need a token
whose user has role ``admin`` or ``editor`` (401 without one, 403 for ``viewer``).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.security import check_password_hash

from inventory.db import fetch_dict, transaction
from inventory.errors import ForbiddenError, UnauthorizedError
from inventory.openapi import error_response, json_response, operation
from inventory.validation import Field, check_body, read_json_object

WRITER_ROLES = frozenset({"admin", "editor"})
TTL_CONFIG_KEY = "INVENTORY_TOKEN_TTL_SECONDS"

# Compared against when the username does not exist, so a login takes as long for an
# unknown user as for a wrong password (no user enumeration through timing).
_DUMMY_HASH = (
    "pbkdf2:sha256:100000$nocrud0000000000$"
    "2d6b4e1a0f36b0b5e3f0d0b8e0f1f8a7c5d3e6f1a2b3c4d5e6f708192a3b4c5d"
)

_LOGIN_FIELDS = (
    Field("username", "string", required=True, max_length=100),
    Field("password", "string", required=True, max_length=200),
)

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


@dataclass(frozen=True)
class User:
    """The user behind a request's bearer token.

    Attributes:
        id: ``app_user.id``.
        username: Login name.
        role: ``admin``, ``editor`` or ``viewer``.
    """

    id: int
    username: str
    role: str


def hash_token(token: str) -> str:
    """The form in which a token is stored: its SHA-256, hex encoded."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def current_user() -> User | None:
    """The user whose bearer token came with this request.

    Returns:
        The user, or None when the request has no ``Authorization`` header.

    Raises:
        UnauthorizedError: The header is malformed, or the token unknown or expired.
    """
    if "user" in g:
        cached: User | None = g.user
        return cached
    header = request.headers.get("Authorization")
    if header is None:
        g.user = None
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("Authorization header must be 'Bearer <token>'")
    with transaction() as cur:
        cur.execute(
            """
            SELECT u.id, u.username, u.role
              FROM auth_token t JOIN app_user u ON u.id = t.user_id
             WHERE t.token_hash = %s AND t.expires_at > now()
            """,
            (hash_token(token),),
        )
        row = fetch_dict(cur)
    if row is None:
        raise UnauthorizedError("invalid or expired token: log in again at /api/auth/login")
    user = User(**row)
    g.user = user
    return user


def require_writer(view: Callable[P, R]) -> Callable[P, R]:
    """Let only users with a writer role (admin, editor) call ``view``.

    Args:
        view: The view function to protect.

    Returns:
        The wrapped view; it raises 401 without a valid token and 403 for viewers.
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = current_user()
        if user is None:
            raise UnauthorizedError("this operation needs a bearer token from /api/auth/login")
        if user.role not in WRITER_ROLES:
            raise ForbiddenError(f"role {user.role} may only read; log in as an admin or editor")
        return view(*args, **kwargs)

    return wrapper


@bp.post("/login")
@operation(
    "Exchange a username and password for a bearer token",
    tag="auth",
    request_schema="Login",
    responses={
        "200": json_response("Logged in.", "Token"),
        "401": error_response("Unauthorized"),
    },
)
def login() -> Response:
    """Check the password and hand out a new token."""
    body = check_body(read_json_object(), _LOGIN_FIELDS, partial=False).values
    with transaction() as cur:
        cur.execute(
            "SELECT id, role, password_hash FROM app_user WHERE username = %s",
            (body["username"],),
        )
        user = fetch_dict(cur)
        password_hash = user["password_hash"] if user else _DUMMY_HASH
        if not check_password_hash(password_hash, body["password"]) or user is None:
            raise UnauthorizedError("invalid username or password")
        token = secrets.token_urlsafe(32)
        # Expired tokens of this user are swept at each login, so the table stays small.
        cur.execute(
            "DELETE FROM auth_token WHERE user_id = %s AND expires_at <= now()", (user["id"],)
        )
        cur.execute(
            """
            INSERT INTO auth_token (token_hash, user_id, expires_at)
            VALUES (%s, %s, now() + make_interval(secs => %s))
            RETURNING expires_at
            """,
            (hash_token(token), user["id"], current_app.config[TTL_CONFIG_KEY]),
        )
        expires = fetch_dict(cur)
    assert expires is not None  # INSERT ... RETURNING always yields the row
    return jsonify(
        token=token,
        role=user["role"],
        username=body["username"],
        expires_at=expires["expires_at"].isoformat(),
    )


@bp.post("/logout")
@operation(
    "Revoke the bearer token sent with this request",
    tag="auth",
    responses={
        "204": {"description": "The token no longer works."},
        "401": error_response("Unauthorized"),
    },
)
def logout() -> tuple[str, int]:
    """Delete the caller's token."""
    if current_user() is None:
        raise UnauthorizedError("send the token to revoke as 'Authorization: Bearer <token>'")
    token = request.headers["Authorization"].strip().partition(" ")[2].strip()
    with transaction() as cur:
        cur.execute("DELETE FROM auth_token WHERE token_hash = %s", (hash_token(token),))
    return "", 204


@bp.get("/me")
@operation(
    "The user behind the bearer token",
    tag="auth",
    responses={"200": json_response("The user.", "User"), "401": error_response("Unauthorized")},
)
def me() -> dict[str, Any]:
    """Who am I."""
    user = current_user()
    if user is None:
        raise UnauthorizedError("send a token as 'Authorization: Bearer <token>'")
    return {"username": user.username, "role": user.role}
