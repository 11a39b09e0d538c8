"""CI sharding: which of the selected flows this CI job runs, balanced by recorded durations.

A team whose CI already runs parallel jobs gives each job ``--shard I/N`` (or lets
GitLab's ``parallel:`` set ``CI_NODE_INDEX`` / ``CI_NODE_TOTAL``). Every job sees the
same flows and the same history, so every job computes the same split without talking
to the others: flows are placed longest first, each on the shard with the least work so
far (the greedy "longest processing time" rule), a flow with no recorded duration counts
as the mean of those that have one, and ties go by name. The history is any number of
results files given with ``--durations`` (``--json`` of earlier runs, a merged report);
a later file's duration of a flow replaces an earlier one's. There is no default file:
``.nocrud/last-run.json`` is rewritten by every shard that runs before the next one
starts, so jobs reading it would plan differently. Without ``--durations`` the split is
by name, the same for every job. Each shard records its :class:`~nocrud.results.ShardPlan`
(a fingerprint of the selection, the durations and N, and every planned flow's name),
so ``nocrud report merge`` can refuse parts of different plans and name a lost flow.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from nocrud.errors import UsageError
from nocrud.results import ShardPlan

__all__ = [
    "Shard",
    "ShardError",
    "load_durations",
    "parse_shard",
    "plan",
    "plan_of",
    "select_shard",
    "shard_from_env",
    "shard_plan",
]


class ShardError(UsageError):
    """A ``--shard`` value or a CI variable that does not name a shard (exit 2)."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


@dataclass(frozen=True)
class Shard:
    """Job ``index`` of ``total`` (1-based, as GitLab counts ``CI_NODE_INDEX``)."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str, *, source: str = "--shard") -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; anything else is a :class:`ShardError` naming ``source``."""
    index_text, _, total_text = text.strip().partition("/")
    try:
        index, total = int(index_text), int(total_text)
    except ValueError:
        raise ShardError(
            f"{source}: {text!r} is not a shard: write INDEX/TOTAL with whole numbers, "
            "e.g. --shard 2/4 for the second of four jobs"
        ) from None
    return _checked(index, total, source)


def _checked(index: int, total: int, source: str) -> Shard:
    if total < 1:
        raise ShardError(f"{source}: total {total} must be at least 1, e.g. --shard 1/4")
    if not 1 <= index <= total:
        raise ShardError(
            f"{source}: index {index} is outside 1..{total}: shards count from 1 "
            f"(the first of {total} jobs is 1/{total})"
        )
    return Shard(index, total)


def shard_from_env(environ: Mapping[str, str] | None = None) -> Shard | None:
    """GitLab's ``parallel:`` job: ``CI_NODE_INDEX`` of ``CI_NODE_TOTAL``, or None without them."""
    env = os.environ if environ is None else environ
    index_text, total_text = env.get("CI_NODE_INDEX"), env.get("CI_NODE_TOTAL")
    if not index_text and not total_text:
        return None
    source = f"CI_NODE_INDEX={index_text!r} CI_NODE_TOTAL={total_text!r}"
    try:
        index, total = int(index_text or ""), int(total_text or "")
    except ValueError:
        raise ShardError(
            f"{source}: both must be whole numbers (GitLab sets them for `parallel:` jobs); "
            "unset them or pass --shard I/N"
        ) from None
    return _checked(index, total, source)


def load_durations(paths: Iterable[Path]) -> dict[str, float]:
    """Seconds per flow from results files; missing files are skipped, later files win.

    Raises:
        ShardError: A file exists but is not a nocrud results file.
    """
    durations: dict[str, float] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            flows = data["flows"]
            for flow in flows:
                # A skipped flow's zero says nothing about how long it takes.
                if flow.get("status") == "skipped":
                    continue
                timings = flow.get("timings", {})
                total = sum(float(timings.get(k, 0.0)) for k in ("provision", "run", "teardown"))
                durations[str(flow["name"])] = total
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ShardError(
                f"{path}: cannot read flow durations ({type(exc).__name__}: {exc}): "
                "pass a results file written by `nocrud up --json` or `nocrud report merge`"
            ) from exc
    return durations


def plan(flows: Sequence[N], total: int, durations: Mapping[str, float]) -> list[list[N]]:
    """Split ``flows`` into ``total`` shards of about equal recorded duration.

    Longest first onto the least-loaded shard; unknown flows weigh the mean of the
    known ones (1 s when none is known, which makes the split round-robin by name).
    Within a shard, flows keep their input (discovery) order.

    Returns:
        ``total`` lists; list ``i`` is shard ``i + 1``. Every flow is in exactly one.
    """
    known = [durations[f.name] for f in flows if f.name in durations]
    mean = sum(known) / len(known) if known else 1.0
    weight = {f.name: durations.get(f.name, mean) for f in flows}
    order = {f.name: i for i, f in enumerate(flows)}
    loads = [0.0] * total
    chosen: list[list[N]] = [[] for _ in range(total)]
    for flow in sorted(flows, key=lambda f: (-weight[f.name], f.name)):
        target = min(range(total), key=lambda i: (loads[i], i))
        loads[target] += weight[flow.name]
        chosen[target].append(flow)
    return [sorted(part, key=lambda f: order[f.name]) for part in chosen]


def select_shard(flows: Sequence[N], shard: Shard, durations: Mapping[str, float]) -> list[N]:
    """The flows of ``shard`` (see :func:`plan`)."""
    return plan(flows, shard.total, durations)[shard.index - 1]


def shard_plan(
    flows: Sequence[_Named],
    total: int,
    durations: Mapping[str, float],
    sources: Sequence[Path] = (),
) -> ShardPlan:
    """The plan every job of a split shares: its fingerprint and every planned flow.

    The fingerprint hashes what decides the split (the selected flows, the durations
    used for them, to the millisecond, and ``total``), not file names or times: two jobs
    fed the same inputs agree, whichever path they read them from.
    """
    names = sorted(f.name for f in flows)
    used = {name: round(durations[name], 3) for name in names if name in durations}
    key = json.dumps({"flows": names, "durations": used, "total": total}, sort_keys=True)
    return ShardPlan(
        fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16],
        total=total,
        flows=tuple(f.name for f in flows),
        durations=tuple(str(p) for p in sources),
    )


def plan_of(
    flows: Sequence[N], shard: Shard, sources: Sequence[Path]
) -> tuple[list[N], ShardPlan, dict[str, float]]:
    """This shard's flows, the plan they belong to, and the durations that balanced it.

    The one place the split is made from files, for the run and for its recording alike.
    """
    durations = load_durations(sources)
    chosen = select_shard(flows, shard, durations)
    return chosen, shard_plan(flows, shard.total, durations, sources), durations
