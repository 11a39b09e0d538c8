"""Apps nocrud did not write, on the first try, through the real CLI (issue 13).

Two small apps under ``tests/e2e/strangers/`` (see its README): ``sitesapp`` is someone
else's repository, tested from ``sitestest/`` beside it with a Dockerfile outside the
app's build directory, a seed SQL file and flows; ``weather`` has every path ending in
a slash, client-chosen ids, creates answering without JSON, no health endpoint and no
OpenAPI document. Each test names the item of the issue it shows. The apps' images are
built once per module (their layers are the example app's, so mostly cached) and
removed at the end, with everything else the module's projects labelled.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nocrud.images.own import ASSETS
from tests.conftest import NOCRUD, PROJECT, labelled, run_nocrud

# Image builds and runs of two apps: minutes each when the machine is busy.
pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(1800)]
#: Seconds a `nocrud up` of one of these apps may take (builds included) on a busy machine.
RUN_TIMEOUT = 1500

STRANGERS = Path(__file__).resolve().parent / "strangers"
SITES = f"{PROJECT}-sites"
WEATHER = f"{PROJECT}-weather"
#: Mimics the official postgres image's layout: PGDATA on a VOLUME, initialised at
#: first start by an entrypoint from POSTGRES_USER / POSTGRES_PASSWORD (item 11).
OFFICIAL_LIKE = f"nocrud-test/{PROJECT}-official-postgres:15"
#: Added to the first half of nocrud's own Dockerfile (PostgreSQL installed, no cluster
#: made; the same lines, so Docker's cache has them): upstream's layout on top.
OFFICIAL_LAYOUT = """
RUN mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
"""
OFFICIAL_ENTRYPOINT = """\
#!/bin/sh
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?is required to initialise the database (as upstream)}"
    mkdir -p "$PGDATA"
    echo "$POSTGRES_PASSWORD" > /tmp/pw
    initdb --username="${POSTGRES_USER:-postgres}" --pwfile=/tmp/pw --auth-local=trust \\
        --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    rm /tmp/pw
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec "$@"
"""


def _set(path: Path, **changes: Any) -> None:
    """Change dotted keys (``app__health_path``) of a nocrud.yaml in place."""
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            data.setdefault(section, {})[key] = value
        else:
            data[section] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def apps(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A copy of tests/e2e/strangers with this session's project names; cleaned up after."""
    root = tmp_path_factory.mktemp("strangers")
    shutil.copytree(STRANGERS, root, dirs_exist_ok=True)
    _set(root / "sitestest" / "nocrud.yaml", project=SITES)
    _set(root / "weather" / "nocrud.yaml", project=WEATHER)
    yield root
    for project, where in ((SITES, "sitestest"), (WEATHER, "weather")):
        run_nocrud("clean", "--all", "--images", cwd=root / where, timeout=300)
        for image in docker_client.images.list(filters={"label": f"nocrud.project={project}"}):
            for tag in image.tags:
                docker_client.images.remove(tag, force=True)
    for image in docker_client.images.list(name=OFFICIAL_LIKE.split(":", maxsplit=1)[0]):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


