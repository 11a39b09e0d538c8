"""nocrud bench: reports read Figures values (table, Markdown, JSON, PNG); the baseline file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from nocrud.bench.compose import compose_file
from nocrud.bench.measure import Figures, percentile
from nocrud.bench.report import markdown, ratios, table, write_chart, write_json
from nocrud.config import load_config
from nocrud.images import BuiltImages


def figures(strategy: str, wall: float) -> Figures:
    return Figures(
        strategy=strategy,
        flows=8,
        passed=8,
        wall=wall,
        prepare=0.5,
        provision_p50=wall / 10,
        provision_p95=wall / 8,
        teardown_p50=0.4,
        flows_per_minute=8 / wall * 60,
        peak_rss_mib=60.0,
        docker_ops_per_flow=9.0,
    )


ROWS = [figures("image", 20.0), figures("template", 8.0), figures("migrate", 70.0)]
CONTEXT = {"project": "shop", "flows": 8, "parallel": 4, "cpus": 2, "date": "today"}


def test_percentiles_interpolate_and_an_empty_list_is_zero() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == 4.8


def test_the_table_has_a_row_per_strategy_under_every_heading() -> None:
    lines = table(ROWS).splitlines()

    assert lines[0].split()[:3] == ["strategy", "flows", "passed"]
    assert "docker ops/flow" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["image", "template", "migrate"]
    assert lines[2].split()[3] == "8.0"  # template's wall time


def test_ratios_compare_wall_times_the_way_the_targets_are_stated() -> None:
    assert ratios(ROWS) == [
        "migrate / image wall time: 3.50x",
        "image / template wall time: 2.50x",
    ]


def test_markdown_and_json_carry_the_same_figures(tmp_path: Path) -> None:
    text = markdown(ROWS, CONTEXT)
    write_json(ROWS, CONTEXT, tmp_path / "bench.json")

    assert "| template | 8 | 8 | 8.0 |" in text
    assert "- image / template wall time: 2.50x" in text
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [s["strategy"] for s in data["strategies"]] == ["image", "template", "migrate"]
    assert data["strategies"][1]["wall"] == 8.0


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    write_chart(ROWS, CONTEXT, tmp_path / "bench.png")

    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _compose_run(tmp_path: Path, database: dict[str, object]) -> SimpleNamespace:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "nocrud.yaml").write_text(
        yaml.safe_dump(
            {
                "project": "shop",
                "app": {"build": "app", "env": {"DATABASE_URL": "{database_url}"}},
                "database": {"name": "shop", **database},
                "flows": {"path": "flows"},
            }
        )
    )
    config = load_config(tmp_path / "nocrud.yaml", env={})
    return SimpleNamespace(
        config=config,
        run_id="0123456789",
        images=BuiltImages(
            app="shop-app:1", db="nocrud/postgres:15", app_built=False, db_built=False
        ),
        keep_failed=False,
    )


def test_the_compose_baseline_waits_for_each_step_and_labels_every_object(tmp_path: Path) -> None:
    run = _compose_run(tmp_path, {"migrate": "python3 manage.py migrate"})

    project = compose_file(run, "a_flow")

    services = project["services"]
    assert list(services) == ["db", "init", "schema", "app"]
    assert services["init"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["schema"]["command"] == ["python3", "manage.py", "migrate"]
    assert services["schema"]["image"] == "shop-app:1"
    assert services["app"]["depends_on"] == {
        "schema": {"condition": "service_completed_successfully"}
    }
    assert services["app"]["environment"]["DATABASE_URL"].endswith("@db:5432/shop")
    for service in services.values():
        assert service["labels"]["nocrud.run"] == "0123456789"
    assert project["networks"]["default"]["labels"]["nocrud.run"] == "0123456789"


def test_the_compose_baseline_loads_a_dump_with_psql_as_the_apps_role(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE site (id int);\n")
    run = _compose_run(tmp_path, {"source": "dump", "dump": "schema.sql", "user": "shop"})

    schema = compose_file(run, "a_flow")["services"]["schema"]

    assert schema["image"] == "nocrud/postgres:15"
    assert schema["volumes"] == [f"{tmp_path / 'schema.sql'}:/nocrud/dump.sql:ro"]
    command = schema["command"]
    assert command[0] == "psql" and command[-2:] == ["-f", "/nocrud/dump.sql"]
    assert command[command.index("-U") + 1] == "shop"
    assert schema["labels"]["nocrud.role"] == "load"


def test_every_strategy_is_also_a_multiple_of_the_shared_baseline() -> None:
    rows = [figures("shared", 10.0), figures("image", 25.0), figures("pool", 12.0)]

    assert ratios(rows) == [
        "image / pool wall time: 2.08x",
        "wall time as a multiple of shared (one environment, no reset): image 2.50x, pool 1.20x",
    ]
    assert all("shared" not in line for line in ratios(ROWS))


def test_a_dollar_in_the_apps_command_reaches_compose_as_written(tmp_path: Path) -> None:
    """Issue 21 item 13: Compose interpolates `$NAME` and refuses a lone `$`; nocrud's
    commands mean every `$` as written (for the app's own shell)."""
    import shutil
    import subprocess

    run = _compose_run(tmp_path, {"migrate": ["sh", "-c", "migrate --url $DATABASE_URL"]})
    command = ["sh", "-c", 'exec serve --port "${PORT:-8000}" --cost 5$']
    run.config = run.config.model_copy(
        update={"app": run.config.app.model_copy(update={"command": tuple(command)})}
    )
    project = compose_file(run, "a_flow")
    assert (
        project["services"]["app"]["command"][2] == 'exec serve --port "$${PORT:-8000}" --cost 5$$'
    )
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed: the file's reading is not checked")
    path = tmp_path / "project.yml"

    def compose_config(document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path.write_text(yaml.safe_dump(document))
        return subprocess.run(
            ["docker-compose", "-f", str(path), "config"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    read = compose_config(project)
    assert read.returncode == 0, read.stderr
    # `config` writes a literal `$` back as `$$`: what it read is the command as written.
    services = yaml.safe_load(read.stdout)["services"]
    assert services["app"]["command"] == project["services"]["app"]["command"]
    assert services["schema"]["command"] == ["sh", "-c", "migrate --url $$DATABASE_URL"]
    # Unescaped, the file is refused (what the baseline did before).
    raw = json.loads(json.dumps(project).replace("$$", "$"))
    refused = compose_config(raw)
    assert refused.returncode != 0 and "Invalid interpolation format" in refused.stderr
