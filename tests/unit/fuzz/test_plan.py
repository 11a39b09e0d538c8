"""Batching: how a budget becomes units (nocrud.fuzz.plan), with no Docker and no Schemathesis."""

from __future__ import annotations

import pytest

from nocrud.fuzz.plan import FuzzOptions, batches, derive_seed, plan_units


def test_batches_cut_in_order_and_keep_every_case() -> None:
    assert batches(7, 3) == [(0, 1, 2), (3, 4, 5), (6,)]
    assert batches(0, 3) == []
    assert [i for b in batches(25, 10) for i in b] == list(range(25))


def test_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        batches(3, 0)


def test_units_per_operation_and_mode_then_stateful() -> None:
    options = FuzzOptions(seed=5, batch_size=4, sequences=7, sequence_batch=3)
    drawn = {("POST /items", "positive"): 10, ("POST /items", "negative"): 3}
    units = plan_units(drawn, options)
    assert [u.name for u in units] == [
        "POST /items [positive] #0",
        "POST /items [positive] #1",
        "POST /items [positive] #2",
        "POST /items [negative] #0",
        "stateful #0",
        "stateful #1",
        "stateful #2",
    ]
    assert units[2].cases == (8, 9)
    assert [u.count for u in units if u.kind == "stateful"] == [3, 3, 1]


def test_same_seed_same_plan_other_seed_other_stateful_seeds() -> None:
    drawn = {("GET /a", "positive"): 5}
    first = plan_units(drawn, FuzzOptions(seed=1, sequences=4))
    again = plan_units(drawn, FuzzOptions(seed=1, sequences=4))
    other = plan_units(drawn, FuzzOptions(seed=2, sequences=4))
    assert first == again
    assert [u.seed for u in first if u.kind == "stateful"] != [
        u.seed for u in other if u.kind == "stateful"
    ]


def test_derived_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(1, "GET /a", "positive") == derive_seed(1, "GET /a", "positive")
    assert derive_seed(1, "GET /a", "positive") != derive_seed(1, "GET /a", "negative")
    assert 0 <= derive_seed(99, "x") < 2**32


def test_no_sequences_no_stateful_unit() -> None:
    units = plan_units({("GET /a", "positive"): 1}, FuzzOptions(sequences=0))
    assert [u.kind for u in units] == ["stateless"]
