"""``nocrud doctor``'s checks of the images a run needs, and whether this host can have them.

``nocrud up`` uses the app image and ``database.image`` (pulled when missing, or, for
nocrud's own ``nocrud/postgres:<major>``, built), and always builds ``nocrud/reaper:1`` when
it is missing. nocrud's own images are built from Debian's base image
(``debian:<release>-slim``), which ``up`` pulls or, where no registry answers, makes offline
with ``debootstrap`` and the ``docker`` command (as root it installs ``debootstrap`` with
``apt-get``). So a host where an own image is missing, its base is neither here nor
pullable, and it cannot be made offline is a host ``up`` refuses (exit 3): doctor fails
there too, naming what is missing and the ways out. A missing image nocrud can make is a
warning, as on a fresh Docker-in-Docker CI service, whose first ``nocrud up`` builds them.
"""

from __future__ import annotations

from typing import Any

from nocrud.cli._checks import Check, CheckStatus, Host
from nocrud.docker.podman import EngineKind
from nocrud.errors import one_line
from nocrud.images.own import REAPER, own_image

__all__ = ["BASE_IMAGE", "DEFAULT_DB_IMAGE", "image_checks", "offline_base_problem"]

#: Images every nocrud setup builds on (images/build-all.sh makes them offline).
BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_DB_IMAGE = "nocrud/postgres:15"


def image_checks(
    client: Any, host: Host, images: list[tuple[str, str]], kind: EngineKind
) -> list[Check]:
    """One check per image ``up`` needs (``images``: reference and the key naming it), one
    per Debian base nocrud would build its own images from, and the reaper's."""
    missing_own = [
        ref
        for ref in dict.fromkeys([*(ref for ref, _ in images), REAPER])
        if own_image(ref) is not None and not _present(client, ref)
    ]
    needing: dict[str, list[str]] = {}
    for ref in missing_own:
        recipe = own_image(ref)
        assert recipe is not None
        needing.setdefault(recipe.base, []).append(ref)
    roles = dict(images)
    for base in needing:
        roles.setdefault(base, "base of nocrud's images")
    bases = {
        base: _base(client, host, base, roles[base], needing.get(base, []))
        for base in roles
        if base == BASE_IMAGE or base in needing
    }
    checks = []
    for ref, role in roles.items():
        if ref in bases:
            checks.append(bases[ref])
            continue
        recipe = own_image(ref)
        base_check = bases.get(recipe.base) if recipe is not None else None
        checks.append(_image(client, ref, role, base_check))
    checks.append(_reaper(client, host, kind))
    return checks


def _present(client: Any, ref: str) -> bool:
    from nocrud.docker.resources import image_id

    return image_id(client, ref) is not None


def _size(client: Any, ref: str) -> str:
    image = client.images.get(ref)
    size = (image.attrs or {}).get("Size")
    return f", {size / 1e6:.0f} MB" if isinstance(size, int | float) else ""


def _registry_answer(client: Any, ref: str) -> str | None:
    """None when a registry knows ``ref`` (it can be pulled), else why not; pulls nothing."""
    try:
        client.api.inspect_distribution(ref)
    except Exception as exc:  # noqa: BLE001 - no registry, no image, no auth: all mean "cannot pull"
        return one_line(exc)
    return None


def offline_base_problem(host: Host) -> str | None:
    """Why this host cannot make a Debian base image offline, or None when it can.

    The way ``up`` makes it (``assets/base/ensure-base-image.sh``): ``debootstrap``, or
    ``apt-get`` as root to install it, then ``docker import`` through the ``docker`` command.
    """
    lacking = [command for command in ("docker", "bash") if host.which(command) is None]
    if host.which("debootstrap") is None:
        if not host.is_root:
            lacking.append("debootstrap (and not root to install it)")
        elif host.which("apt-get") is None:
            lacking.append("debootstrap (and no apt-get to install it: not a Debian host)")
    if not lacking:
        return None
    return "this host lacks " + ", ".join(lacking)


def _base(client: Any, host: Host, ref: str, role: str, needing: list[str]) -> Check:
    """A Debian base: fine when here or pullable; else only a problem when nocrud must build
    an image of its own from it, and a failure when it cannot make the base offline."""
    name = f"image {ref}"
    if _present(client, ref):
        return Check(name, CheckStatus.OK, f"present ({role}{_size(client, ref)})")
    why = _registry_answer(client, ref)
    if why is None:
        return Check(name, CheckStatus.OK, f"not present, pullable ({role}; pulled on first use)")
    if not needing:
        return Check(
            name,
            CheckStatus.OK,
            f"not present and not pullable ({role}), and not needed: nocrud's own images are here",
        )
    built = ", ".join(needing)
    problem = offline_base_problem(host)
    if problem is None:
        # A fresh Docker-in-Docker service lacks nocrud's own images in every CI job: the
        # job's first step (`nocrud doctor --wait 30`) must pass, and `nocrud build` makes them.
        return Check(
            name,
            CheckStatus.WARN,
            f"not present and not pullable ({role}): {why}; needed to build {built}",
            "`nocrud build` (or the first `nocrud up`) builds it here; offline it makes "
            f"{ref} with debootstrap, which needs a Debian job image (apt-get), and "
            "`nocrud images import FILE` loads the ones a CI cache kept",
        )
    return Check(
        name,
        CheckStatus.FAIL,
        f"not present and not pullable ({role}): {why}; `nocrud up` must build {built} from "
        f"it and cannot make it offline: {problem}",
        f"load the images here: `nocrud images export FILE` where nocrud ran (or `docker save "
        f"{ref} {built}`), then `nocrud images import FILE` (or `docker load`) on this host; "
        "or install debootstrap and the docker command (Debian: apt-get install debootstrap "
        "docker.io, as root); or use a host that reaches a registry",
    )


