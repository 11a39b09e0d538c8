"""Which app commands a pool pair starts under the preloading launcher, and how (no Docker)."""

from __future__ import annotations

import io
import tarfile

import pytest

from nocrud.environment.preload import LAUNCHER, START, archive, plan

PY = ["/usr/bin/python3", "/nocrud-preload/launch.py", "--"]


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "override", "expected"),
    [
        # The image's CMD is a uvicorn console script: its #! line names the interpreter.
        (
            None,
            ["uvicorn", "app.main:app", "--port", "8000"],
            None,
            (["/bin/sh", START], ["uvicorn", "app.main:app", "--port", "8000"]),
        ),
        # app.command replaces CMD, as Docker's command does.
        (
            None,
            ["gunicorn", "app"],
            ["/venv/bin/uvicorn", "app:app"],
            (["/bin/sh", START], ["/venv/bin/uvicorn", "app:app"]),
        ),
        # python -m uvicorn: that interpreter runs the launcher directly.
        (
            None,
            ["/usr/bin/python3", "-m", "uvicorn", "a:b"],
            None,
            (PY, ["/usr/bin/python3", "-m", "uvicorn", "a:b"]),
        ),
        # An entrypoint that is uvicorn, its arguments in CMD.
        (
            ["uvicorn"],
            ["a:b", "--host", "0.0.0.0"],
            None,
            (["/bin/sh", START], ["uvicorn", "a:b", "--host", "0.0.0.0"]),
        ),
        # An init that forwards signals stays in front.
        (
            ["/usr/bin/tini", "--"],
            ["uvicorn", "a:b"],
            None,
            (["/usr/bin/tini", "--", "/bin/sh", START], ["uvicorn", "a:b"]),
        ),
        # uvicorn's workers: the launcher forks as many servers.
        (
            None,
            ["uvicorn", "a:b", "--workers", "2"],
            None,
            (["/bin/sh", START], ["uvicorn", "a:b", "--workers", "2"]),
        ),
        # FastAPI's CLI runs uvicorn: `fastapi run`, as its docs' Dockerfile has it.
        (
            None,
            ["fastapi", "run", "app/main.py", "--port", "80"],
            None,
            (["/bin/sh", START], ["fastapi", "run", "app/main.py", "--port", "80"]),
        ),
        (
            None,
            ["python3", "-m", "fastapi", "run", "--workers", "4"],
            None,
            (["python3", LAUNCHER, "--"], ["python3", "-m", "fastapi", "run", "--workers", "4"]),
        ),
        # Servers that reload on file changes themselves, or something else: left as they are.
        (None, ["uvicorn", "a:b", "--reload"], None, None),
        (None, ["fastapi", "dev", "app/main.py"], None, None),
        (None, ["python3", "-m", "flask", "run"], None, None),
        (None, ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "a:b"], None, None),
        (None, ["sh", "-c", "alembic upgrade head && uvicorn a:b"], None, None),
        (None, None, None, None),
    ],
)
def test_only_a_lone_uvicorn_is_started_under_the_launcher(
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    override: list[str] | None,
    expected: tuple[list[str], list[str]] | None,
) -> None:
    launch = plan(entrypoint, cmd, override)
    if expected is None:
        assert launch is None
        return
    assert launch is not None
    if expected[0] == PY:
        assert launch.entrypoint == ["/usr/bin/python3", LAUNCHER, "--"]
    else:
        assert launch.entrypoint == expected[0]
    assert launch.command == expected[1]


def test_an_app_command_override_of_a_uvicorn_image_is_what_runs() -> None:
    launch = plan(None, ["uvicorn", "a:b"], ["uvicorn", "other:app", "--port", "9000"])
    assert launch is not None
    assert launch.command == ["uvicorn", "other:app", "--port", "9000"]
    assert plan(None, ["uvicorn", "a:b"], ["gunicorn", "a:b"]) is None


def test_the_archive_holds_the_launcher_and_its_start_script_executable() -> None:
    with tarfile.open(fileobj=io.BytesIO(archive())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"nocrud-preload", LAUNCHER[1:], START[1:]}
        assert all(m.mode == 0o755 for m in members.values())
        launcher = tar.extractfile(members[LAUNCHER[1:]])
        start = tar.extractfile(members[START[1:]])
        assert launcher is not None and start is not None
        assert b"def supervise(" in launcher.read()
        script = start.read().decode()
    assert script.startswith("#!/bin/sh\n")
    assert f'exec $interpreter {LAUNCHER} -- "$@"' in script
