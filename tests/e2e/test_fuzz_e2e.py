"""``nocrud fuzz`` through the real CLI on tests/e2e/strangers/fuzzbugs (issue 23).

The app has four seeded bugs (see its module docstring); one run finds each with the
verdict a clean database gives it, in every report form, and a second run with the same
seed finds the same. The module shares one built project (images built once, by the
first run) and removes it at the end; a SIGKILL mid-fuzz leaves nothing 15 s later.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NOCRUD, PROJECT, labelled, run_nocrud

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1800)]

APP = Path(__file__).resolve().parent / "strangers" / "fuzzbugs"
FUZZ_PROJECT = f"{PROJECT}-fuzz"
#: Small and fixed: enough for each seeded bug at this seed, about 20 s a run here.
BUDGET = ("--seed", "3", "-j", "2", "--max-examples", "10", "--sequences", "6")


@pytest.fixture(scope="module")
def app(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A copy of the app under this session's project name; its images removed after."""
    root = tmp_path_factory.mktemp("fuzzbugs")
    shutil.copytree(APP, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".nocrud"))
    config = root / "nocrud.yaml"
    data = yaml.safe_load(config.read_text())
    data["project"] = FUZZ_PROJECT
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    yield root
    run_nocrud("clean", "--all", "--images", cwd=root, timeout=300)
    for image in docker_client.images.list(filters={"label": f"nocrud.project={FUZZ_PROJECT}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def first(app: Path) -> subprocess.CompletedProcess[str]:
    """One fuzz run with every report form."""
    return run_nocrud(
        "fuzz",
        *BUDGET,
        "--junit",
        "out/fuzz.xml",
        "--json",
        "out/fuzz.json",
        cwd=app,
        timeout=1200,
    )


def _findings(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads(path.read_text())
    return {(c["operation"], c["check"]): c for c in data["test_cases"]}


def _steps(case: dict[str, Any]) -> list[str]:
    return [f"{e['method']} {e['path']} {e['body']}".strip() for e in case["finding"]["minimal"]]


def test_each_seeded_bug_is_found_with_its_verdict(
    first: subprocess.CompletedProcess[str], app: Path
) -> None:
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    cases = _findings(app / "out" / "fuzz.json")
    failed = {key for key, case in cases.items() if case["status"] == "failed"}
    # Bug 1: a 500 on one input, alone, from a clean database.
    stats = cases[("GET /stats", "not_a_server_error")]
    assert stats["finding"]["verdict"] == "reproducible"
    assert _steps(stats) == ["GET /stats?per=0"]
    # Bug 2: a response that breaks its schema.
    settings = cases[("GET /settings", "response_schema_conformance")]
    assert settings["finding"]["verdict"] == "reproducible"
    # Bug 3: only create-then-update reaches it (through the document's links).
    patch = cases[("PATCH /items/{id}", "not_a_server_error")]
    assert patch["finding"]["verdict"] == "reproducible"
    steps = _steps(patch)
    assert len(steps) == 2 and steps[0].startswith("POST /items ")
    assert steps[1].startswith("PATCH /items/1 ")
    # Bug 4: a uniqueness conflict: passes alone, fails after the same name.
    tags = cases[("POST /tags", "not_a_server_error")]
    assert tags["finding"]["verdict"] == "order-dependent"
    first_tag, second_tag = _steps(tags)
    assert first_tag == second_tag and first_tag.startswith("POST /tags ")
    # Nothing else: the app is otherwise correct, so every other case passed.
    assert {op for op, _ in failed} == {
        "GET /stats",
        "GET /settings",
        "PATCH /items/{id}",
        "POST /tags",
    }
    assert all(c["status"] != "flaky" for c in cases.values())
    assert labelled_now(app) == []


def labelled_now(app: Path) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        return labelled(client, FUZZ_PROJECT)
    finally:
        client.close()


def test_each_report_form(first: subprocess.CompletedProcess[str], app: Path) -> None:
    out = first.stdout
    # One block per failure: the check, the verdict, the requests, the response, the log.
    block = out[out.index("FAIL ") :]
    assert re.search(r"FAIL \d+: POST /tags: not_a_server_error \(order-dependent\)", block)
    assert "passes alone in a brand-new environment" in block
    assert "UniqueViolation" in block or "duplicate key" in block  # the app's own log
    assert "UndefinedColumn" in block
    assert "seed: 3 (run again with --seed 3)" in out
    # A curl script per failure, valid shell.
    scripts = sorted((app / ".nocrud" / "fuzz").glob("fail-*.sh"))
    assert scripts and all(
        subprocess.run(["sh", "-n", str(s)], check=False).returncode == 0 for s in scripts
    )
    # JUnit: one case per operation and check.
    suite = ET.parse(app / "out" / "fuzz.xml").getroot().find("testsuite")
    assert suite is not None
    names = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert (f"{FUZZ_PROJECT}.fuzz.GET /stats", "not_a_server_error") in names
    assert int(suite.get("failures", "0")) >= 4
    # The run store has it, with its failures: `nocrud serve` reads this store.
    from nocrud.store import RunFilter, RunStore, default_url

    store = RunStore(default_url(app), migrate=False)
    try:
        runs, _ = store.list_runs(RunFilter(project=FUZZ_PROJECT))
        flows = store.run_flows(runs[-1]["id"])  # the oldest: this module's first run
    finally:
        store.close()
    by_name = {f["name"]: f for f in flows}
    assert by_name["fuzz GET /stats: not_a_server_error"]["status"] == "failed"
    assert by_name["GET /stats [positive] #0"]["status"] == "passed"
    # And `nocrud coverage` reads the fuzz run's requests.
    coverage = run_nocrud("coverage", cwd=app, timeout=120)
    assert coverage.returncode == 0, coverage.stdout + coverage.stderr
    assert re.search(r"GET\s+/stats\s+200 400 500", coverage.stdout), coverage.stdout
    assert "covered 6 of 6 operations" in coverage.stdout


def test_the_same_seed_finds_the_same_and_keep_failed_keeps_one(
    first: subprocess.CompletedProcess[str], app: Path
) -> None:
    again = run_nocrud(
        "fuzz", *BUDGET, "--json", "out/again.json", "--keep-failed", cwd=app, timeout=1200
    )
    out = again.stdout + again.stderr
    assert again.returncode == 1, out

    def shape(path: Path) -> list[Any]:
        return sorted(
            (k, c["status"], c["finding"] and c["finding"]["verdict"], c["finding"] and _steps(c))
            for k, c in _findings(path).items()
        )

    assert shape(app / "out" / "again.json") == shape(app / "out" / "fuzz.json")
    # --keep-failed: the URL and psql lines `up` prints, and the environment is there.
    assert "kept" in out and "psql" in out, out
    url = re.search(r"(http://\S+:\d+)", out[out.index("FAIL ") :])
    assert url, out
    stats = next(
        s for s in (app / ".nocrud" / "fuzz").glob("fail-*.sh") if "GET /stats" in s.read_text()
    )
    replayed = subprocess.run(
        ["sh", str(stats), url.group(1)], capture_output=True, text=True, timeout=60, check=False
    )
    assert replayed.stdout.strip().splitlines()[-1] == "500", replayed.stdout + replayed.stderr
    clean = run_nocrud("clean", cwd=app, timeout=300)
    assert clean.returncode == 0
    assert labelled_now(app) == []


def test_sigkill_mid_fuzz_leaves_nothing_15_seconds_later(app: Path) -> None:
    proc = subprocess.Popen(
        [*NOCRUD, "fuzz", "--seed", "5", "-j", "2", "--max-examples", "200"],
        cwd=app,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while len(labelled_now(app)) < 2:
            assert proc.poll() is None, "the run ended before it had environments up"
            assert time.monotonic() < deadline, "no environment came up"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed = time.monotonic()
    while labelled_now(app) and time.monotonic() - killed < 15:
        time.sleep(0.25)
    assert labelled_now(app) == [], "still there 15 s after SIGKILL"


def test_fuzz_benchmark_prints_both_sides_at_reduced_size(app: Path) -> None:
    """benchmarks/fuzz.py on this app at a tiny budget: both rows, figures that add up."""
    import sys

    from tests.conftest import REPO

    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "fuzz.py"),
            "--example",
            str(app),
            "--project",
            f"{FUZZ_PROJECT}-bench",
            "--auth",
            "",
            "-j",
            "2",
            "--seed",
            "3",
            "--max-examples",
            "10",
            "--sequences",
            "6",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split("  ")[0]: line.split() for line in proc.stdout.splitlines()}
    nocrud = [float(x) for x in rows["nocrud fuzz, pool -j 2"][5:11]]
    shared = [float(x) for x in rows["shared app+DB, -j 2"][4:10]]
    # wall, requests, examples/s, failures, confirmed, false or flaky: both sides sent
    # requests (the same stateless cases; stateful sequences follow the answers, so the
    # totals may differ), and the counts add up.
    assert nocrud[1] > 0 and shared[1] > 0, proc.stdout
    assert nocrud[0] > 0 and shared[0] > 0
    assert nocrud[3] == nocrud[4] + nocrud[5], proc.stdout
    assert shared[3] == shared[4] + shared[5], proc.stdout
    # The four seeded bugs, seven failed checks, all confirmed by a clean replay.
    assert nocrud[4] == 7, proc.stdout
    assert "order-dependent" in proc.stdout
    assert labelled_now(app) == []
