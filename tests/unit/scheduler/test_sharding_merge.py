"""``nocrud report merge``: the shards' JSON and JUnit joined into one report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from nocrud.cli.main import main
from nocrud.report import read_json, write_json, write_junit
from nocrud.report.merge import MergeError, merge_runs, read_runs
from nocrud.results import FlowResult, RunResult, ShardPlan, Status, Timings


def shard_run(index: int, total: int, flows: dict[str, Status], *, start: float) -> RunResult:
    return RunResult(
        run_id=f"run{index}",
        project="demo",
        flows=tuple(
            FlowResult(name=name, status=status, timings=Timings(run=2.0))
            for name, status in flows.items()
        ),
        started_at=start,
        wall_time=10.0,
        parallel=2,
        shard=f"{index}/{total}",
    )


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    runs = [
        shard_run(2, 3, {"c": Status.FAILED}, start=105.0),
        shard_run(1, 3, {"a": Status.PASSED, "b": Status.PASSED}, start=100.0),
        shard_run(3, 3, {}, start=101.0),  # more jobs than flows: an empty shard
    ]
    paths = []
    for run in runs:
        path = tmp_path / f"shard-{run.shard[0]}.json"
        write_json(run, path)
        write_junit(run, path.with_suffix(".xml"))
        paths.append(path)
    return paths


def test_merged_run_holds_every_flow_in_shard_order(shards: list[Path]) -> None:
    merged = merge_runs(read_runs(shards))
    assert [f.name for f in merged.flows] == ["a", "b", "c"]
    assert merged.count(Status.FAILED) == 1
    assert not merged.ok
    assert merged.started_at == 100.0
    assert merged.wall_time == 15.0  # first start to last end: shards ran side by side
    assert merged.parallel == 6
    assert merged.run_id == "run1+run2+run3"


def test_cli_writes_json_and_junit_that_read_like_one_run(
    shards: list[Path], tmp_path: Path
) -> None:
    out_json, out_xml = tmp_path / "all.json", tmp_path / "all.xml"
    result = CliRunner().invoke(
        main,
        ["report", "merge", *map(str, shards), "--json", str(out_json), "--junit", str(out_xml)],
    )
    assert result.exit_code == 0, result.output
    assert "merged 3 file(s): 2 passed, 1 failed" in result.output
    assert [f.name for f in read_json(out_json).flows] == ["a", "b", "c"]
    suite = ET.parse(out_xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")


def test_cli_merges_junit_files_alone(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "all.xml"
    xml = [str(p.with_suffix(".xml")) for p in shards]
    result = CliRunner().invoke(main, ["report", "merge", *xml, "--junit", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 test case(s)" in result.output
    root = ET.parse(out).getroot()
    assert root.get("tests") == "3"
    assert root.get("failures") == "1"
    names = [c.get("name") for c in root.iter("testcase")]
    assert sorted(names) == ["a", "b", "c"]


def test_a_missing_shard_is_named(shards: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", "merge", str(shards[0]), str(shards[1]), "--json", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "shard(s) 3/3 missing" in result.output
    assert "--allow-missing" in result.output
    assert merge_runs(read_runs(shards[:2]), allow_missing=True).count(Status.PASSED) == 2


def test_a_flow_in_two_files_is_refused(shards: list[Path], tmp_path: Path) -> None:
    again = tmp_path / "again.json"
    write_json(shard_run(1, 3, {"c": Status.PASSED}, start=1.0), again)
    with pytest.raises(MergeError, match=r"flow 'c' is in both .*shard-2.json and .*again.json"):
        merge_runs(read_runs([shards[0], again]))


def test_runs_of_different_projects_are_refused(shards: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    data = json.loads(shards[2].read_text())
    data["project"] = "shop"
    other.write_text(json.dumps(data))
    with pytest.raises(MergeError, match="different projects"):
        merge_runs(read_runs([shards[0], other]))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["a.json"], "nothing to write: pass --json PATH and/or --junit PATH"),
        (["a.json", "b.xml", "--junit", "o.xml"], "mixed inputs"),
        (["b.xml", "--json", "o.json"], "--json needs the shards' JSON files"),
        (["absent.json", "--json", "o.json"], "absent.json: cannot read it"),
    ],
)
def test_usage_mistakes_say_what_to_do(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.xml").write_text("<testsuites/>")
    result = CliRunner().invoke(main, ["report", "merge", *args])
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output


def test_old_results_without_the_new_fields_still_read() -> None:
    old = {
        "schema_version": "1.0",
        "run_id": "r",
        "project": "demo",
        "started_at": 0,
        "wall_time": 1,
        "parallel": 1,
        "flows": [{"name": "a", "status": "passed", "worker": 2}],
    }
    run = RunResult.from_dict(old)
    assert run.shard == ""
    flow = run.flows[0]
    assert (flow.host, flow.attempt, flow.retried, flow.worker) == ("", 1, "", 2)


def test_the_sharded_pipelines_in_docs_run_a_shard_and_merge() -> None:
    import yaml

    docs = Path(__file__).resolve().parents[3] / "docs" / "ci"
    gitlab = yaml.safe_load((docs / "gitlab-ci-sharded.yml").read_text())
    assert gitlab["api-flows"]["parallel"] == 4
    assert "nocrud report merge" in " ".join(gitlab["merge-reports"]["script"])
    github = yaml.safe_load((docs / "github-actions-sharded.yml").read_text())
    assert github["jobs"]["flows"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    steps = " ".join(str(s.get("run", "")) for s in github["jobs"]["flows"]["steps"])
    assert "--shard ${{ matrix.shard }}/4" in steps
    merge = " ".join(str(s.get("run", "")) for s in github["jobs"]["merge"]["steps"])
    assert "nocrud report merge" in merge


def _planned(path: Path, run: RunResult, fingerprint: str, flows: tuple[str, ...]) -> Path:
    write_json(replace(run, plan=ShardPlan(fingerprint, 3, flows, ("merged.json",))), path)
    return path


def test_shards_of_different_plans_are_refused_naming_each_plan(tmp_path: Path) -> None:
    one = _planned(
        tmp_path / "1.json", shard_run(1, 3, {"a": Status.PASSED}, start=1), "aaaa", ("a", "b")
    )
    two = _planned(
        tmp_path / "2.json", shard_run(2, 3, {"b": Status.PASSED}, start=1), "bbbb", ("a", "b")
    )
    result = CliRunner().invoke(
        main,
        ["report", "merge", str(one), str(two), "--allow-missing", "--json", str(tmp_path / "o")],
    )
    assert result.exit_code == 2, result.output
    assert "shards of different plans" in result.output
    assert "plan aaaa: 2 flow(s) over 3 shard(s), durations merged.json" in result.output
    assert "plan bbbb" in result.output and "Traceback" not in result.output


def test_planned_flows_no_shard_ran_are_named(tmp_path: Path) -> None:
    planned = ("a", "b", "c", "d")
    one = _planned(
        tmp_path / "1.json", shard_run(1, 3, {"a": Status.PASSED}, start=1), "p", planned
    )
    two = _planned(
        tmp_path / "2.json", shard_run(2, 3, {"b": Status.PASSED}, start=1), "p", planned
    )
    three = _planned(
        tmp_path / "3.json", shard_run(3, 3, {"d": Status.FAILED}, start=1), "p", planned
    )
    with pytest.raises(MergeError, match=r"1 planned flow\(s\) ran in no shard: c: "):
        merge_runs(read_runs([one, two, three]))
    result = CliRunner().invoke(
        main,
        ["report", "merge", str(one), str(two), "--allow-missing", "--json", str(tmp_path / "o")],
    )
    assert result.exit_code == 0, result.output
    assert "not in any file (2 planned flow(s)): c, d" in result.output


def test_the_plan_travels_in_json_and_junit(tmp_path: Path) -> None:
    run = shard_run(1, 2, {"a": Status.PASSED}, start=1)
    path = _planned(tmp_path / "1.json", run, "f00d", ("a", "b"))
    assert read_json(path).plan == ShardPlan("f00d", 3, ("a", "b"), ("merged.json",))
    write_junit(read_json(path), tmp_path / "1.xml")
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(tmp_path / "1.xml").getroot().iter("property")
    }
    assert (props["plan"], props["plan.shards"], props["plan.flows"]) == ("f00d", "3", "a b")


def test_a_missing_shard_names_the_planned_flows_it_would_have_run(tmp_path: Path) -> None:
    planned = ("a", "b", "c")
    one = _planned(
        tmp_path / "1.json", shard_run(1, 3, {"a": Status.PASSED}, start=1), "p", planned
    )
    two = _planned(
        tmp_path / "2.json", shard_run(2, 3, {"b": Status.PASSED}, start=1), "p", planned
    )
    with pytest.raises(
        MergeError, match=r"shard\(s\) 3/3 missing; their planned flow\(s\) ran nowhere: c: "
    ):
        merge_runs(read_runs([one, two]))
