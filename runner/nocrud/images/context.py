"""Which files of an app's build context count, found fast.

The app image's cache key hashes the files Docker would send as the build context:
everything under ``app.build`` but what ``.dockerignore`` leaves out (approximated:
enough to keep the cache stable; ``!`` re-includes), and never nocrud's own state
(``.nocrud/``: history and last run change on every run and are nothing the app is
built from). An ignored directory is pruned before it is walked, unless a ``!``
pattern could re-include something inside it: a context holding a big virtualenv
costs one ``stat`` for it, not one per file.

:func:`assemble` makes the context Docker receives: the directory as Docker itself
would send it (docker-py's exact ``.dockerignore`` rules), without ``.nocrud/``, plus the
files ``app.add_to_context`` brings from elsewhere and a Dockerfile that lives outside.
"""

from __future__ import annotations

import fnmatch
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO

from docker.utils.build import exclude_paths

__all__ = [
    "OUTSIDE_DOCKERFILE",
    "STATE_DIR",
    "assemble",
    "context_files",
    "dockerignore_patterns",
    "extra_files",
    "ignored",
]

#: nocrud's own state beside nocrud.yaml (history, last run): never part of a build context.
STATE_DIR = ".nocrud"
#: Directories no build context needs hashed (caches and VCS metadata).
_ALWAYS_SKIPPED = {"__pycache__", ".git", STATE_DIR}
_GLOB = set("*?[")
#: The name a Dockerfile from outside the build directory gets inside the context.
OUTSIDE_DOCKERFILE = ".nocrud.Dockerfile"


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of ``context/.dockerignore`` (none when there is no such file)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _normal(pattern: str) -> str:
    return pattern.strip("/").removeprefix("./").removeprefix("**/")


def ignored(rel: PurePosixPath, patterns: list[str]) -> bool:
    """Approximate .dockerignore matching of one path relative to the context."""
    candidates = [str(rel), *(str(p) for p in rel.parents if str(p) != ".")]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = _normal(pattern[1:] if negate else pattern)
        if any(
            fnmatch.fnmatch(c, pat) or fnmatch.fnmatch(PurePosixPath(c).name, pat)
            for c in candidates
        ):
            result = not negate
    return result


def _may_reinclude(rel: str, patterns: list[str]) -> bool:
    """Whether a ``!`` pattern could name something inside the directory ``rel``."""
    for pattern in patterns:
        if not pattern.startswith("!"):
            continue
        pat = _normal(pattern[1:])
        head = pat.split("/", 1)[0]
        if pattern[1:].lstrip("/").startswith("**") or "/" not in pat:
            return True  # a name matched at any depth (see ignored)
        if pat.startswith(rel + "/") or _GLOB & set(head):
            return True
    return False


def context_files(root: Path, patterns: list[str]) -> Iterator[Path]:
    """The files under ``root`` that ``patterns`` keep, in a stable order.

    Ignored directories are pruned before they are walked unless a ``!`` pattern could
    re-include something inside them; nocrud's state, VCS metadata and ``__pycache__``
    directories are never walked.
    """
    for top, dirs, files in os.walk(root):
        here = Path(top)
        base = PurePosixPath(here.relative_to(root).as_posix())
        kept = []
        for name in sorted(dirs):
            rel = base / name if str(base) != "." else PurePosixPath(name)
            if name in _ALWAYS_SKIPPED:
                continue
            if ignored(rel, patterns) and not _may_reinclude(str(rel), patterns):
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            rel = base / name if str(base) != "." else PurePosixPath(name)
            if not ignored(rel, patterns) and (here / name).is_file():
                yield here / name


def extra_files(extra: Mapping[str, Path]) -> Iterator[tuple[str, Path]]:
    """``(name inside the context, file)`` of every file ``app.add_to_context`` brings."""
    for target, source in sorted(extra.items()):
        if source.is_dir():
            for path in context_files(source, []):
                yield f"{target}/{path.relative_to(source).as_posix()}", path
        else:
            yield target, source


def assemble(build: Path, dockerfile: Path, extra: Mapping[str, Path]) -> tuple[IO[bytes], str]:
    """The build context as a tar file, and the Dockerfile's name inside it.

    Args:
        build: ``app.build``.
        dockerfile: ``app.dockerfile`` (absolute; inside ``build`` or not).
        extra: ``app.add_to_context``; a name there replaces the same name of ``build``.
    """
    inside = dockerfile.is_relative_to(build)
    name = dockerfile.relative_to(build).as_posix() if inside else OUTSIDE_DOCKERFILE
    added = dict(extra_files(extra))
    prefixes = tuple(f"{target}/" for target in extra)
    names = exclude_paths(str(build), dockerignore_patterns(build), dockerfile=name)
    kept = sorted(
        rel
        for rel in names
        if rel.split("/", 1)[0] != STATE_DIR
        and rel not in added
        and rel not in extra
        and not rel.startswith(prefixes)
    )
    fileobj = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    with tarfile.open(mode="w", fileobj=fileobj) as tar:
        for rel in kept:
            tar.add(build / rel, arcname=rel, recursive=False)
        for rel, path in added.items():
            tar.add(path, arcname=rel, recursive=False)
        if not inside:
            tar.add(dockerfile, arcname=name, recursive=False)
    fileobj.seek(0)
    return fileobj, name
