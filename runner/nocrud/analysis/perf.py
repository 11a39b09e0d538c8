"""Request timings per endpoint, and their comparison with a stored baseline.

``nocrud up --perf`` turns every request the flows made (their
:class:`~nocrud.results.RequestRecord` values) into ``.nocrud/perf/<project>/last.json``:
per endpoint (``GET /api/sites/{id}``) the count, p50, p95, mean and max in
milliseconds and the samples, and the same per flow. ``nocrud perf --baseline``
copies it to ``baseline.json``; ``nocrud perf`` compares the two and says which
endpoints regressed: p50 or p95 slower by more than a threshold percentage *and*
by more than a small absolute delta, so sub-millisecond jitter is not a regression.

Endpoints are named by :func:`nocrud.analysis.coverage.endpoint_of`: the client's
``endpoint=`` when given, else the OpenAPI template the path matches, else the path
with numeric and UUID segments replaced by ``{id}``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nocrud.analysis.coverage import TemplateMatcher, endpoint_of, operations
from nocrud.errors import UsageError
from nocrud.results import RunResult

__all__ = [
    "BASELINE_FILE",
    "LAST_FILE",
    "PERF_DIR",
    "Comparison",
    "EndpointTiming",
    "PerfError",
    "collect_timings",
    "compare",
    "percentile",
    "read_timings",
    "regressions",
    "save_baseline",
    "write_timings",
]

#: Where timings live, inside ``.nocrud/``.
PERF_DIR = "perf"
LAST_FILE = "last.json"
BASELINE_FILE = "baseline.json"
SCHEMA = "nocrud-perf/1"


class PerfError(UsageError):
    """Timings cannot be read or compared; the message says what to run first."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, like numpy's default.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class EndpointTiming:
    """Summary of one endpoint's request times, in milliseconds."""

    endpoint: str
    count: int
    p50: float
    p95: float
    mean: float
    max: float

    @classmethod
    def of(cls, endpoint: str, samples_ms: Sequence[float]) -> EndpointTiming:
        """Summarise samples (milliseconds)."""
        return cls(
            endpoint=endpoint,
            count=len(samples_ms),
            p50=percentile(samples_ms, 50),
            p95=percentile(samples_ms, 95),
            mean=sum(samples_ms) / len(samples_ms),
            max=max(samples_ms),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "mean_ms": round(self.mean, 3),
            "max_ms": round(self.max, 3),
        }

    @classmethod
    def from_dict(cls, endpoint: str, data: Mapping[str, Any]) -> EndpointTiming:
        return cls(
            endpoint=endpoint,
            count=int(data["count"]),
            p50=float(data["p50_ms"]),
            p95=float(data["p95_ms"]),
            mean=float(data.get("mean_ms", 0.0)),
            max=float(data.get("max_ms", 0.0)),
        )


def collect_timings(run: RunResult, document: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``last.json`` document of a run: per endpoint, and per flow and endpoint.

    Args:
        run: The run's results.
        document: The app's OpenAPI document, to name endpoints by its templates.
    """
    matcher = TemplateMatcher(op.path for op in operations(document)) if document else None
    overall: dict[str, list[float]] = {}
    per_flow: dict[str, dict[str, list[float]]] = {}
    for flow in run.flows:
        for record in flow.requests:
            endpoint = endpoint_of(record, matcher)
            sample = record.duration * 1000
            overall.setdefault(endpoint, []).append(sample)
            per_flow.setdefault(flow.name, {}).setdefault(endpoint, []).append(sample)
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "project": run.project,
        "started_at": run.started_at,
        "endpoints": {
            endpoint: EndpointTiming.of(endpoint, samples).to_dict()
            | {"samples_ms": [round(s, 3) for s in samples]}
            for endpoint, samples in sorted(overall.items())
        },
        "flows": {
            name: {
                endpoint: EndpointTiming.of(endpoint, samples).to_dict()
                for endpoint, samples in sorted(endpoints.items())
            }
            for name, endpoints in per_flow.items()
        },
    }


def write_timings(
    run: RunResult, directory: Path, document: Mapping[str, Any] | None = None
) -> Path:
    """Write ``last.json`` of ``run`` into ``directory`` (``.nocrud/perf``); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / LAST_FILE
    target.write_text(json.dumps(collect_timings(run, document), indent=1))
    return target


def read_timings(path: Path) -> dict[str, EndpointTiming]:
    """Per-endpoint timings from a ``last.json`` or ``baseline.json``.

    Raises:
        PerfError: The file is missing or not a timings file.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PerfError(f"no timings at {path}: run `nocrud up --perf` first") from None
    except ValueError as exc:
        raise PerfError(f"{path} is not a timings file ({exc}): run `nocrud up --perf`") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PerfError(f"{path} is not a {SCHEMA} timings file: run `nocrud up --perf` again")
    return {
        endpoint: EndpointTiming.from_dict(endpoint, values)
        for endpoint, values in data.get("endpoints", {}).items()
    }


def save_baseline(directory: Path) -> Path:
    """Make the last timings the baseline; returns the baseline's path.

    Raises:
        PerfError: There are no last timings.
    """
    last = directory / LAST_FILE
    read_timings(last)  # refuses a missing or foreign file
    target = directory / BASELINE_FILE
    shutil.copyfile(last, target)
    return target


@dataclass(frozen=True)
class Comparison:
    """One endpoint now and in the baseline.

    Attributes:
        endpoint: ``METHOD template``.
        current: Timings of the last run; None when it did not call the endpoint.
        baseline: Timings of the baseline; None for an endpoint new since.
        regressed: Slower than the baseline beyond the threshold (p50 or p95).
    """

    endpoint: str
    current: EndpointTiming | None
    baseline: EndpointTiming | None
    regressed: bool = False

    @property
    def p50_change(self) -> float | None:
        """Relative change of p50 in percent, None without both sides."""
        if self.current is None or self.baseline is None:
            return None
        return _relative(self.current.p50, self.baseline.p50)

    @property
    def p95_change(self) -> float | None:
        """Relative change of p95 in percent, None without both sides."""
        if self.current is None or self.baseline is None:
            return None
        return _relative(self.current.p95, self.baseline.p95)


def _relative(now: float, before: float) -> float:
    if before <= 0:
        return 0.0 if now <= 0 else math.inf
    return (now - before) / before * 100


def compare(
    current: Mapping[str, EndpointTiming],
    baseline: Mapping[str, EndpointTiming],
    *,
    threshold: float = 25.0,
    min_delta_ms: float = 1.0,
) -> list[Comparison]:
    """Compare timings endpoint by endpoint, sorted by endpoint.

    Args:
        current: The last run's timings.
        baseline: The baseline's timings.
        threshold: Percent by which p50 or p95 may grow before it is a regression.
        min_delta_ms: Growth in milliseconds below which nothing is a regression
            (timer and scheduler jitter on fast endpoints).
    """
    rows: list[Comparison] = []
    for endpoint in sorted(set(current) | set(baseline)):
        now, before = current.get(endpoint), baseline.get(endpoint)
        regressed = False
        if now is not None and before is not None:
            regressed = any(
                _relative(a, b) > threshold and a - b > min_delta_ms
                for a, b in ((now.p50, before.p50), (now.p95, before.p95))
            )
        rows.append(Comparison(endpoint, now, before, regressed))
    return rows


def regressions(rows: Iterable[Comparison]) -> list[Comparison]:
    """The rows that regressed."""
    return [row for row in rows if row.regressed]
