"""Schemathesis on one environment: draw cases, send them, check the answers, record it all.

The only module of nocrud that imports Schemathesis (and Hypothesis). It loads the app's
OpenAPI document (3.x or Swagger 2.0) into a Schemathesis schema, draws each operation's
stateless cases from one seed, runs a :class:`~nocrud.fuzz.plan.Unit` against one app's
base URL, and replays recorded exchanges for the replay step. Every request a unit sends
is recorded as an :class:`~nocrud.fuzz.model.Exchange`, so a finding carries the exact
history of its environment. Check failures are caught, never raised into Hypothesis: a
raised failure would make Hypothesis run the example again (to shrink and to report it)
on a database the first run already changed, which is the confusion this command exists
to remove; the replay step does that job in brand-new environments instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from nocrud.fuzz.model import Exchange, Finding
from nocrud.fuzz.plan import Unit

__all__ = [
    "Draws",
    "FuzzSchema",
    "UnitOutcome",
    "load_schema",
    "send_exchanges",
]

#: Response bytes kept per exchange for the report.
_BODY_KEPT = 2000
#: Request headers a replay must not copy: requests and the server set them again.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding", "user-agent"})


@dataclass
class UnitOutcome:
    """What one unit's environment served and which checks failed there."""

    exchanges: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


#: Drawn stateless cases per ``(operation label, mode)``.
Draws = dict[tuple[str, str], list[Any]]


