"""Container's process list at the Docker seam: a host without ``ps`` says so; Podman's form."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from nocrud.docker.resources import Container, ProcessListError


class FakeContainer:
    """The docker SDK's container object: ``top`` answers or fails like the daemon."""

    def __init__(self, answer: Any, podman: Any = None) -> None:
        self.answers = {"-o pid,ppid": answer, "pid,ppid": answer if podman is None else podman}
        self.asked: list[str] = []

    def top(self, ps_args: str) -> Any:
        self.asked.append(ps_args)
        if isinstance(answer := self.answers[ps_args], Exception):
            raise answer
        return answer


_engines = itertools.count()


def _container(answer: Any, podman: Any = None) -> Container:
    """A container on an engine of its own (the working ``top`` form is kept per engine)."""
    client = SimpleNamespace(api=SimpleNamespace(base_url=f"unix:///engine{next(_engines)}"))
    container = Container(client, "img", what="app", labels={})  # type: ignore[arg-type]
    container.obj = FakeContainer(answer, podman)
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


def test_podmans_empty_answer_to_ps_syntax_is_asked_again_in_its_own_form_once() -> None:
    """Podman's compat ``top`` answers ``-o pid,ppid`` with 200 and no body (a JSON error)."""
    empty = ValueError("Expecting value: line 1 column 1 (char 0)")
    top = {"Titles": ["PID", "PPID"], "Processes": [["1", "0"], ["7", "1"]]}
    container = _container(empty, podman=top)
    assert container.processes() == [(1, 0), (7, 1)]
    assert container.processes() == [(1, 0), (7, 1)]
    assert container.obj.asked == ["-o pid,ppid", "pid,ppid", "pid,ppid"]


def test_no_form_answering_is_a_process_list_error_not_a_json_error() -> None:
    empty = ValueError("Expecting value: line 1 column 1 (char 0)")
    with pytest.raises(ProcessListError, match=r"docker top: an empty answer"):
        _container(empty).processes()


def test_commands_ask_for_the_command_line_in_the_form_that_worked() -> None:
    """``commands()`` adds ``args`` to the form the engine took; Docker joins its words."""
    empty = ValueError("Expecting value: line 1 column 1 (char 0)")
    table = {
        "Titles": ["PID", "PPID", "COMMAND"],
        "Processes": [["7", "1", "/usr/bin/python3 /usr/bin/gunicorn -w 2 app"]],
    }
    container = _container(empty, podman=table)
    container.obj.answers.update({"-o pid,ppid,args": empty, "pid,ppid,args": table})
    assert container.commands() == [(7, 1, "/usr/bin/python3 /usr/bin/gunicorn -w 2 app")]
    assert container.obj.asked == ["-o pid,ppid,args", "pid,ppid,args"]
    # A command line split over several columns (an engine that splits every word) is joined.
    table["Processes"] = [["7", "1", "gunicorn", "-w", "2"]]
    assert container.commands() == [(7, 1, "gunicorn -w 2")]
