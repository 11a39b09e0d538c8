"""The values of a fuzz run: recorded exchanges, findings and their verdicts.

Everything here is plain data with no Schemathesis or Docker in it, so replay
classification and report shaping are unit-tested with hand-made values. An
:class:`Exchange` is one request as it went on the wire and what came back; a
:class:`Finding` is one check that failed, with the exchanges its environment served
up to and including the failing one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Exchange", "Finding", "Verdict"]


class Verdict(enum.StrEnum):
    """What replaying a failure in a brand-new environment showed."""

    #: The failing unit's own requests, from a clean database, fail the same check.
    REPRODUCIBLE = "reproducible"
    #: Only with requests that ran before it in the same environment (another case's data).
    ORDER_DEPENDENT = "order-dependent"
    #: Not even the whole history reproduces it: timing, or the app's own randomness.
    NOT_REPRODUCED = "not reproduced"


@dataclass(frozen=True)
class Exchange:
    """One request sent to the app, byte for byte, and the answer.

    Attributes:
        method: The HTTP method.
        path: Path and query string, relative to the app's base URL.
        headers: The request headers that matter for a replay (no Host, no length).
        body: The request body as sent.
        status: The response status (0 when the app did not answer).
        response_body: The start of the response body, for reports.
        operation: The OpenAPI operation it exercised (``POST /items``).
        unit: The unit that sent it; ``own`` exchanges of a finding share its unit.
        sequence: Which sequence (stateful) or case (stateless) of the unit it belongs to.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    status: int = 0
    response_body: str = ""
    operation: str = ""
    unit: str = ""
    sequence: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": [list(h) for h in self.headers],
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "response_body": self.response_body,
            "operation": self.operation,
        }


@dataclass(frozen=True)
class Finding:
    """One failed check, where it happened, and what replaying it showed.

    Attributes:
        operation: The operation whose response failed (``POST /items``).
        check: The Schemathesis check that failed (``not_a_server_error``).
        message: What the check said.
        unit: The unit (environment) that found it.
        history: Every exchange that environment served, the failing one last.
        own: How many of the last exchanges of ``history`` are the failing case's own
            (1 for a stateless case; the steps of its sequence for a stateful one).
        verdict: Set by the replay; ``None`` before.
        minimal: The shortest exchange sequence that reproduced it from a clean database.
        attempts: Replays spent on it.
        app_logs: The last lines of the app's log in the replay that reproduced it.
        kept: What ``--keep-failed`` printed for the kept environment.
    """

    operation: str
    check: str
    message: str
    unit: str
    history: tuple[Exchange, ...]
    own: int = 1
    verdict: Verdict | None = None
    minimal: tuple[Exchange, ...] = ()
    attempts: int = 0
    app_logs: str = ""
    kept: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """Findings with the same key are one bug: the operation and the check."""
        return (self.operation, self.check)

    @property
    def failing(self) -> Exchange:
        return self.history[-1]

    @property
    def own_exchanges(self) -> tuple[Exchange, ...]:
        return self.history[-self.own :]

    @property
    def before(self) -> tuple[Exchange, ...]:
        """What the environment served before the failing case's own requests."""
        return self.history[: -self.own]

    def classified(self, verdict: Verdict, minimal: Sequence[Exchange], attempts: int) -> Finding:
        return replace(self, verdict=verdict, minimal=tuple(minimal), attempts=attempts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "check": self.check,
            "message": self.message,
            "unit": self.unit,
            "verdict": self.verdict.value if self.verdict else None,
            "replays": self.attempts,
            "minimal": [e.to_dict() for e in self.minimal],
            "history": [e.to_dict() for e in self.history],
            "app_logs": self.app_logs,
            "kept": self.kept,
        }
