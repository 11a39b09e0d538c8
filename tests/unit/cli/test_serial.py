"""`nocrud up --serial` is `-j 1` under another name, and says so when it contradicts -j."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nocrud.cli import main


def test_serial_with_another_parallelism_is_a_usage_error_naming_both() -> None:
    result = CliRunner().invoke(main, ["up", "--serial", "-j", "3"])

    assert result.exit_code == 2, result.output
    assert "--serial means -j 1: drop -j 3 or --serial" in result.output


def test_serial_is_listed_as_one_flow_at_a_time() -> None:
    result = CliRunner().invoke(main, ["up", "--help"])

    assert result.exit_code == 0
    assert "--serial" in result.output
    assert "the same as -j 1" in " ".join(result.output.split())


def test_up_starts_no_reaper_for_input_it_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The reaper starts early, but only once the command line and nocrud.yaml are accepted."""
    from nocrud.docker import reaper

    monkeypatch.setattr(reaper, "start_early", lambda: pytest.fail("a reaper was started"))
    (tmp_path / "nocrud.yaml").write_text("project: demo\nrun:\n  paralel: 4\n")
    for args in (
        ["up", "--serial", "-j", "3"],
        ["-c", str(tmp_path / "nocrud.yaml"), "up"],
        ["up", "--shard", "5/4"],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