def _flow_block(out: str, name: str) -> list[str]:
    """One flow's block of the terminal report: its header line to the blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line[8:].startswith(f"{name}  "))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_their_app_with_our_dockerfile_seed_and_flows(apps: Path, docker_client: Any) -> None:
    """Items 1, 4, 6 and 8: built with a Dockerfile outside the build directory, seeded,
    the app's real bug found and explained, the report readable in a CI log, the failed
    environments kept with commands that work as printed."""
    here = apps / "sitestest"
    done = run_nocrud(
        "up", "-j", "2", "--keep-failed", "--junit", "junit.xml", cwd=here, timeout=RUN_TIMEOUT
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    # 1: the Dockerfile is ../sitestest/Dockerfile, outside the build directory ../sitesapp.
    assert re.search(rf"building app image nocrud/{SITES}-app:\w+ from \S*sitesapp$", out, re.M)
    # 8: "flows", not "flow(s)".
    assert "running 4 flows with 2 in parallel" in out
    assert re.search(r"^PASSED  site_crud  C✔ R✔ U✔ L✔ D✔", out, re.M), out
    # The seed SQL is in every flow's database; the long name is never cut or wrapped.
    long_name = "the_seeded_head_office_is_listed_for_every_flow_of_the_run"
    assert re.search(rf"^{long_name} +passed ", out, re.M), out
    # 4: the bug in their PUT (contact not stored), with both operands.
    contact = _flow_block(out, "contact_is_updated")
    assert "  assert site['contact'] == 'Grace'" in contact, contact
    assert "    'Ada' == 'Grace'" in contact, contact
    # 8: every line of a failure block indented; request and response shown once.
    unknown = _flow_block(out, "an_unknown_site_fails_with_the_request_and_response")
    assert all(line.startswith("  ") for line in unknown[1:]), unknown
    assert sum("request headers:" in line for line in unknown) == 1, unknown
    assert any("UnexpectedStatus: (the message above)" in line for line in unknown), unknown
    # JUnit carries the same full text as the terminal.
    cases = {c.get("name"): c for c in ET.parse(here / "junit.xml").iter("testcase")}
    failure = cases["contact_is_updated"].find("failure")
    assert failure is not None
    assert "'Ada' == 'Grace'" in (failure.text or "")
    # 6: a kept environment says how to reach it, and the commands work as printed.
    curl = next(line.strip() for line in contact if line.strip().startswith("curl "))
    assert subprocess.run(shlex.split(curl), capture_output=True, check=True).stdout
    # The database line shows the environment's own password; the psql line beneath it
    # works as printed (psql asks for that password: given here as PGPASSWORD).
    database = next(line for line in contact if line.strip().startswith("database:"))
    found = re.search(r"password (\S+)", database)
    assert found, database
    psql = next(line.strip() for line in contact if line.strip().startswith("psql "))
    command = shlex.split(psql.split("   (", 1)[0])
    counted = subprocess.run(
        [*command, "-Atc", "SELECT count(*) FROM site"],
        env={**os.environ, "PGPASSWORD": found.group(1)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(counted.stdout) >= 1
    assert labelled(docker_client, SITES), "the failed flows' environments should be kept"
    # 8: the JSON results carry the same full text as the terminal and JUnit.
    results = json.loads((here / ".nocrud" / "last-run.json").read_text())
    flows = {f["name"]: f for f in results["flows"]}
    assert "'Ada' == 'Grace'" in flows["contact_is_updated"]["message"]


def test_an_app_of_another_shape_with_crud_options(apps: Path) -> None:
    """Item 5 and the second app: trailing slashes, client ids, upserts, text creates,
    no health endpoint (app.ready_when), pages of results; a scaffolded flow passes as
    written; 7: coverage says which document paths were tried and what they answered."""
    here = apps / "weather"
    wrote = run_nocrud("new", "crud", "sensor", "--endpoint", "/sensors/", cwd=here)
    assert wrote.returncode == 2, wrote.stdout + wrote.stderr  # docs/flows.md's sensor_crud
    assert "exists already" in wrote.stderr
    wrote = run_nocrud("new", "crud", "thermometer", "--endpoint", "/sensors/", cwd=here)
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert "run it with `nocrud up -f thermometer_crud`" in wrote.stdout
    done = run_nocrud("up", "-j", "2", cwd=here, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("sensor_crud", "reading_crud", "station_crud", "thermometer_crud"):
        assert re.search(rf"^PASSED  {name}  C✔ R✔ U✔ L✔ D✔", done.stdout, re.M), done.stdout
    coverage = run_nocrud("coverage", cwd=here)
    assert coverage.returncode == 2, coverage.stdout + coverage.stderr
    assert "GET /openapi.json" in coverage.stderr
    assert "404 NOT FOUND" in coverage.stderr
    assert "--openapi PATH_OR_URL" in coverage.stderr
    assert "app.openapi" in coverage.stderr
    assert "run `nocrud up` first" not in coverage.stderr
    # 8: `nocrud list` without a terminal never wraps a description one word a line.
    listed = subprocess.run(
        [*NOCRUD, "list"],
        cwd=here,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "Create, read, update, list and delete at /sensors/." in listed.stdout
    assert listed.stdout.rstrip().endswith("4 flows")


def test_a_wrong_health_path_stops_the_run_at_once(apps: Path) -> None:
    """Item 3: a health path answering 404 is a configuration error: exit 2, in seconds."""
    here = apps / "sitestest"
    config = here / "wrong-health.yaml"
    shutil.copy(here / "nocrud.yaml", config)
    _set(config, app__health_path="/health")
    started = time.monotonic()
    done = run_nocrud("-c", str(config), "up", "-j", "2", cwd=here, timeout=RUN_TIMEOUT)
    assert done.returncode == 2, done.stdout + done.stderr
    text = done.stdout + done.stderr
    assert "app.health_path" in text
    assert "404" in text
    assert "app.ready_when" in text
    # The other flows were not run, each for its own timeout (app_ready is 60 s).
    assert time.monotonic() - started < 200


def test_a_failing_migration_exits_3(apps: Path) -> None:
    """Item 9: the environment could not be built, told apart from a failing flow."""
    here = apps / "sitestest"
    config = here / "broken-migrate.yaml"
    shutil.copy(here / "nocrud.yaml", config)
    _set(config, database__migrate=["python3", "-c", "raise SystemExit('no schema today')"])
    done = run_nocrud("-c", str(config), "build", cwd=here, timeout=RUN_TIMEOUT)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no schema today" in done.stdout + done.stderr
    # Issue 21 item 13: its output is said once, by the error, not also as progress.
    said = [line for line in (done.stdout + done.stderr).splitlines() if "raise" not in line]
    assert sum("no schema today" in line for line in said) == 1, done.stdout + done.stderr


def test_an_official_style_postgres_image_keeps_its_migrated_data(
    apps: Path, docker_client: Any
) -> None:
    """Item 11: PGDATA on a VOLUME (as in postgres:<major>) would be lost by `docker commit`."""
    context = apps / "official-like"
    context.mkdir()
    own = (ASSETS / "postgres" / "Dockerfile").read_text()
    (context / "Dockerfile").write_text(own[: own.index("\nCOPY ")] + OFFICIAL_LAYOUT)
    (context / "docker-entrypoint.sh").write_text(OFFICIAL_ENTRYPOINT)
    (context / "docker-entrypoint.sh").chmod(0o755)  # COPY keeps it (no BuildKit --chmod)
    docker_client.images.build(path=str(context), tag=OFFICIAL_LIKE, rm=True, forcerm=True)
    here = apps / "sitestest"
    config = here / "official.yaml"
    shutil.copy(here / "nocrud.yaml", config)
    # Its cluster is made at first start (initdb), which a busy machine takes minutes for.
    _set(config, database__image=OFFICIAL_LIKE, timeouts__db_ready=900)
    long_name = "the_seeded_head_office_is_listed_for_every_flow_of_the_run"
    done = run_nocrud(
        "-c", str(config), "up", "-f", "site_crud", "-f", long_name, cwd=here, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^2 passed in ", done.stdout, re.M), done.stdout


def test_clean_stays_in_its_project(apps: Path, docker_client: Any) -> None:
    """Item 2: clean from one project leaves another's kept environments and images."""
    assert labelled(docker_client, SITES), "kept by the first test"
    sites_images = docker_client.images.list(filters={"label": f"nocrud.project={SITES}"})
    assert sites_images
    done = run_nocrud("clean", "--all", "--images", cwd=apps / "weather")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"project {WEATHER}:" in done.stdout
    assert labelled(docker_client, SITES)
    assert docker_client.images.list(filters={"label": f"nocrud.project={SITES}"})
    assert not docker_client.images.list(filters={"label": f"nocrud.project={WEATHER}"})
    refused = run_nocrud("clean", "--all-projects", cwd=apps / "weather")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    done = run_nocrud("clean", cwd=apps / "sitestest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not labelled(docker_client, SITES)
