"""Starting a pool pair's uvicorn under nocrud's preloading launcher (``auto`` resets).

uvicorn (alone, with ``--workers``, or run by ``fastapi run``) can be renewed only by a
restart, which imports the whole app again: a full boot per flow. Under
``run.pool_app_reload: auto``, when the app's command runs uvicorn, a pool pair starts it
under :mod:`nocrud.environment.preload_launcher`
instead: a parent that imports the app once and forks a new server on SIGHUP, so each
reset costs a fork instead of a boot (gunicorn's ``--preload``, for uvicorn).

This module decides, from the image's entrypoint and command (and ``app.command``),
whether and how to wrap the command, and makes the archive copied into the created
container. The wrapping is narrow on purpose: ``uvicorn …``, ``python -m uvicorn …``,
``fastapi run …`` (with or without ``--workers``), behind an init that forwards signals
(tini, dumb-init) too; not a shell, not ``--reload``, not ``fastapi dev``. Whatever the
launcher itself finds it cannot drive, it runs unchanged, and ``auto`` then sees plain
uvicorn and restarts it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from importlib import resources
from typing import Any

import docker

from nocrud.environment.reload import PRELOADED

__all__ = [
    "DIRECTORY",
    "LAUNCHER",
    "NOT_PRELOADING",
    "Launch",
    "archive",
    "digest",
    "for_image",
    "plan",
]

#: The launcher in the app's container (``auto`` knows the process by this word).
LAUNCHER = PRELOADED
DIRECTORY = LAUNCHER.rpartition("/")[0]
#: What the launcher's line says when it runs the command unchanged (the reason follows).
NOT_PRELOADING = "nocrud-preload: not preloading:"
#: Runs a uvicorn console script's own interpreter on the launcher (read from its #! line).
START = f"{DIRECTORY}/start"
#: Inits that forward signals to their one child; the launcher goes after them.
_INITS = frozenset({"tini", "tini-static", "docker-init", "dumb-init", "catatonit"})
_PYTHON = re.compile(r"python[0-9.]*$")
#: The servers the launcher drives: uvicorn, and FastAPI's CLI (``fastapi run``), which runs it.
_SERVERS = frozenset({"uvicorn", "fastapi"})
#: Restarts the server on file changes itself (the launcher would refuse it).
_MULTI = ("--reload",)

_START_SCRIPT = f"""\
#!/bin/sh
# nocrud: run uvicorn's console script with its own interpreter on nocrud's preloading
# launcher ({LAUNCHER}); anything unexpected runs the command unchanged.
script=$(command -v "$1") || exec "$@"
IFS= read -r line < "$script" || exec "$@"
case "$line" in
    '#!'*python*) interpreter=${{line#??}} ;;
    *) exec "$@" ;;
esac
exec $interpreter {LAUNCHER} -- "$@"
"""


@dataclass(frozen=True)
class Launch:
    """The app container's entrypoint and command that start its uvicorn preloaded.

    Attributes:
        entrypoint: The container's new entrypoint.
        command: Its new command (the original command line, which the launcher parses).
        what: The original command line, for people.
    """

    entrypoint: list[str]
    command: list[str]
    what: str


def plan(
    entrypoint: list[str] | None, cmd: list[str] | None, override: list[str] | None
) -> Launch | None:
    """How to start this command under the launcher; None when it is not a lone uvicorn.

    Args:
        entrypoint: The image's ``Entrypoint``.
        cmd: The image's ``Cmd``.
        override: ``app.command`` (replaces ``Cmd``, as Docker does), or None.
    """
    argv = [*(entrypoint or []), *(override if override is not None else (cmd or []))]
    init: list[str] = []
    if argv and argv[0].rpartition("/")[2] in _INITS:
        init, argv = [argv[0]], argv[1:]
        while argv and argv[0].startswith("-"):
            init.append(argv.pop(0))
            if init[-1] == "--":
                break
    if not argv or any(word.split("=", 1)[0] in _MULTI for word in argv):
        return None
    program = argv[0].rpartition("/")[2]
    what = " ".join(argv)
    if program in _SERVERS and _runs(program, argv[1:]):
        return Launch([*init, "/bin/sh", START], argv, what)
    if _PYTHON.match(program) and argv[1:2] == ["-m"] and argv[2:3] and _runs(argv[2], argv[3:]):
        return Launch([*init, argv[0], LAUNCHER, "--"], argv, what)
    return None


def _runs(server: str, args: list[str]) -> bool:
    """Whether ``server args`` serves the app from one process tree the launcher can drive."""
    if server == "fastapi":
        return args[:1] == ["run"]  # `fastapi dev` reloads on changes
    return server == "uvicorn"


@functools.lru_cache(maxsize=16)
def _image_config(client: Any, image: str) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    try:
        config = client.images.get(image).attrs.get("Config") or {}
    except docker.errors.DockerException:
        return None, None
    entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd")
    return (
        tuple(entrypoint) if entrypoint else None,
        tuple(cmd) if cmd else None,
    )


def for_image(client: Any, image: str, override: list[str] | None) -> Launch | None:
    """:func:`plan` for a local image (its config read once per process)."""
    entrypoint, cmd = _image_config(client, image)
    return plan(list(entrypoint) if entrypoint else None, list(cmd) if cmd else None, override)


@functools.cache
def archive() -> bytes:
    """The tar archive that puts the launcher and its start script in ``/nocrud-preload``."""
    launcher = resources.files("nocrud.environment").joinpath("preload_launcher.py").read_bytes()
    out = io.BytesIO()
    with tarfile.open(mode="w", fileobj=out) as tar:
        folder = tarfile.TarInfo(DIRECTORY.lstrip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for path, data in ((LAUNCHER, launcher), (START, _START_SCRIPT.encode())):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@functools.cache
def digest() -> str:
    """A short hash of :func:`archive`: a kept pair started with another launcher is another
    pool's (its key covers this), so a new nocrud never adopts an old launcher."""
    return hashlib.sha256(archive()).hexdigest()[:12]
