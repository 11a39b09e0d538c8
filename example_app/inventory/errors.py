"""Error responses: the exceptions views raise and the handlers that render them as JSON.

Every error leaves the app as ``{"error": "<sentence>"}``, plus ``"fields"`` (field
name -> what is wrong with it) when the client can fix the input. Client mistakes
become 4xx through :class:`ApiError`; a lost database becomes 503; anything else is a
bug and becomes a logged JSON 500, which the tests prove no client mistake reaches.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg2
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer to a client mistake (or a rule of the domain), with its HTTP status.

    Attributes:
        status: HTTP status code.
        message: One sentence for people.
        fields: Field name -> problem, for errors the client fixes in its input.
        headers: Extra response headers (e.g. ``WWW-Authenticate``).
    """

    status = 400

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}

    def to_response(self) -> Response:
        """Render the error as a JSON response."""
        body: dict[str, Any] = {"error": self.message}
        if self.fields:
            body["fields"] = self.fields
        response = jsonify(body)
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


class BadRequestError(ApiError):
    """400: the request cannot be understood or a field is invalid."""

    status = 400


class UnauthorizedError(ApiError):
    """401: no valid bearer token where one is needed."""

    status = 401

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="inventory"'})


class ForbiddenError(ApiError):
    """403: the token is valid but its role may not do this."""

    status = 403


class NotFoundError(ApiError):
    """404: no such object."""

    status = 404


class ConflictError(ApiError):
    """409: the request clashes with the current data (unique values, rules)."""

    status = 409


class PayloadTooLargeError(ApiError):
    """413: the body is larger than the app accepts."""

    status = 413


class InternalError(ApiError):
    """500: a bug; the details go to the log, never to the client."""

    status = 500


class ServiceUnavailableError(ApiError):
    """503: the database cannot be reached (not up yet, or gone)."""

    status = 503


def register_error_handlers(app: Flask) -> None:
    """Make every error the app can produce a JSON response.

    Args:
        app: The app to install the handlers on.
    """

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error.to_response()

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        # Routing errors (unknown path, wrong method) keep their status and headers
        # (e.g. Allow on 405) but speak JSON like the rest of the API.
        if error.code == 404:
            message = f"no endpoint at {request.path}; see /openapi.json"
        elif error.code == 405:
            message = f"{request.method} is not allowed on {request.path}"
        else:
            message = error.description or error.name
        response = jsonify({"error": message})
        response.status_code = error.code or 500
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(psycopg2.OperationalError)
    def _database_unavailable(error: psycopg2.OperationalError) -> Response:
        log.warning("database unavailable: %s", str(error).strip())
        return ServiceUnavailableError("database unavailable, try again shortly").to_response()

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return InternalError("internal server error").to_response()
