"""The ``nocrud`` group: lazy commands, one guard for all of them, exit codes, shared options.

Everything runs in-process with click's runner and no Docker daemon: the commands
that would need one stop before it (a config error, no flow selected) or reach a
port where nothing listens.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import docker.errors
import pytest
from click.testing import CliRunner, Result

from nocrud.cli import main
from nocrud.cli._guard import Command, Group
from nocrud.cli.main import COMMANDS
from nocrud.errors import EXIT_CODES, InfrastructureError, UsageError
from nocrud.results import SCHEMA_VERSION


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={"NO_COLOR": "1", **(env or {})})


def all_commands() -> Iterator[tuple[str, click.Command]]:
    """Every command below ``nocrud``, subcommands of groups included, loading them all."""
    ctx = click.Context(main)
    pending: list[tuple[str, click.Command]] = [
        (name, command)
        for name in main.list_commands(ctx)
        if (command := main.get_command(ctx, name)) is not None
    ]
    while pending:
        path, command = pending.pop(0)
        yield path, command
        if isinstance(command, click.Group):
            pending += [(f"{path} {n}", c) for n, c in command.commands.items()]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A nocrud.yaml whose flows package has a name of its own, forgotten after the test.

    Discovery imports the package; a second test importing another ``flows`` package
    in the same process would be refused as shadowed.
    """
    package = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        f"project: demo\napp:\n  image: demo/app:1\nflows:\n  path: {package}\n"
    )
    path = list(sys.path)
    yield tmp_path / "nocrud.yaml"
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[name]
    sys.path[:] = path


# -- the group ------------------------------------------------------------------------


def test_each_lazy_command_loads_under_its_name_with_the_summary_shown_for_it() -> None:
    ctx = click.Context(main)
    for name, lazy in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name, lazy.target
        first_paragraph = inspect.cleandoc(command.help or "").split("\n\n", 1)[0]
        assert lazy.summary == first_paragraph.replace("\n", " "), name


def test_every_command_runs_under_the_one_guard() -> None:
    found = dict(all_commands())
    assert {"up", "list", "doctor", "new", "new crud", "new flow"} <= set(found)
    for path, command in found.items():
        assert isinstance(command, Command | Group), f"`nocrud {path}` is not guarded"


def test_help_lists_every_command_and_the_exit_codes() -> None:
    for args in (["--help"], ["up", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        for code, meaning in EXIT_CODES:
            assert f"{code} {meaning}" in text, (args, code)
    listed = invoke("--help").output.split("Commands:", 1)[1]
    assert all(f"  {name} " in listed for name in COMMANDS)


def test_version_prints_the_package_version() -> None:
    import nocrud

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"nocrud, version {nocrud.__version__}\n"


def test_up_and_list_share_the_selection_options() -> None:
    ctx = click.Context(main)
    options = {}
    for name in ("up", "list"):
        command = main.get_command(ctx, name)
        assert command is not None
        options[name] = {tuple(p.opts): p.help for p in command.params}
    selection = [("-f", "--flow"), ("-k",), ("-m",), ("--crud",)]
    for opts in selection:
        assert options["up"][opts] == options["list"][opts], opts


# -- the guard --------------------------------------------------------------------------


def guarded_command(error: BaseException) -> click.Command:
    @click.command(cls=Command)
    def fails() -> None:
        raise error

    return fails


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (UsageError("flows/x.py has no flows"), 2, "error: flows/x.py has no flows"),
        (InfrastructureError("the migrate command failed"), 3, "error: the migrate command failed"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (
            docker.errors.APIError("500 Server Error: no space left on device"),
            3,
            "error: Docker failed: 500 Server Error: no space left on device; "
            "check the daemon with `nocrud doctor`",
        ),
    ],
)
def test_the_guard_turns_expected_errors_into_one_line_and_their_exit_code(
    error: BaseException, code: int, line: str
) -> None:
    result = CliRunner().invoke(guarded_command(error), [], env={"NO_COLOR": "1"})
    assert result.exit_code == code
    assert result.output == line + "\n"


def test_the_guard_lets_a_bug_keep_its_traceback() -> None:
    result = CliRunner().invoke(guarded_command(RuntimeError("a bug in nocrud")), [])
    assert isinstance(result.exception, RuntimeError)


def test_a_config_error_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "nocrud.yaml").write_text("project: demo\nrun:\n  paralel: 4\n")
    for command in ("list", "config", "up", "coverage"):
        result = invoke("-c", str(tmp_path / "nocrud.yaml"), command)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith("error: "), result.output
        assert "did you mean 'parallel'" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_up_with_a_selection_that_matches_nothing_exits_2(project: Path) -> None:
    result = invoke("-c", str(project), "up", "-m", "nothing")
    assert result.exit_code == 2
    assert result.output == "error: no flows selected: check -f/-k/-m/--crud, or `nocrud list`\n"


