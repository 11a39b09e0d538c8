"""``nocrud doctor --wait``: the first step of a CI job waits for its Docker service, then fails.

Issue 14: a recipe's shell loop waited 30 s and never failed by itself, so an
unreachable daemon surfaced 44 s later as an unrelated build error. ``--wait N`` keeps
trying for N seconds and then exits 3 with the cause and the fix. Nothing listens on
port 1 of 127.0.0.1, so these run without Docker.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from nocrud.cli.doctor import doctor_command


def test_wait_keeps_trying_for_its_seconds_then_exits_3_naming_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setenv("NO_COLOR", "1")
    t0 = time.monotonic()
    result = CliRunner().invoke(doctor_command, ["--wait", "1.5"], obj={"config_path": None})
    waited = time.monotonic() - t0

    assert result.exit_code == 3, result.output
    assert waited >= 1.5
    assert "waiting up to 1.5 s for Docker at tcp://127.0.0.1:1" in result.output
    assert "Docker did not answer within 1.5 s" in result.output
    assert "nothing answers there" in result.output


def test_an_unresolvable_service_name_says_so_instead_of_start_the_daemon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://no-such-dind-service.invalid:2375")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(doctor_command, [], obj={"config_path": None})

    assert result.exit_code == 3, result.output
    assert "'no-such-dind-service.invalid' does not resolve" in result.output
    assert "systemctl" not in result.output


def test_wait_does_not_wait_for_a_name_that_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In CI a service's alias resolves as soon as the job starts: an unknown name is
    # wiring to fix, and waiting 30 s would only delay the same message.
    monkeypatch.setenv("DOCKER_HOST", "tcp://no-such-dind-service.invalid:2375")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "400")
    t0 = time.monotonic()
    result = CliRunner().invoke(doctor_command, ["--wait", "30"], obj={"config_path": None})

    assert result.exit_code == 3, result.output
    assert time.monotonic() - t0 < 15
    assert "does not resolve" in result.output
    assert "did not answer within" not in result.output