class FuzzSchema:
    """A Schemathesis schema of the app's document, restricted to the chosen operations.

    Args:
        document: The OpenAPI 3.x or Swagger 2.0 document as a dict.
        operations: ``METHOD /path`` or operationId substrings to keep (all when empty).
        checks: Names of Schemathesis checks to run (:data:`~nocrud.fuzz.plan.KNOWN_CHECKS`).
    """

    def __init__(
        self, document: Mapping[str, Any], operations: Sequence[str], checks: Sequence[str]
    ) -> None:
        import schemathesis
        from schemathesis.core.result import Ok

        self.raw = schemathesis.openapi.from_dict(dict(document))
        #: Operations Schemathesis could not use or draw cases for, with why.
        self.skipped: dict[str, str] = {}
        self.operations = []
        for result in self.raw.get_all_operations():
            if not isinstance(result, Ok):
                error = result.err()
                self.skipped[str(getattr(error, "path", "") or "?")] = str(error).splitlines()[0]
                continue
            op = result.ok()
            if not operations or any(_matches(op, pattern) for pattern in operations):
                self.operations.append(op)
        self.checks = _check_functions(checks)
        self.check_names = tuple(checks)

    @property
    def labels(self) -> list[str]:
        return [op.label for op in self.operations]

    def draw(
        self, count: int, seed: int, *, negative: bool, fixed: Mapping[str, str] | None = None
    ) -> Draws:
        """Draw ``count`` cases per operation and mode, each operation from its own seed.

        ``fixed`` headers are never generated (nor left out by invalid cases): the
        ``Authorization`` header when nocrud logs each environment in, whose real value
        replaces the placeholder when the case is sent. Otherwise an invalid case whose
        only fault is a missing credential would be "accepted", because the login adds it.
        """
        from schemathesis import GenerationMode

        from nocrud.fuzz.plan import derive_seed

        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else [])
        draws: Draws = {}
        for op in self.operations:
            for mode in modes:
                got: list[Any] = []
                strategy = op.as_strategy(generation_mode=mode, headers=dict(fixed or {}))
                collect = _collector(strategy, count, derive_seed(seed, op.label, mode.value), got)
                try:
                    collect()
                except Exception as exc:  # noqa: BLE001 - a schema Hypothesis cannot draw from
                    got.clear()
                    # An operation with nothing to negate (no parameters, no body) has no
                    # negative cases: that is no reason to report it.
                    if mode is GenerationMode.POSITIVE:
                        self.skipped[op.label] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                if got:
                    draws[(op.label, mode.value)] = got[:count]
        return draws

    def run_stateless(self, unit: Unit, cases: Sequence[Any], target: Target) -> UnitOutcome:
        """Send ``cases`` in order to one app; every failed check becomes a finding."""
        outcome = UnitOutcome()
        for index, case in zip(unit.cases, cases, strict=True):
            response = case.call(**target.call_kwargs())
            exchange = _exchange(response, case.operation.label, unit.name, index, target)
            outcome.exchanges.append(exchange)
            for check, message in self._failures(case, response, target):
                outcome.findings.append(
                    Finding(
                        operation=case.operation.label,
                        check=check,
                        message=message,
                        unit=unit.name,
                        history=tuple(outcome.exchanges),
                        own=1,
                        extra={"case": case},
                    )
                )
        return outcome

    def run_stateful(self, unit: Unit, target: Target, *, steps: int) -> UnitOutcome:
        """Run ``unit.count`` sequences of the document's state machine against one app."""
        from hypothesis import HealthCheck, Phase, settings
        from schemathesis.generation.stateful import run_state_machine_as_test

        outcome = UnitOutcome()
        fuzz = self
        state = {"sequence": -1, "start": 0}

        chosen = {op.label for op in self.operations} - set(self.skipped)
        # Only the chosen operations, and none Schemathesis cannot draw for: one such
        # operation would end every sequence that reaches it with a generation error.
        base = self.raw.include(func=lambda ctx: ctx.operation.label in chosen).as_state_machine()

        class Machine(base):  # type: ignore[misc,valid-type]
            rule_order_seed = unit.seed

            def setup(self) -> None:
                state["sequence"] += 1
                state["start"] = len(outcome.exchanges)

            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                return target.call_kwargs()

            def validate_response(self, response: Any, case: Any, **_kwargs: Any) -> None:
                exchange = _exchange(
                    response, case.operation.label, unit.name, state["sequence"], target
                )
                outcome.exchanges.append(exchange)
                for check, message in fuzz._failures(case, response, target):
                    outcome.findings.append(
                        Finding(
                            operation=case.operation.label,
                            check=check,
                            message=message,
                            unit=unit.name,
                            history=tuple(outcome.exchanges),
                            own=len(outcome.exchanges) - state["start"],
                            extra={"case": case},
                        )
                    )

        Machine._hypothesis_internal_use_seed = unit.seed  # what @seed sets
        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=unit.count,
                stateful_step_count=steps,
                database=None,
                phases=[Phase.generate],
                deadline=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            ),
        )
        return outcome

    def _failures(self, case: Any, response: Any, target: Target) -> Iterator[tuple[str, str]]:
        from schemathesis.core.failures import Failure, FailureGroup

        try:
            case.validate_response(
                response, checks=self.checks, transport_kwargs=target.call_kwargs()
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                yield _check_name(failure), _failure_text(failure)
        except Failure as failure:
            yield _check_name(failure), _failure_text(failure)

    def fails_again(self, case: Any, target: Target, checks: Collection[str]) -> bool:
        """Send the failing case again to ``target``; True when one of ``checks`` fails again."""
        response = case.call(**target.call_kwargs())
        return any(name in checks for name, _ in self._failures(case, response, target))


@dataclass
class Target:
    """Where a unit's requests go: the app's base URL, a session, the flows' auth."""

    base_url: str
    session: requests.Session
    auth: Any = None
    #: Called with each exchange as it completes (endpoint coverage, the flow's log).
    on_exchange: Callable[[Exchange, float], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"base_url": self.base_url, "session": self.session}
        if self.auth is not None:
            kwargs["auth"] = self.auth
        return kwargs


def send_exchanges(exchanges: Sequence[Exchange], target: Target) -> list[int]:
    """Replay recorded exchanges to ``target`` byte for byte; returns the statuses."""
    statuses = []
    for exchange in exchanges:
        response = target.session.request(
            exchange.method,
            target.base_url.rstrip("/") + exchange.path,
            headers=dict(exchange.headers),
            data=exchange.body or None,
            auth=target.auth,
            timeout=30,
            allow_redirects=False,
        )
        statuses.append(response.status_code)
        if target.on_exchange is not None:
            target.on_exchange(exchange, response.elapsed.total_seconds())
    return statuses


def load_schema(
    document: Mapping[str, Any], operations: Sequence[str], checks: Sequence[str]
) -> FuzzSchema:
    """The app's document as a :class:`FuzzSchema`; a document Schemathesis rejects raises."""
    return FuzzSchema(document, operations, checks)


def _collector(strategy: Any, count: int, seed: int, got: list[Any]) -> Callable[[], None]:
    """A Hypothesis test that only collects the cases it is given (no request is sent)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def collect(case: Any) -> None:
        got.append(case)

    return collect


def _matches(op: Any, pattern: str) -> bool:
    operation_id = (op.definition.raw or {}).get("operationId", "") if op.definition else ""
    return pattern.lower() in op.label.lower() or pattern == operation_id


def _check_functions(names: Sequence[str]) -> list[Any]:
    from schemathesis import checks as builtin
    from schemathesis.specs.openapi import checks as openapi

    functions = []
    for name in names:
        function = getattr(openapi, name, None) or getattr(builtin, name, None)
        if function is None:
            raise ValueError(name)
        functions.append(function)
    return functions


def _check_name(failure: Any) -> str:
    names = getattr(type(failure), "checks", ()) or ()
    return str(names[0]) if names else str(getattr(failure, "title", type(failure).__name__))


def _failure_text(failure: Any) -> str:
    title = str(getattr(failure, "title", "") or "")
    message = str(getattr(failure, "message", "") or "")
    return f"{title}: {message}".strip(": ").strip() if message else title


def _exchange(response: Any, operation: str, unit: str, sequence: int, target: Target) -> Exchange:
    request = response.request
    parts = urlsplit(str(request.url))
    base_path = urlsplit(target.base_url).path.rstrip("/")
    path = parts.path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    if parts.query:
        path += "?" + parts.query
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = tuple(
        (str(k), str(v)) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
    )
    exchange = Exchange(
        method=str(request.method),
        path=path,
        headers=headers,
        body=bytes(body),
        status=int(response.status_code),
        response_body=response.content[:_BODY_KEPT].decode("utf-8", "replace"),
        operation=operation,
        unit=unit,
        sequence=sequence,
    )
    if target.on_exchange is not None:
        target.on_exchange(exchange, float(response.elapsed))
    return exchange
