"""What a checkout is, as three content hashes: its flows, its app and its migrations.

The coordinator sends its fingerprint with every task; a worker compares it with its own
and refuses a task from a different checkout, naming the parts that differ, instead of
running other flows against another app. The app's part is the app image's own cache
key (so it matches exactly when the image would), the others hash file names and
contents. Nothing here talks to Docker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from nocrud.config import Config
from nocrud.images.build import app_key

__all__ = ["PARTS", "compare", "fingerprint"]

#: The parts of a fingerprint, in the order messages name them.
PARTS = ("flows", "app", "migrations")


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _hash_tree(roots: Iterable[Path], extra: object = None) -> str:
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for root in roots:
        base = root if root.is_dir() else root.parent
        for path in _files(root):
            digest.update(path.relative_to(base).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def fingerprint(config: Config) -> dict[str, str]:
    """``{"flows": hash, "app": hash, "migrations": hash}`` of the checkout ``config`` reads."""
    app = app_key(config) if config.app.build is not None else f"image {config.app.image}"
    database = config.database
    migrations = _hash_tree(
        [*database.migrations, *([database.seed_sql] if database.seed_sql else [])],
        {"migrate": database.migrate, "seed": database.seed},
    )
    return {"flows": _hash_tree([config.flows.path]), "app": app, "migrations": migrations}


def compare(theirs: Mapping[str, str], ours: Mapping[str, str]) -> list[str]:
    """The parts (of :data:`PARTS`) whose hashes differ, in that order."""
    return [part for part in PARTS if theirs.get(part) != ours.get(part)]
