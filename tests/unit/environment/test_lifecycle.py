"""The environment lifecycle's start: a failed start's own error is the one raised, even
when tearing down what had started fails too (issue 21 item 13: the compose baseline
named its `down` command instead of the `up` that failed)."""

from __future__ import annotations

import pytest

from nocrud.environment import ProvisionError
from nocrud.environment.lifecycle import EnvironmentLifecycle


class _Broken(EnvironmentLifecycle):
    def start(self) -> None:
        raise ProvisionError("`docker-compose up -d` failed (1): Invalid interpolation format")

    def teardown(self) -> None:
        self._logs_at_teardown = "app: booting"
        raise ProvisionError("`docker-compose down -v` failed (1): Invalid interpolation format")

    def app_logs(self, tail: int = 200) -> str:
        return self._logs_at_teardown


def test_a_failed_start_is_raised_even_when_its_teardown_fails_too() -> None:
    with pytest.raises(ProvisionError) as caught, _Broken():
        pass
    assert str(caught.value).startswith("`docker-compose up -d` failed")
    assert caught.value.__notes__ == [
        "tearing down what had started failed too: ProvisionError: `docker-compose down -v` "
        "failed (1): Invalid interpolation format"
    ]
    assert caught.value.app_logs == "app: booting"
