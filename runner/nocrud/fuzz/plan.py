"""How a fuzz budget becomes units of work, each run in its own environment.

A unit is what one environment serves: a batch of stateless cases of one operation, or
a batch of stateful sequences. Stateless cases are drawn up front, from one seed, in the
main process (:mod:`~nocrud.fuzz.engine`), then cut into batches here: which case lands
in which environment depends only on the seed and the batch size, never on timing. A
batch amortises an environment's handoff over several cases; a failure found in a batch
is replayed alone anyway, so batching costs no precision. Stateful sequences are batched
too: Hypothesis starts every run with its simplest example, so one sequence per
environment would replay that same sequence in every environment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_CHECKS",
    "KNOWN_CHECKS",
    "FuzzOptions",
    "Unit",
    "batches",
    "derive_seed",
    "plan_units",
]

#: Cases per environment. Measured on the Django example (pool with HUP resets, -j 2, 5-case
#: batches, 105 units): a handoff took a median 0.39 s and a case about 0.13 s, so at 10 cases
#: the handoff is about a quarter of a unit; larger batches save less and make an
#: order-dependent failure's history longer to shorten (docs/fuzz.md).
DEFAULT_BATCH = 10

#: The checks run by default: the issue's five (server errors, undocumented status
#: codes, response schema, content type, invalid input accepted).
DEFAULT_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
    "negative_data_rejection",
)
#: Every check ``--check`` accepts.
KNOWN_CHECKS = (
    *DEFAULT_CHECKS,
    "positive_data_acceptance",
    "response_headers_conformance",
    "use_after_free",
    "ensure_resource_availability",
)


@dataclass(frozen=True)
class FuzzOptions:
    """What ``nocrud fuzz`` was asked to do, beyond the config file."""

    seed: int = 0
    max_examples: int = 20
    batch_size: int = DEFAULT_BATCH
    #: Stateful sequences in all; 0 turns the stateful phase off.
    sequences: int = 10
    #: Steps a stateful sequence takes at most.
    steps: int = 6
    sequence_batch: int = 5
    #: Seconds after which no new unit starts (0: no limit).
    time_budget: float = 0.0
    #: ``METHOD /path`` or operationId substrings; empty means every operation.
    operations: Sequence[str] = ()
    checks: Sequence[str] = DEFAULT_CHECKS
    negative: bool = True
    keep_failed: bool = False
    #: Replays a finding may spend on being minimised (the first two always run).
    replay_budget: int = 12
    auth: str | None = None
    #: Where ``auth`` posts its credentials (``ctx.login``'s ``path``).
    login_path: str = "/api/auth/login"
    setup: str | None = None
    junit: str | None = None
    json: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unit:
    """One environment's worth of work.

    Attributes:
        name: Unique and stable across runs of the same seed, e.g.
            ``POST /items [negative] #2`` or ``stateful #0``.
        kind: ``stateless`` or ``stateful``.
        operation: The operation (stateless only).
        mode: ``positive`` or ``negative`` (stateless only).
        cases: Indexes of the operation's drawn cases this unit sends (stateless only).
        seed: The Hypothesis seed of a stateful unit.
        count: How many sequences a stateful unit runs.
    """

    name: str
    kind: str
    operation: str = ""
    mode: str = ""
    cases: tuple[int, ...] = ()
    seed: int = 0
    count: int = 0


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one part of the run, from the run's seed; stable across processes."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def batches(count: int, size: int) -> list[tuple[int, ...]]:
    """``range(count)`` cut into consecutive batches of at most ``size``."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    return [tuple(range(i, min(i + size, count))) for i in range(0, count, size)]


def plan_units(drawn: dict[tuple[str, str], int], options: FuzzOptions) -> list[Unit]:
    """The units of a run: stateless batches per operation and mode, then stateful batches.

    Args:
        drawn: How many cases were drawn per ``(operation, mode)``, in document order.
        options: The budget, batch sizes and seed.
    """
    units: list[Unit] = []
    for (operation, mode), count in drawn.items():
        for index, cases in enumerate(batches(count, options.batch_size)):
            units.append(
                Unit(
                    name=f"{operation} [{mode}] #{index}",
                    kind="stateless",
                    operation=operation,
                    mode=mode,
                    cases=cases,
                )
            )
    for index, sizes in enumerate(batches(options.sequences, options.sequence_batch)):
        units.append(
            Unit(
                name=f"stateful #{index}",
                kind="stateful",
                seed=derive_seed(options.seed, "stateful", index),
                count=len(sizes),
            )
        )
    return units
