"""Fixtures shared by the unit tests of the CLI commands in nocrud.cli.authoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from nocrud.cli import authoring as cli_flows


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    """A minimal project: a nocrud.yaml naming an existing app image, and a flows package."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        'project: demo\napp:\n  image: demo/app:1\ndatabase:\n  migrate: ["true"]\n'
    )
    return tmp_path


@pytest.fixture
def run_cli(cli_project: Path) -> Callable[..., Any]:
    """Invoke perf/coverage/new in-process on ``cli_project``; returns click's Result."""

    @click.group()
    def main() -> None:
        pass

    cli_flows.register(main)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(
            main,
            list(args),
            obj={"config_path": cli_project / "nocrud.yaml"},
            env={"NO_COLOR": "1"},
        )

    return invoke
