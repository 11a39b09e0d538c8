"""Results of a run, as plain values.

A :class:`FlowResult` is what one flow produced: its status, why, how long each
phase took, the app's log lines and, for CRUD flows, one :class:`StepResult`
per step. A :class:`RunResult` gathers them with the run's metadata. Reporters
(terminal, JUnit XML, JSON) only read these values; they never reach back into
Docker or the scheduler. Everything here round-trips through JSON
(:meth:`RunResult.to_dict` / :meth:`RunResult.from_dict`) under a versioned
schema, so a later tool (a dashboard, ``nocrud perf``) can read old runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: Version of the JSON document written by ``--json``. Bump the major part on
#: any change a reader would trip over.
SCHEMA_VERSION = "1.2"


class Status(enum.StrEnum):
    """Outcome of a flow or of one of its steps.

    FAILED means the flow's own expectation did not hold (an ``AssertionError``
    or an unexpected HTTP status). ERROR means something around the flow broke:
    its environment did not come up, a container died, it timed out.
    """

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def ok(self) -> bool:
        """True for outcomes that do not fail a run."""
        return self in (Status.PASSED, Status.SKIPPED)


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each phase of one flow; 0.0 for a phase that never ran."""

    provision: float = 0.0
    run: float = 0.0
    teardown: float = 0.0

    @property
    def total(self) -> float:
        return self.provision + self.run + self.teardown

    def to_dict(self) -> dict[str, float]:
        return {
            "provision": round(self.provision, 6),
            "run": round(self.run, 6),
            "teardown": round(self.teardown, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timings:
        return cls(
            provision=float(data.get("provision", 0.0)),
            run=float(data.get("run", 0.0)),
            teardown=float(data.get("teardown", 0.0)),
        )


@dataclass(frozen=True)
class StepResult:
    """One step of a CRUD flow (``create``, ``read``, ``update``, ``list``, ``delete``...)."""

    name: str
    status: Status
    message: str = ""
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "duration": round(self.duration, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        return cls(
            name=str(data["name"]),
            status=Status(data["status"]),
            message=str(data.get("message", "")),
            duration=float(data.get("duration", 0.0)),
        )


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request a flow made: for timings (``--perf``) and endpoint coverage."""

    method: str
    path: str
    status: int
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration": round(self.duration, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(
            method=str(data["method"]),
            path=str(data["path"]),
            status=int(data["status"]),
            duration=float(data["duration"]),
        )


@dataclass(frozen=True)
class FlowResult:
    """Everything one flow produced. Immutable; build a new one with :func:`dataclasses.replace`."""

    name: str
    status: Status
    message: str = ""
    traceback: str = ""
    timings: Timings = field(default_factory=Timings)
    app_logs: str = ""
    output: str = ""
    steps: tuple[StepResult, ...] = ()
    requests: tuple[RequestRecord, ...] = ()
    kind: str = "flow"
    worker: int = 0
    #: Where the flow ran when not on this machine: the worker's host (Celery backend).
    host: str = ""
    #: 1, or 2 and more when an earlier attempt did not count (its worker was lost).
    attempt: int = 1
    #: Why earlier attempts did not count, one line each; empty on a first attempt.
    retried: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status.value,
            "message": self.message,
            "traceback": self.traceback,
            "timings": self.timings.to_dict(),
            "app_logs": self.app_logs,
            "output": self.output,
            "steps": [s.to_dict() for s in self.steps],
            "requests": [r.to_dict() for r in self.requests],
            "worker": self.worker,
            "host": self.host,
            "attempt": self.attempt,
            "retried": self.retried,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowResult:
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", "flow")),
            status=Status(data["status"]),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            timings=Timings.from_dict(data.get("timings", {})),
            app_logs=str(data.get("app_logs", "")),
            output=str(data.get("output", "")),
            steps=tuple(StepResult.from_dict(s) for s in data.get("steps", [])),
            requests=tuple(RequestRecord.from_dict(r) for r in data.get("requests", [])),
            worker=int(data.get("worker", 0)),
            host=str(data.get("host", "")),
            attempt=int(data.get("attempt", 1)),
            retried=str(data.get("retried", "")),
        )


@dataclass(frozen=True)
class ShardPlan:
    """The split a CI shard belongs to: every job of one split records the same plan.

    ``fingerprint`` is a hash of the inputs that decide the split (the selected flows,
    the durations read and ``total``): two jobs with the same fingerprint ran parts of
    one plan. ``flows`` names every planned flow of every shard, so a merge can name
    the flows no shard ran.
    """

    fingerprint: str
    total: int
    flows: tuple[str, ...]
    #: The results files the durations were read from (empty: split by name).
    durations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "total": self.total,
            "durations": list(self.durations),
            "flows": list(self.flows),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPlan:
        return cls(
            fingerprint=str(data["fingerprint"]),
            total=int(data["total"]),
            flows=tuple(str(n) for n in data.get("flows", [])),
            durations=tuple(str(p) for p in data.get("durations", [])),
        )


@dataclass(frozen=True)
class RunResult:
    """A whole run: the flows' results plus what identifies the run."""

    run_id: str
    project: str
    flows: tuple[FlowResult, ...]
    started_at: float
    wall_time: float
    parallel: int
    interrupted: bool = False
    nocrud_version: str = ""
    #: ``"I/N"`` when the run was one CI shard (``--shard``), else empty.
    shard: str = ""
    #: Why the run stopped early on its own (a problem every flow would hit), else empty.
    stopped: str = ""
    #: ``stopped`` is the infrastructure going away (the Docker daemon lost, exit 3), not a
    #: configuration problem (exit 2).
    infrastructure: bool = False
    #: The split this shard belongs to (``--shard``), else None.
    plan: ShardPlan | None = None

    def count(self, status: Status) -> int:
        return sum(1 for f in self.flows if f.status is status)

    @property
    def ok(self) -> bool:
        """True when the run should exit 0: not interrupted and no flow failed or errored."""
        return not self.interrupted and not self.stopped and all(f.status.ok for f in self.flows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "project": self.project,
            "nocrud_version": self.nocrud_version,
            "started_at": self.started_at,
            "wall_time": round(self.wall_time, 6),
            "parallel": self.parallel,
            "interrupted": self.interrupted,
            "shard": self.shard,
            "stopped": self.stopped,
            "infrastructure": self.infrastructure,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "totals": {s.value: self.count(s) for s in Status} | {"total": len(self.flows)},
            "flows": [f.to_dict() for f in self.flows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        version = str(data.get("schema_version", ""))
        if version.split(".", maxsplit=1)[0] != SCHEMA_VERSION.split(".", maxsplit=1)[0]:
            raise ValueError(
                f"results file has schema_version {version!r}; this nocrud reads "
                f"{SCHEMA_VERSION.split('.', maxsplit=1)[0]}.x: re-run the flows with this version"
            )
        return cls(
            run_id=str(data["run_id"]),
            project=str(data["project"]),
            nocrud_version=str(data.get("nocrud_version", "")),
            started_at=float(data["started_at"]),
            wall_time=float(data["wall_time"]),
            parallel=int(data["parallel"]),
            interrupted=bool(data.get("interrupted", False)),
            shard=str(data.get("shard", "")),
            stopped=str(data.get("stopped", "")),
            infrastructure=bool(data.get("infrastructure", False)),
            plan=ShardPlan.from_dict(data["plan"]) if data.get("plan") else None,
            flows=tuple(FlowResult.from_dict(f) for f in data["flows"]),
        )
