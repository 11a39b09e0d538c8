"""CI sharding: parsing I/N and GitLab's variables, and the duration-balanced split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nocrud.results import FlowResult, RunResult, Status, Timings
from nocrud.sharding import (
    Shard,
    ShardError,
    load_durations,
    parse_shard,
    plan,
    plan_of,
    select_shard,
    shard_from_env,
    shard_plan,
)


@dataclass(frozen=True)
class Named:
    name: str


def names(parts: list[list[Named]]) -> list[list[str]]:
    return [[f.name for f in part] for part in parts]


def test_parse_shard_reads_index_of_total() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert str(parse_shard(" 1/1 ")) == "1/1"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2", "write INDEX/TOTAL"),
        ("a/4", "write INDEX/TOTAL"),
        ("0/4", "index 0 is outside 1..4: shards count from 1"),
        ("5/4", "index 5 is outside 1..4"),
        ("1/0", "total 0 must be at least 1"),
    ],
)
def test_parse_shard_names_the_option_and_the_fix(text: str, says: str) -> None:
    with pytest.raises(ShardError, match="--shard") as caught:
        parse_shard(text)
    assert says in str(caught.value)
    assert caught.value.exit_code == 2


def test_gitlab_parallel_variables_name_the_shard() -> None:
    assert shard_from_env({"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "5"}) == Shard(3, 5)
    assert shard_from_env({}) is None
    with pytest.raises(ShardError, match=r"CI_NODE_INDEX='x'.*whole numbers"):
        shard_from_env({"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "5"})
    with pytest.raises(ShardError, match=r"index 6 is outside 1\.\.5"):
        shard_from_env({"CI_NODE_INDEX": "6", "CI_NODE_TOTAL": "5"})


def test_longest_first_onto_the_least_loaded_shard() -> None:
    flows = [Named(n) for n in "abcdef"]
    durations = {"a": 10.0, "b": 8.0, "c": 6.0, "d": 4.0, "e": 3.0, "f": 1.0}
    parts = plan(flows, 2, durations)
    loads = [sum(durations[f.name] for f in part) for part in parts]
    # a and b open the two shards; c, d, e, f each go to the lighter one (ties: the first).
    assert names(parts) == [["a", "d", "e"], ["b", "c", "f"]]
    assert loads == [17.0, 15.0]


def test_every_flow_lands_in_exactly_one_shard_in_discovery_order() -> None:
    flows = [Named(f"flow{i:02d}") for i in range(23)]
    durations = {f.name: float(i % 7 + 1) for i, f in enumerate(flows)}
    parts = plan(flows, 4, durations)
    together = [f.name for part in parts for f in part]
    assert sorted(together) == [f.name for f in flows]
    for part in parts:
        assert [f.name for f in part] == sorted(f.name for f in part)
    loads = [sum(durations[f.name] for f in part) for part in parts]
    assert max(loads) - min(loads) <= max(durations.values())


def test_flows_without_history_weigh_the_mean() -> None:
    flows = [Named("slow"), Named("new1"), Named("new2"), Named("quick")]
    # Mean of the known ones is 5 s: the two new flows share a shard against "slow".
    parts = plan(flows, 2, {"slow": 9.0, "quick": 1.0})
    assert names(parts) == [["slow", "quick"], ["new1", "new2"]]


def test_no_history_splits_round_robin_by_name() -> None:
    flows = [Named(n) for n in ("d", "b", "a", "c")]
    assert names(plan(flows, 2, {})) == [["a", "c"], ["d", "b"]]


def test_more_shards_than_flows_leaves_some_empty() -> None:
    assert names(plan([Named("only")], 3, {})) == [["only"], [], []]
    assert select_shard([Named("only")], Shard(3, 3), {}) == []


def test_each_job_computes_the_same_split_on_its_own() -> None:
    flows = [Named(f"f{i}") for i in range(10)]
    durations = {f"f{i}": float((i * 37) % 11) for i in range(10)}
    chosen = [select_shard(flows, Shard(i, 3), durations) for i in (1, 2, 3)]
    assert chosen == plan(flows, 3, durations)


def _results_file(path: Path, flows: dict[str, tuple[Status, float]]) -> Path:
    run = RunResult(
        run_id="r1",
        project="demo",
        flows=tuple(
            FlowResult(name=name, status=status, timings=Timings(provision=1.0, run=secs))
            for name, (status, secs) in flows.items()
        ),
        started_at=0.0,
        wall_time=1.0,
        parallel=1,
    )
    path.write_text(json.dumps(run.to_dict()))
    return path


def test_durations_come_from_results_files_later_ones_winning(tmp_path: Path) -> None:
    old = _results_file(
        tmp_path / "old.json", {"a": (Status.PASSED, 4.0), "b": (Status.FAILED, 2.0)}
    )
    new = _results_file(
        tmp_path / "new.json", {"a": (Status.PASSED, 9.0), "c": (Status.SKIPPED, 0.0)}
    )
    durations = load_durations([old, new, tmp_path / "absent.json"])
    # total = provision + run; a skipped flow teaches nothing.
    assert durations == {"a": 10.0, "b": 3.0}


def test_a_file_that_is_not_results_says_what_to_pass(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ShardError, match=r"bad.json: cannot read flow durations.*nocrud up --json"):
        load_durations([bad])


def test_a_plan_is_the_same_for_every_job_fed_the_same_inputs(tmp_path: Path) -> None:
    flows = [Named(f"f{i}") for i in range(6)]
    history = _results_file(tmp_path / "merged.json", {"f1": (Status.PASSED, 5.0)})
    copy = tmp_path / "elsewhere.json"
    copy.write_text(history.read_text())
    parts = [plan_of(flows, Shard(i, 3), [history]) for i in (1, 2, 3)]
    assert len({p.fingerprint for _, p, _ in parts}) == 1
    assert sorted(f.name for chosen, _, _ in parts for f in chosen) == [f.name for f in flows]
    first = parts[0][1]
    assert first.flows == tuple(f.name for f in flows)
    assert first.total == 3 and first.durations == (str(history),)
    # The same durations from another path: the same plan. Other inputs: another plan.
    assert plan_of(flows, Shard(1, 3), [copy])[1].fingerprint == first.fingerprint
    assert shard_plan(flows, 3, {}).fingerprint != first.fingerprint
    assert shard_plan(flows, 2, {"f1": 6.0}).fingerprint != first.fingerprint
    assert shard_plan(flows[:5], 3, {"f1": 6.0}).fingerprint != first.fingerprint


def test_without_durations_the_split_is_by_name_whatever_last_run_says(tmp_path: Path) -> None:
    flows = [Named(f"f{i}") for i in range(6)]
    chosen, plan_, durations = plan_of(flows, Shard(1, 3), [])
    assert durations == {} and plan_.durations == ()
    assert [f.name for f in chosen] == ["f0", "f3"]
