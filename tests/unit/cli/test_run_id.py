"""One run id: the console's when it started the run, else a new one; never a bad name."""

from __future__ import annotations

import re

import pytest

from nocrud.cli.run import run_id_for
from nocrud.errors import UsageError


def test_a_run_started_by_the_console_takes_the_consoles_id() -> None:
    assert run_id_for({"NOCRUD_REPORT_RUN": "77e0ab035d"}) == "77e0ab035d"


def test_a_run_of_its_own_gets_a_new_short_id_each_time() -> None:
    first, second = run_id_for({}), run_id_for({})
    assert re.fullmatch(r"[0-9a-f]{10}", first) and first != second


def test_an_id_that_cannot_name_docker_objects_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match=r"NOCRUD_REPORT_RUN='../x'.*unset it"):
        run_id_for({"NOCRUD_REPORT_RUN": "../x"})
