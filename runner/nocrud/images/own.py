"""nocrud's own images, built on demand from the Dockerfiles shipped inside the package.

A pip-installed nocrud needs no clone of its repository: ``nocrud/postgres:<major>``
(PostgreSQL tuned for disposable test databases) and ``nocrud/reaper:1`` (the Ryuk-style
backstop) are built from ``nocrud/images/assets/`` the first time a run needs them, and
their Debian base image (``debian:<release>-slim``) is pulled or, where no registry is
reachable, made offline with ``debootstrap`` (``assets/base/ensure-base-image.sh``, the
script ``images/build-all.sh`` runs too). The PostgreSQL majors offered are the ones
Debian ships, so they build offline: 15 (bookworm) and 17 (trixie).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from nocrud.docker.reaper import REAPER_IMAGE as REAPER
from nocrud.docker.resources import image_id
from nocrud.errors import one_line

__all__ = [
    "ASSETS",
    "POSTGRES_MAJORS",
    "REAPER",
    "OwnImage",
    "OwnImageError",
    "ensure_own_image",
    "own_image",
    "postgres_image",
]

#: Where the Dockerfiles and scripts of nocrud's own images live inside the package.
ASSETS = Path(__file__).resolve().parent / "assets"
#: PostgreSQL majors buildable from Debian's packages, and the release that ships each.
POSTGRES_MAJORS = {15: "bookworm", 17: "trixie"}

Say = Callable[[str], None]


class OwnImageError(RuntimeError):
    """One of nocrud's own images could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class OwnImage:
    """How to build one of nocrud's images: its context, build arguments and Debian base."""

    ref: str
    context: Path
    release: str
    buildargs: dict[str, str]

    @property
    def base(self) -> str:
        """The Debian image its Dockerfile starts ``FROM``."""
        return f"debian:{self.release}-slim"


def postgres_image(major: int) -> str:
    """The reference of nocrud's PostgreSQL image for ``major`` (``nocrud/postgres:15``)."""
    return f"nocrud/postgres:{major}"


def own_image(ref: str) -> OwnImage | None:
    """The recipe of ``ref`` when it is one of nocrud's own images, else None."""
    if ref == REAPER:
        return OwnImage(ref, ASSETS / "reaper", "bookworm", {})
    repository, _, tag = ref.partition(":")
    if repository == "nocrud/postgres" and tag.isdigit() and int(tag) in POSTGRES_MAJORS:
        release = POSTGRES_MAJORS[int(tag)]
        args = {"PG_MAJOR": tag, "DEBIAN_RELEASE": release}
        return OwnImage(ref, ASSETS / "postgres", release, args)
    return None


def ensure_own_image(client: docker.DockerClient, ref: str, *, say: Say) -> str | None:
    """The id of ``ref``, building it first when it is one of nocrud's own and missing.

    Returns:
        The image id, or None when ``ref`` is not one of nocrud's images (and is missing).

    Raises:
        OwnImageError: The base image or the build failed; the message has the cause.
    """
    found = image_id(client, ref)
    if found is not None:
        return found
    recipe = own_image(ref)
    if recipe is None:
        return None
    _ensure_base(client, recipe, say=say)
    say(f"building {ref} from nocrud's own Dockerfile (once per Docker host)")
    started = time.monotonic()
    try:
        image, _logs = client.images.build(
            path=str(recipe.context), tag=ref, buildargs=recipe.buildargs, rm=True, forcerm=True
        )
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise OwnImageError(f"building {ref} failed: {one_line(exc)}") from exc
    say(f"built {ref} in {time.monotonic() - started:.1f}s")
    return str(image.id)


def _ensure_base(client: docker.DockerClient, recipe: OwnImage, *, say: Say) -> None:
    """Make ``recipe.base`` present: here already, pulled, or made offline with debootstrap."""
    if image_id(client, recipe.base) is not None:
        return
    try:
        client.images.pull(recipe.base)
    except docker.errors.DockerException:
        pass
    else:
        return
    say(f"{recipe.base} cannot be pulled: making it offline with debootstrap (about a minute)")
    script = ASSETS / "base" / "ensure-base-image.sh"
    if shutil.which("docker") is None:
        raise OwnImageError(
            f"{recipe.base} is not here, cannot be pulled, and making it offline needs the "
            "docker command: install it (Debian: apt-get install docker.io) or load the image"
        )
    env = {**os.environ, "NOCRUD_BASE_IMAGE": recipe.base, "NOCRUD_BASE_SUITE": recipe.release}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise OwnImageError(
            f"making {recipe.base} offline failed (exit {done.returncode}):\n  "
            + "\n  ".join(detail)
            + "\nfix: install debootstrap (apt-get install debootstrap) and run as root, or "
            f"load {recipe.base} into Docker (docker load)"
        )
