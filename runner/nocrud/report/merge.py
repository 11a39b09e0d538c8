"""``nocrud report merge``: the results of CI shards joined into one run.

Each shard job writes its own ``--json`` (and ``--junit``); a later job merges them so
the pipeline shows one report. JSON files merge as values: one
:class:`~nocrud.results.RunResult` with every shard's flows, the earliest start, the
span to the last end as wall time, the parallelism added up. The merged run is then
written by the ordinary reporters, so it reads like any run. JUnit files from tools
that only kept XML merge as XML: every ``<testcase>`` under one ``<testsuite>`` with
the counts recomputed. A merge refuses what would make a report lie: runs of
different projects, shards of different plans (see :class:`~nocrud.results.ShardPlan`),
the same flow in two files, a set of shards with one missing, or a planned flow that
no shard ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from nocrud.report.json_report import read_json
from nocrud.results import RunResult

__all__ = ["MergeError", "merge_junit", "merge_runs", "missing_flows", "read_runs"]


class MergeError(ValueError):
    """The files cannot be merged into one honest report; the message says which and why."""


def read_runs(paths: Sequence[Path]) -> list[tuple[Path, RunResult]]:
    """Read results files, each with its path (for messages).

    Raises:
        MergeError: A file is missing or not a nocrud results file.
    """
    runs: list[tuple[Path, RunResult]] = []
    for path in paths:
        try:
            runs.append((path, read_json(path)))
        except OSError as exc:
            raise MergeError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
        except ValueError as exc:
            raise MergeError(str(exc)) from exc
    return runs


def merge_runs(runs: Sequence[tuple[Path, RunResult]], *, allow_missing: bool = False) -> RunResult:
    """One run holding every flow of ``runs``.

    Args:
        runs: ``(path, run)`` pairs, e.g. from :func:`read_runs`.
        allow_missing: Merge a set of shards even when some shard's file is absent.

    Raises:
        MergeError: No runs; different projects; a flow in two files; a shard missing.
    """
    if not runs:
        raise MergeError("no results files to merge: pass the shards' --json files")
    projects = {run.project for _, run in runs}
    if len(projects) > 1:
        listed = ", ".join(f"{path} ({run.project})" for path, run in runs)
        raise MergeError(
            f"the files are runs of different projects: {listed}: merge one project's shards"
        )
    seen: dict[str, Path] = {}
    for path, run in runs:
        for flow in run.flows:
            if flow.name in seen:
                raise MergeError(
                    f"flow {flow.name!r} is in both {seen[flow.name]} and {path}: the shards "
                    "overlap (a retried job's old file?): pass one file per shard"
                )
            seen[flow.name] = path
    _check_one_plan(runs)
    if not allow_missing:
        lost = missing_flows(runs)
        _check_complete(runs, lost)
        if lost:
            raise MergeError(
                f"{len(lost)} planned flow(s) ran in no shard: {', '.join(lost)}: a shard's "
                "job failed before the run, or its file is not among these; pass every "
                "shard's file, or --allow-missing to merge what is here"
            )
    ordered = sorted(runs, key=lambda item: _shard_index(item[1]))
    started = min(run.started_at for _, run in runs)
    ended = max(run.started_at + run.wall_time for _, run in runs)
    first = ordered[0][1]
    return RunResult(
        run_id="+".join(run.run_id for _, run in ordered),
        project=first.project,
        flows=tuple(flow for _, run in ordered for flow in run.flows),
        started_at=started,
        wall_time=ended - started,
        parallel=sum(run.parallel for _, run in runs),
        interrupted=any(run.interrupted for _, run in runs),
        nocrud_version=first.nocrud_version,
    )


def missing_flows(runs: Sequence[tuple[Path, RunResult]]) -> list[str]:
    """The planned flows (of the shards' recorded plan) that no file holds, in plan order."""
    ran = {flow.name for _, run in runs for flow in run.flows}
    planned: dict[str, None] = {}
    for _, run in runs:
        if run.plan is not None:
            planned |= dict.fromkeys(run.plan.flows)
    return [name for name in planned if name not in ran]


def _check_one_plan(runs: Sequence[tuple[Path, RunResult]]) -> None:
    """Every shard that recorded a plan recorded the same one."""
    plans = {run.plan.fingerprint for _, run in runs if run.plan is not None}
    if len(plans) <= 1:
        return
    listed = ", ".join(
        f"{path} (plan {run.plan.fingerprint}: {len(run.plan.flows)} flow(s) over "
        f"{run.plan.total} shard(s), durations {' '.join(run.plan.durations) or 'none'})"
        for path, run in runs
        if run.plan is not None
    )
    raise MergeError(
        f"the files are shards of different plans: {listed}: every job must select the "
        "same flows, read the same --durations file and use the same N (docs/ci/sharding.md)"
    )


def _shard_index(run: RunResult) -> int:
    index, _, _ = run.shard.partition("/")
    return int(index) if index.isdigit() else 0


def _check_complete(runs: Sequence[tuple[Path, RunResult]], lost: Sequence[str]) -> None:
    """Every shard of an ``I/N`` set is present exactly once; ``lost`` names what none ran."""
    sharded = [(path, run.shard) for path, run in runs if run.shard]
    if not sharded:
        return
    totals = {shard.partition("/")[2] for _, shard in sharded}
    if len(totals) > 1:
        listed = ", ".join(f"{path} ({shard})" for path, shard in sharded)
        raise MergeError(f"the files are shards of different splits: {listed}")
    total = int(totals.pop())
    have: dict[int, Path] = {}
    for path, shard in sharded:
        index = int(shard.partition("/")[0])
        if index in have:
            raise MergeError(f"shard {shard} is in both {have[index]} and {path}")
        have[index] = path
    missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in have]
    if missing:
        flows = f"; their planned flow(s) ran nowhere: {', '.join(lost)}" if lost else ""
        raise MergeError(
            f"shard(s) {', '.join(missing)} missing{flows}: their jobs wrote no results (did "
            "they fail before the run?); pass every shard's file, or --allow-missing to merge "
            "what is here"
        )


def merge_junit(paths: Sequence[Path], out: Path) -> int:
    """Join JUnit XML files into one ``<testsuite>``; return how many test cases it holds.

    Raises:
        MergeError: A file is missing or not XML.
    """
    cases: list[ET.Element] = []
    times: list[float] = []
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - our own CI artifacts
        except (OSError, ET.ParseError) as exc:
            raise MergeError(f"{path}: not a readable JUnit XML file ({exc})") from exc
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for suite in suites:
            times.append(float(suite.get("time", "0") or 0))
            cases.extend(suite.findall("testcase"))
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "errors": str(sum(1 for c in cases if c.find("error") is not None)),
        "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
        # Shards run side by side: the longest one is the pipeline's wait.
        "time": f"{max(times, default=0.0):.3f}",
    }
    root = ET.Element("testsuites", counts)
    suite = ET.SubElement(root, "testsuite", {"name": "nocrud", **counts})
    suite.extend(cases)
    ET.indent(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return len(cases)
