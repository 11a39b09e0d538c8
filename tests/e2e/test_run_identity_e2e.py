"""A run findable and countable wherever a user meets it (issue 22), with the real CLI.

* One id: the id `nocrud up` prints is the JSON's and the JUnit's, the label on its
  (kept) Docker objects, and `nocrud serve` opens `/runs/<id>`.
* Two projects in one directory (two configs sharing `.nocrud/`): each console, history
  and `perf` baseline is its own project's; `--all-projects` reads across on purpose.
* Shards run one after another on one machine, each rewriting `.nocrud/last-run.json`,
  still cover every flow exactly once; `report merge` refuses another plan's shard and
  names the flows of a missing shard.

Small flows (a health check each) keep it within CI's budget; every object carries this
session's project label and is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import NOCRUD, Harness, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

FLOWS = """
from nocrud import flow


@flow(tags=["ident"])
def ident_passes(ctx):
    ctx.api.get("/health", expect=200)


@flow(tags=["ident"])
def ident_fails(ctx):
    assert ctx.api.get("/health").data["status"] == "on purpose not ok"


def _shard_flow(number):
    @flow(name=f"shard_{number}", tags=["shard"])
    def health(ctx):
        ctx.api.get("/health", expect=200)

    globals()[f"shard_{number}"] = health


for _number in range(6):
    _shard_flow(_number)
"""
#: The shared machine may start PostgreSQL slowly: a timeout is not what these tests check.
PATIENT = {"timeouts__db_ready": 120, "timeouts__app_ready": 120}


def _config(harness: Harness, name: str = "nocrud.yaml", project: str | None = None) -> Path:
    flows = harness.flows(FLOWS)
    path = write_config(
        harness.dir, project or harness.project, flows__path=str(flows), run__parallel=2, **PATIENT
    )
    return path if name == "nocrud.yaml" else path.rename(harness.dir / name)


def _run_id(output: str) -> str:
    found = re.findall(r"\(run ([0-9a-f]{10})\)", output)
    assert len(found) == 1, output
    return found[0]


@contextlib.contextmanager
def _serve(harness: Harness, config: Path, *extra: str) -> Iterator[str]:
    """`nocrud serve` of ``config`` on a free 127.0.0.1 port; stopped after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOCRUD_SERVE_TOKEN", None)
    log = harness.dir / f"serve-{port}.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            [*NOCRUD, "-c", str(config), "serve", "--port", str(port), *extra],
            cwd=harness.dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(f"{url}/api/meta", timeout=2).ok:
                        break
                assert serve.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "nocrud serve did not answer within 60 s"
                time.sleep(0.2)
            yield url
        finally:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()


def test_a_cli_runs_id_names_it_in_reports_labels_store_and_console(harness: Harness) -> None:
    config = _config(harness)
    proc = harness.run("up", "-m", "ident", "--keep-failed", "--json", "r.json", "--junit", "r.xml")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # ident_fails fails on purpose
    run_id = _run_id(output)
    try:
        kept = harness.client.api.containers(
            all=True, filters={"label": [f"nocrud.project={harness.project}", "nocrud.keep"]}
        )
        assert kept, "the failed flow's environment was not kept: the labels go unchecked"
        assert {c["Labels"]["nocrud.run"] for c in kept} == {run_id}
    finally:
        cleaned = harness.run("clean")
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert harness.leftovers() == []

    assert json.loads((harness.dir / "r.json").read_text())["run_id"] == run_id
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(harness.dir / "r.xml").getroot().iter("property")
    }
    assert props["run_id"] == run_id
    with _serve(harness, config) as url:
        page = requests.get(f"{url}/runs/{run_id}", timeout=10)
        assert page.status_code == 200 and run_id in page.text
        run = requests.get(f"{url}/api/runs/{run_id}", timeout=10).json()["run"]
        assert (run["id"], run["nocrud_run_id"], run["trigger"]) == (run_id, run_id, "cli")
        assert (run["status"], run["passed"], run["failed"]) == ("failed", 1, 1)


