"""Container's process list at the Docker seam: a host without ``ps`` says so."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from nocrud.docker.resources import Container, ProcessListError


class FakeContainer:
    """The docker SDK's container object: ``top`` answers or fails like the daemon."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def top(self, ps_args: str) -> Any:
        assert ps_args == "-o pid,ppid"
        if isinstance(answer := self.answer, Exception):
            raise answer
        return answer


def _container(answer: Any) -> Container:
    container = Container(None, "img", what="app", labels={})  # type: ignore[arg-type]
    container.obj = FakeContainer(answer)
    return container


def test_processes_are_pid_and_parent_pairs() -> None:
    top = {"Titles": ["PID", "PPID"], "Processes": [["100", "90"], ["101", "100"]]}
    assert _container(top).processes() == [(100, 90), (101, 100)]


def test_a_host_without_ps_is_no_process_list_with_the_daemons_words() -> None:
    failed = docker.errors.APIError(
        "500 Server Error",
        explanation='ps: exec: "ps": executable file not found in $PATH',
    )
    with pytest.raises(ProcessListError) as caught:
        _container(failed).processes()
    assert str(caught.value) == (
        "the Docker host could not list the app container's processes "
        '(docker top: ps: exec: "ps": executable file not found in $PATH)'
    )


def test_a_container_gone_stays_not_found() -> None:
    with pytest.raises(docker.errors.NotFound):
        _container(docker.errors.NotFound("no such container")).processes()
