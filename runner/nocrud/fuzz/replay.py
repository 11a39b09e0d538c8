"""Replaying a failure alone in a brand-new environment, and what that says about it.

:func:`classification` is a generator: it yields the exchanges to replay next (each in a
brand-new environment) and is sent back whether the last of them failed the same check
again; it returns the finding with its verdict. Reproducible: the failing unit's own
requests fail from a clean database (then shortened to the fewest that still fail).
Order-dependent: only with requests the environment served before them (then shortened
to the fewest of those). Not reproduced: not even the whole history fails again. The
runner drives every finding's generator in rounds, one replay per finding per round, so
the replays of different findings run in parallel on the workers; :func:`classify`
drives one with a plain callable, for tests. No Docker here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

from nocrud.fuzz.model import Exchange, Finding, Verdict

__all__ = ["Classification", "Replay", "classification", "classify"]

#: Sends the exchanges to a brand-new environment; True when the last fails the same check.
Replay = Callable[[Sequence[Exchange]], bool]
#: Yields exchange sequences to replay, is sent whether each reproduced, returns the verdict.
Classification = Generator[tuple[Exchange, ...], bool, Finding]


def classification(finding: Finding, *, budget: int = 12) -> Classification:
    """Replays that classify ``finding``; at most ``max(budget, 2)`` of them."""
    spent = 0
    limit = max(budget, 2)

    def left() -> bool:
        return spent < limit

    own = finding.own_exchanges
    spent += 1
    if (yield own):
        kept = list(own[:-1])
        # The failing exchange stays; earlier steps of its own sequence go while it still fails.
        index = 0
        while index < len(kept) and left():
            trial = kept[:index] + kept[index + 1 :]
            spent += 1
            if (yield (*trial, own[-1])):
                kept = trial
            else:
                index += 1
        return finding.classified(Verdict.REPRODUCIBLE, (*kept, own[-1]), spent)
    if not finding.before:
        return finding.classified(Verdict.NOT_REPRODUCED, finding.history, spent)
    spent += 1
    if not (yield finding.history):
        return finding.classified(Verdict.NOT_REPRODUCED, finding.history, spent)
    before = list(finding.before)
    # The likeliest cause is one earlier request (the same unique name created before):
    # each one alone first, latest first; then drop them one at a time.
    for single in reversed(before):
        if not left():
            break
        spent += 1
        if (yield (single, *own)):
            return finding.classified(Verdict.ORDER_DEPENDENT, (single, *own), spent)
    kept = before
    index = 0
    while index < len(kept) and left():
        trial = kept[:index] + kept[index + 1 :]
        spent += 1
        if (yield (*trial, *own)):
            kept = trial
        else:
            index += 1
    return finding.classified(Verdict.ORDER_DEPENDENT, (*kept, *own), spent)


def classify(finding: Finding, replay: Replay, *, budget: int = 12) -> Finding:
    """Drive :func:`classification` with ``replay`` until it returns the verdict."""
    steps = classification(finding, budget=budget)
    try:
        candidate = next(steps)
        while True:
            candidate = steps.send(replay(candidate))
    except StopIteration as done:
        result: Finding = done.value
        return result