def test_two_projects_in_one_directory_see_only_their_own_history(harness: Harness) -> None:
    other = f"{harness.project}-b"
    mine = _config(harness, "a.yaml")
    theirs = _config(harness, "b.yaml", project=other)
    try:
        ids = {}
        for config in (mine, theirs, mine):
            proc = harness.run("-c", str(config), "up", "-f", "ident_passes", "--perf")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            ids.setdefault(config.name, []).append(_run_id(proc.stdout))
        assert harness.run("-c", str(mine), "perf", "--baseline").returncode == 0
        # The other project's timings are compared with no baseline, not with this one's.
        compared = harness.run("-c", str(theirs), "perf")
        assert compared.returncode == 0, compared.stdout + compared.stderr
        assert "no baseline yet" in compared.stdout

        with _serve(harness, mine) as url:
            listed = requests.get(f"{url}/api/runs", timeout=10).json()
            assert sorted(r["id"] for r in listed["runs"]) == sorted(ids["a.yaml"])
            history = requests.get(f"{url}/api/flows/ident_passes", timeout=10).json()
            assert {r["project"] for r in history["results"]} == {harness.project}
            foreign = requests.get(f"{url}/api/runs/{ids['b.yaml'][0]}", timeout=10)
            assert foreign.status_code == 404 and other in foreign.text
            # The latest run is compared with this project's previous run, not the other's.
            page = requests.get(f"{url}/runs/{ids['a.yaml'][1]}", timeout=10).text
            assert f'Compared with <a href="/runs/{ids["a.yaml"][0]}">' in page
        with _serve(harness, theirs, "--all-projects") as url:
            listed = requests.get(f"{url}/api/runs", timeout=10).json()
            assert listed["total"] == 3
    finally:
        harness.run("-c", str(theirs), "clean", "--images")
        for kind in ("app", "db"):
            for image in harness.client.images.list(name=f"nocrud/{other}-{kind}"):
                for tag in image.tags:
                    harness.client.images.remove(tag, force=True)
    assert harness.leftovers() == [] and harness.leftovers(other) == []


def _shard(harness: Harness, index: int, *args: str) -> dict[str, Any]:
    out = harness.dir / f"shard-{index}.json"
    proc = harness.run("up", "-m", "shard", "--shard", f"{index}/3", "--json", str(out), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_shards_run_one_after_another_cover_every_flow_once_and_merge_checks_the_plan(
    harness: Harness,
) -> None:
    _config(harness)
    shards = [_shard(harness, index) for index in (1, 2, 3)]
    ran = [f["name"] for shard in shards for f in shard["flows"]]
    everything = [f"shard_{i}" for i in range(6)]
    assert sorted(ran) == everything  # each exactly once, though each run rewrote last-run
    assert len({shard["plan"]["fingerprint"] for shard in shards}) == 1
    assert all(shard["plan"]["flows"] == everything for shard in shards)
    assert all(shard["plan"]["total"] == 3 for shard in shards)
    files = [str(harness.dir / f"shard-{i}.json") for i in (1, 2, 3)]
    merged = harness.run("report", "merge", *files, "--json", "merged.json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "6 passed" in merged.stdout

    # A missing shard: the merge names the flows it would have run.
    missing = harness.run("report", "merge", *files[:2], "--json", "partial.json")
    assert missing.returncode == 2
    lost = ", ".join(f["name"] for f in shards[2]["flows"])
    assert f"shard(s) 3/3 missing; their planned flow(s) ran nowhere: {lost}" in " ".join(
        missing.stdout.split() + missing.stderr.split()
    )
    # A shard of another plan (another selection: here one flow, and nothing left for 3/3).
    other = harness.run("up", "-k", "shard_0", "--shard", "3/3", "--json", "other.json")
    assert other.returncode == 0, other.stdout + other.stderr
    refused = harness.run("report", "merge", *files[:2], "other.json", "--json", "bad.json")
    assert refused.returncode == 2
    said = " ".join(refused.stdout.split() + refused.stderr.split())
    assert "shards of different plans" in said and "other.json (plan " in said
    assert harness.leftovers() == []
