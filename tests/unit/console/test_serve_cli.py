"""`nocrud serve`'s refusals: beyond loopback without a token, a store it cannot open."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from nocrud.cli import main


def test_serve_refuses_other_hosts_without_a_token(cli_project: Path) -> None:
    result = CliRunner().invoke(
        main, ["-c", str(cli_project / "nocrud.yaml"), "serve", "--host", "0.0.0.0"], env={}
    )
    assert result.exit_code == 2, result.output
    assert "--host 0.0.0.0 is reachable from other machines" in result.output
    assert "NOCRUD_SERVE_TOKEN" in result.output


def test_serve_says_which_store_it_cannot_open(cli_project: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["-c", str(cli_project / "nocrud.yaml"), "serve", "--store", "postgresql://u:pw1234@"],
        env={},
    )
    assert result.exit_code == 2, result.output
    assert "cannot open the run store" in result.output and "pw1234" not in result.output