def _image(client: Any, ref: str, role: str, base: Check | None) -> Check:
    """An image ``up`` uses: here, pullable, or (nocrud's own) buildable from ``base``."""
    name = f"image {ref}"
    if _present(client, ref):
        return Check(name, CheckStatus.OK, f"present ({role}{_size(client, ref)})")
    why = _registry_answer(client, ref)
    if why is None:
        return Check(name, CheckStatus.OK, f"not present, pullable ({role}; pulled on first use)")
    if base is not None:
        base_ref = base.name.removeprefix("image ")
        if base.status is CheckStatus.FAIL:
            return Check(
                name,
                CheckStatus.FAIL,
                f"not present ({role}), and not buildable here: its base {base_ref} cannot be "
                "had (see that line)",
                f"`nocrud images import FILE` (made by `nocrud images export FILE` where nocrud "
                f"ran) or `docker load` it, or fix {base_ref} as its line says",
            )
        return Check(
            name,
            CheckStatus.WARN,
            f"not present ({role}): `nocrud up` builds it from nocrud's own Dockerfile on "
            f"{base_ref}",
            "`nocrud build` builds it now (once per Docker host)",
        )
    fix = (
        f"`docker pull {ref}` where a registry is reachable (or `docker save`/`docker load` "
        f"it onto this machine), or name another image in {role}"
    )
    return Check(name, CheckStatus.FAIL, f"not present and not pullable ({role}): {why}", fix)


def _reaper(client: Any, host: Host, kind: EngineKind) -> Check:

    from nocrud.docker import reaper

    if reaper.disabled_by_user(host.env, {}):
        return Check(
            "reaper",
            CheckStatus.WARN,
            "disabled by TESTCONTAINERS_RYUK_DISABLED: a run killed with SIGKILL leaves its "
            "containers until the next run or `nocrud clean`",
            "unset TESTCONTAINERS_RYUK_DISABLED",
        )

    problem = _podman_socket_problem(host) if kind.podman else None
    if problem is not None:
        return Check(
            "reaper",
            CheckStatus.FAIL,
            problem,
            "point DOCKER_HOST at Podman's socket (rootful: unix:///run/podman/podman.sock; "
            "rootless: unix://$XDG_RUNTIME_DIR/podman/podman.sock), or set "
            "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE to the socket's path on Podman's host",
        )

    from nocrud.docker.resources import image_id

    def present(ref: str) -> bool:
        return image_id(client, ref) is not None

    def pullable(ref: str) -> bool:
        return _registry_answer(client, ref) is None

    chosen = reaper.choose_image(
        host.env, default=reaper.default_ryuk_image(), present=present, pull=pullable
    )
    if chosen is not None and (present(chosen) or pullable(chosen)):
        how = "present" if present(chosen) else "pullable"
        source = " (RYUK_CONTAINER_IMAGE)" if host.env.get("RYUK_CONTAINER_IMAGE") else ""
        return Check(
            "reaper",
            CheckStatus.OK,
            f"{chosen}{source} {how}: a killed run's containers are removed within seconds",
        )
    missing = chosen or f"{reaper.default_ryuk_image()} or {reaper.REAPER_IMAGE}"
    if kind.podman:
        return _podman_reaper_missing(host, missing)
    return Check(
        "reaper",
        CheckStatus.WARN,
        f"no reaper image ({missing} neither present nor pullable): a run killed with SIGKILL "
        "leaves its containers until the next run or `nocrud clean`",
        f"build {reaper.REAPER_IMAGE} with images/build-all.sh (no registry needed), or set "
        "RYUK_CONTAINER_IMAGE to a Ryuk-compatible image you have",
    )


def _podman_socket_problem(host: Host) -> str | None:
    """Why the reaper could not reach Podman from its container, or None.

    The reaper mounts the engine's socket. Podman has no ``/var/run/docker.sock`` of its
    own, so over ``tcp://`` the reaper would find nothing to mount unless told the path.
    """
    where = host.env.get("DOCKER_HOST", "")
    if host.env.get("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE") or where.startswith("unix://"):
        return None
    return (
        f"DOCKER_HOST is {where or 'unset'}: the reaper mounts Podman's socket and has "
        "none to mount"
    )


def _podman_reaper_missing(host: Host, missing: str) -> Check:
    """On Podman no reaper image fails: a killed run's containers would stay up."""
    return Check(
        "reaper",
        CheckStatus.FAIL,
        f"no reaper image in Podman's store ({missing} neither present nor pullable): a run "
        "killed with SIGKILL would leave its containers running",
        "`nocrud build` builds nocrud/reaper:1 into Podman's store (no registry needed), or "
        "`docker save nocrud/reaper:1 | podman load` copies Docker's; or set "
        "RYUK_CONTAINER_IMAGE to a Ryuk-compatible image you have",
    )