def test_an_unreachable_docker_daemon_exits_3_saying_where_it_looked() -> None:
    result = invoke("clean", env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.exit_code == 3, result.output
    assert result.output.startswith("error: cannot reach Docker at tcp://127.0.0.1:1")


def test_list_selects_like_up(project: Path) -> None:
    package = project.parent / project.read_text().rsplit("path: ", 1)[1].strip()
    (package / "checks.py").write_text(
        "from nocrud import FlowContext, flow\n\n\n"
        "@flow(tags=['auth'])\ndef logs_in(ctx: FlowContext) -> None:\n"
        '    """Logs in."""\n\n\n'
        "@flow\ndef reads(ctx: FlowContext) -> None:\n"
        '    """Reads."""\n'
    )
    config = str(project)
    tagged = invoke("-c", config, "list", "-m", "auth", "--json")
    assert tagged.exit_code == 0, tagged.output
    assert [f["name"] for f in json.loads(tagged.output)] == ["logs_in"]
    named = invoke("-c", config, "list", "-f", "reads", "--json")
    assert [f["name"] for f in json.loads(named.output)] == ["reads"]
    unknown = invoke("-c", config, "list", "-f", "nope")
    assert unknown.exit_code == 2 and unknown.output.startswith("error: ")


# -- files another version (or tool) wrote -------------------------------------------------


def run_dict() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": "r1",
        "project": "demo",
        "started_at": 0.0,
        "wall_time": 1.0,
        "parallel": 1,
        "flows": [],
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("<html>not JSON</html>", "not JSON"),
        ("[1, 2, 3]", "JSON of another shape"),
        (json.dumps({k: v for k, v in run_dict().items() if k != "run_id"}), "no 'run_id' in it"),
        (json.dumps({**run_dict(), "flows": [{"name": "x"}]}), "in it"),
        (json.dumps({**run_dict(), "schema_version": "0.9"}), "schema_version '0.9'"),
    ],
    ids=["not-json", "a-list", "no-run-id", "flow-of-another-shape", "old-schema"],
)
def test_coverage_on_a_stale_or_foreign_last_run_says_to_run_up_again(
    cli_project: Path, run_cli: Callable[..., Result], content: str, reason: str
) -> None:
    last = cli_project / ".nocrud" / "last-run.json"
    last.parent.mkdir()
    last.write_text(content)
    result = run_cli("coverage")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {last} cannot be read (")
    assert reason in result.output
    assert "run `nocrud up` again" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "endpoints",
    [{"GET /a": {"count": 1}}, {"GET /a": [1, 2]}, ["GET /a"], {"GET /a": {"count": "x"}}],
    ids=["missing-key", "list-entry", "list-of-endpoints", "not-a-number"],
)
def test_perf_on_a_foreign_timings_file_says_to_run_up_perf_again(
    cli_project: Path, run_cli: Callable[..., Result], endpoints: Any
) -> None:
    from nocrud.analysis import perf

    last = cli_project / ".nocrud" / "perf" / "demo" / "last.json"
    last.parent.mkdir(parents=True)
    last.write_text(json.dumps({"schema": perf.SCHEMA, "endpoints": endpoints}))
    for args in (("perf",), ("perf", "--baseline")):
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: {last} cannot be read (")
        assert "run `nocrud up --perf` again" in result.output


def test_a_run_stopping_error_is_printed_masked() -> None:
    """Issue 21, item 13: a failed migrate command's URL password never prints."""
    script = (
        "from nocrud.cli._guard import guarded\n"
        "from nocrud.errors import InfrastructureError\n"
        "with guarded():\n"
        "    raise InfrastructureError(\n"
        "        'the migrate command `psql postgresql://app:hunter22@db/app -f s.sql` failed'\n"
        "    )\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "hunter22" not in done.stderr
    assert "psql postgresql://app:********@db/app -f s.sql" in done.stderr
