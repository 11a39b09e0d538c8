"""Every error nocrud expects carries its exit code through the hierarchy in nocrud.errors."""

from __future__ import annotations

import pytest

from nocrud.analysis.coverage import OpenApiError
from nocrud.analysis.perf import PerfError
from nocrud.config import ConfigError
from nocrud.docker.engine import DockerUnavailableError
from nocrud.errors import (
    EXIT_FAILED,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    InfrastructureError,
    Interrupted,
    NocrudError,
    UsageError,
)
from nocrud.flows import FlowDiscoveryError, SelectionError
from nocrud.flows.scaffold import ScaffoldError
from nocrud.images.build import BuildError


def test_the_exit_codes_are_distinct_and_documented_values() -> None:
    codes = (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED)
    assert codes == (0, 1, 2, 3, 130)


@pytest.mark.parametrize(
    "error",
    [ConfigError, FlowDiscoveryError, SelectionError, ScaffoldError, OpenApiError, PerfError],
)
def test_the_users_mistakes_are_usage_errors(error: type[NocrudError]) -> None:
    assert issubclass(error, UsageError)
    assert error.exit_code == EXIT_USAGE


@pytest.mark.parametrize("error", [DockerUnavailableError, BuildError])
def test_an_environment_that_cannot_be_built_is_an_infrastructure_error(
    error: type[NocrudError],
) -> None:
    assert issubclass(error, InfrastructureError)
    assert error.exit_code == EXIT_INFRASTRUCTURE


def test_an_interrupt_exits_130_and_a_config_error_keeps_its_message() -> None:
    assert Interrupted.exit_code == EXIT_INTERRUPTED
    error = ConfigError("nocrud.yaml: run.parallel: expected an integer", "second problem")
    assert isinstance(error, NocrudError)
    assert str(error) == "nocrud.yaml: run.parallel: expected an integer\nsecond problem"
