"""Moving images between Docker daemons without a registry: ``docker save`` / ``docker load``.

``nocrud images export FILE`` writes, in one archive, the images a worker needs: the
project's app and pre-migrated database images (built first if missing), the database
base image and the reaper. The layers they share cross once. ``nocrud images import
FILE`` reads the archive's manifest, compares each tag with what the daemon has, and
loads the archive only when something is missing or different; either way it says which.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nocrud.docker.resources import image_id
from nocrud.errors import InfrastructureError, UsageError

__all__ = ["ImportReport", "archived_images", "export_images", "import_images"]

_CHUNK = 2 * 1024 * 1024


def export_images(client: Any, refs: Sequence[str], path: Path) -> int:
    """Save ``refs`` into one archive at ``path``; return its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # docker-py's Image.save takes one image; this endpoint takes several at once.
    response = client.api.get(
        f"{client.api.base_url}/images/get",
        params=[("names", ref) for ref in refs],
        stream=True,
        timeout=3600,
    )
    tmp = path.with_name(f".{path.name}.tmp")
    size = 0
    with response:
        response.raise_for_status()
        with tmp.open("wb") as out:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                out.write(chunk)
                size += len(chunk)
    tmp.replace(path)
    return size


def archived_images(path: Path) -> dict[str, str]:
    """``{tag: image id}`` of an archive written by ``docker save``.

    Raises:
        UsageError: The file is missing or not such an archive.
    """
    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("manifest.json")
            manifest = json.load(member) if member is not None else None
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise UsageError(
            f"{path}: not an image archive ({type(exc).__name__}: {first}): "
            "write one with `nocrud images export FILE`"
        ) from exc
    if not isinstance(manifest, list):
        raise UsageError(
            f"{path}: not an image archive (no manifest.json list): "
            "write one with `nocrud images export FILE`"
        )
    found: dict[str, str] = {}
    for entry in manifest:
        config = str(entry.get("Config", ""))
        digest = config.rsplit("/", 1)[-1].removesuffix(".json")
        for tag in entry.get("RepoTags") or []:
            found[str(tag)] = f"sha256:{digest}"
    return found


@dataclass(frozen=True)
class ImportReport:
    """What ``import`` did: the tags it loaded and those already present."""

    loaded: tuple[str, ...]
    present: tuple[str, ...]


def import_images(client: Any, path: Path) -> ImportReport:
    """Load the archive at ``path`` into the daemon when it has something the daemon lacks."""
    wanted = archived_images(path)
    missing = tuple(sorted(t for t, i in wanted.items() if image_id(client, t) != i))
    present = tuple(sorted(t for t in wanted if t not in missing))
    if missing:
        import requests

        try:
            with path.open("rb") as archive:
                client.images.load(iter(lambda: archive.read(_CHUNK), b""))
        except requests.RequestException as exc:
            raise InfrastructureError(
                f"loading {path} into the Docker daemon failed ({type(exc).__name__}: {exc}): "
                "check it with `nocrud doctor`, then run the import again"
            ) from exc
    return ImportReport(loaded=missing, present=present)
