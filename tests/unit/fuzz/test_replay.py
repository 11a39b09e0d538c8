"""Replay classification (nocrud.fuzz.replay) with a fake replay at the provisioning seam.

The fake stands for "send these exchanges to a brand-new environment": it decides from
the exchanges alone whether the failure comes back, as a clean database would.
"""

from __future__ import annotations

from collections.abc import Sequence

from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.fuzz.replay import classification, classify


def ex(method: str, path: str, body: str = "", status: int = 200) -> Exchange:
    return Exchange(method=method, path=path, body=body.encode(), status=status)


def finding(history: Sequence[Exchange], own: int = 1) -> Finding:
    return Finding(
        operation="POST /tags",
        check="not_a_server_error",
        message="Server error",
        unit="u",
        history=tuple(history),
        own=own,
    )


class FakeReplay:
    """Counts replays; ``rule`` says whether a sequence reproduces from a clean database."""

    def __init__(self, rule: object) -> None:
        self.rule = rule
        self.calls: list[tuple[Exchange, ...]] = []

    def __call__(self, exchanges: Sequence[Exchange]) -> bool:
        self.calls.append(tuple(exchanges))
        return bool(self.rule(tuple(exchanges)))  # type: ignore[operator]


def test_fails_alone_is_reproducible_with_one_request() -> None:
    crash = ex("GET", "/stats?per=0", status=500)
    found = finding([ex("GET", "/stats?per=3"), crash])
    replay = FakeReplay(lambda seq: seq[-1] == crash)
    result = classify(found, replay)
    assert result.verdict is Verdict.REPRODUCIBLE
    assert result.minimal == (crash,)
    assert replay.calls == [(crash,)]
    assert result.attempts == 1


def test_duplicate_name_is_order_dependent_with_the_one_request_it_needs() -> None:
    red = ex("POST", "/tags", '{"name": "red"}', 201)
    green = ex("POST", "/tags", '{"name": "green"}', 201)
    again = ex("POST", "/tags", '{"name": "red"}', 500)
    found = finding([red, green, ex("GET", "/stats?per=1"), again])

    def unique(seq: tuple[Exchange, ...]) -> bool:  # the database's unique constraint
        bodies = [e.body for e in seq]
        return bodies.count(again.body) >= 2

    result = classify(found, FakeReplay(unique))
    assert result.verdict is Verdict.ORDER_DEPENDENT
    assert result.minimal == (red, again)


def test_order_dependent_needing_two_earlier_requests_drops_the_rest() -> None:
    a, b, c, d = (ex("POST", f"/x/{i}") for i in "abcd")
    boom = ex("POST", "/boom", status=500)
    found = finding([a, b, c, d, boom])
    rule = FakeReplay(lambda seq: a in seq and c in seq and seq[-1] == boom)
    result = classify(found, rule, budget=20)
    assert result.verdict is Verdict.ORDER_DEPENDENT
    assert result.minimal == (a, c, boom)


def test_stateful_sequence_keeps_only_the_steps_it_needs() -> None:
    create = ex("POST", "/items", '{"name": "a"}', 201)
    read = ex("GET", "/items/1")
    update = ex("PATCH", "/items/1", '{"quantity": 1}', 500)
    found = finding([ex("GET", "/other"), create, read, update], own=3)
    replay = FakeReplay(lambda seq: create in seq and seq[-1] == update)
    result = classify(found, replay)
    assert result.verdict is Verdict.REPRODUCIBLE
    assert result.minimal == (create, update)
    # The earlier request of the environment was never needed, never replayed.
    assert all(ex("GET", "/other") not in call for call in replay.calls)


def test_not_reproduced_even_with_its_history() -> None:
    found = finding([ex("GET", "/a"), ex("GET", "/b", status=500)])
    replay = FakeReplay(lambda seq: False)
    result = classify(found, replay)
    assert result.verdict is Verdict.NOT_REPRODUCED
    assert result.minimal == found.history
    assert len(replay.calls) == 2


def test_alone_and_first_in_its_environment_is_not_replayed_twice() -> None:
    found = finding([ex("GET", "/b", status=500)])
    replay = FakeReplay(lambda seq: False)
    assert classify(found, replay).verdict is Verdict.NOT_REPRODUCED
    assert len(replay.calls) == 1


def test_budget_bounds_the_replays() -> None:
    history = [ex("POST", f"/x/{i}") for i in range(30)] + [ex("POST", "/boom", status=500)]
    replay = FakeReplay(lambda seq: len(seq) == len(history))  # only everything reproduces
    result = classify(finding(history), replay, budget=6)
    assert result.verdict is Verdict.ORDER_DEPENDENT
    assert len(replay.calls) == 6
    assert result.minimal == tuple(history)


def test_the_generator_yields_what_the_runner_sends_to_environments() -> None:
    crash = ex("GET", "/x", status=500)
    steps = classification(finding([crash]))
    assert next(steps) == (crash,)
    try:
        steps.send(True)
    except StopIteration as done:
        assert done.value.verdict is Verdict.REPRODUCIBLE
    else:
        raise AssertionError("a reproduced single request needs no more replays")
