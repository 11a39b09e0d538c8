"""`nocrud up --strategy NAME` chooses the provisioning strategy for this run (run.strategy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nocrud.cli import main


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    config = tmp_path / "nocrud.yaml"
    config.write_text("project: demo\napp:\n  build: .\ndatabase:\n  migrate: ['true']\n")
    return config


def test_an_unknown_strategy_is_refused_naming_the_choices(project: Path) -> None:
    result = CliRunner().invoke(main, ["-c", str(project), "up", "--strategy", "bogus"])

    assert result.exit_code == 2, result.output
    assert "run.strategy: 'bogus' is not a valid strategy" in result.output
    assert "image, pool, template, migrate, external" in result.output


def test_the_strategy_given_is_the_runs_over_the_file_and_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nocrud import workflow
    from nocrud.docker import reaper

    seen: list[Any] = []

    def up(config: Any, options: Any, console: Any) -> int:
        seen.append(config.run.strategy)
        return 0

    monkeypatch.setattr(workflow, "up", up)
    monkeypatch.setattr(reaper, "start_early", lambda: None)
    project.write_text(project.read_text() + "run:\n  strategy: template\n")
    result = CliRunner().invoke(
        main,
        ["-c", str(project), "up", "--strategy", "pool", "--no-record"],
        env={"NOCRUD_STRATEGY": "migrate"},
    )

    assert seen == ["pool"], result.output
