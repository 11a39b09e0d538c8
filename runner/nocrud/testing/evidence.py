"""The ``curl`` line of a failing test's report: the request that failed, to run again.

When the test failed on an unexpected status, that exception's message holds the
request and the response; otherwise the last response any of the test's clients got is
the request to look at. Either way the text is the masked description
:func:`nocrud.http.responses.describe` writes, and :func:`nocrud.console.views.parse_failure`
(which the console uses for the same line) turns it into ``curl`` against ``$APP``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["curl_for"]


def curl_for(exc: BaseException | None, clients: Sequence[Any]) -> str:
    """A ``curl`` line repeating the failing (or else the last) request, or ``""``."""
    from nocrud.console.views import parse_failure
    from nocrud.http.responses import UnexpectedStatus, describe

    if isinstance(exc, UnexpectedStatus):
        text = str(exc)
    else:
        last = next(
            (c.last_response for c in reversed(clients) if c.last_response is not None), None
        )
        if last is None:
            return ""
        text = describe(last, "the last response before the failure")
    failure = parse_failure(text)
    return failure.curl() if failure is not None else ""
