"""The images a run needs, built once and cached by content hash.

Two images per project:

* the **app image** ``nocrud/<project>-app:<key>``, built from the app's build
  context (or an existing image named in the config);
* the **database image** ``nocrud/<project>-db:<key>``: a PostgreSQL container
  from the base image is started on a private network, the app's migrate
  command (and optional seed) runs against it from the app image, PostgreSQL is
  stopped cleanly and the container is committed. Every flow then starts from a
  migrated database; migrations never run per flow.

The keys are hashes of everything that changes the result, so an unchanged
project builds nothing. Migration files are hashed by content like every file of
the build context: an edited migration rebuilds the app image (Docker's layer cache
redoes only the layers from the one that copies it) and then the database image.
nocrud copies nothing into the app's containers, so the migrate command reads the
migrations exactly where the app's own Dockerfile put them (issue 21 item 3).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.engine import Connection
from nocrud.docker.postgres import ALIAS as DB_ALIAS
from nocrud.docker.postgres import (
    BUILT_IN_PASSWORD,
    SUPERUSER,
    DatabaseAddress,
    DumpError,
    base_image_environment,
    create_role_and_database,
    load_dump,
    run_sql_file,
    wait_until_accepting,
)
from nocrud.docker.postgres import PORT as DB_PORT
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import Container, Network, image_id
from nocrud.errors import InfrastructureError, one_line
from nocrud.images.context import assemble, context_files, dockerignore_patterns, extra_files
from nocrud.images.own import REAPER, OwnImageError, ensure_own_image, own_image

Say = Callable[[str], None]
KEY_LENGTH = 16


class BuildError(InfrastructureError):
    """An image could not be built; the message carries the evidence (build or migrate output)."""


@dataclass(frozen=True)
class BuiltImages:
    """The images one run uses.

    Attributes:
        app: The app image.
        db: The image flows' PostgreSQL containers start from: the pre-migrated one, or
            ``database.image`` itself for strategies that make the schema themselves
            (``build_images(..., db_image=False)``).
        app_built: The app image was built by this run.
        db_built: The database image was built by this run.
    """

    app: str
    db: str
    app_built: bool
    db_built: bool


# ---------------------------------------------------------------- hashing


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".git" not in path.parts:
            yield path


def _hash_files(digest: Any, root: Path, files: list[Path]) -> None:
    for path in files:
        rel = path.relative_to(root).as_posix()
        digest.update(b"F" + rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def app_key(config: Config) -> str:
    """Cache key of the app image: what Docker uses to build it (context, Dockerfile, args)."""
    digest = hashlib.sha256(b"nocrud-app-v2\0")
    build = config.app.build
    assert build is not None
    files = list(context_files(build, dockerignore_patterns(build)))
    _hash_files(digest, build, files)
    # Docker always reads the Dockerfile, even where .dockerignore leaves it out of the
    # context: its content counts wherever it lives, its name when inside the context.
    dockerfile = config.app.dockerfile
    digest.update(b"dockerfile\0" + hashlib.sha256(dockerfile.read_bytes()).digest())
    if dockerfile.is_relative_to(build):
        digest.update(b"named\0" + dockerfile.relative_to(build).as_posix().encode())
    for name, path in extra_files(config.app.add_to_context):
        digest.update(
            b"added\0" + name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest()
        )
    for arg, value in sorted(config.app.build_args.items()):
        digest.update(b"arg\0" + arg.encode() + b"\0" + value.encode() + b"\0")
    return digest.hexdigest()[:KEY_LENGTH]


def db_key(config: Config, app_image_id: str, base_image_id: str) -> str:
    """Cache key of the database image: everything that changes what the migrate step produces."""
    digest = hashlib.sha256(b"nocrud-db-v1\0")
    parts: dict[str, Any] = {
        "app_image": app_image_id,
        "base_image": base_image_id,
        "migrate": config.database.migrate,
        "source": config.database.schema_source,
        "seed": config.database.seed,
        "name": config.database.name,
        "user": config.database.user,
        "password": config.database.password.get_secret_value(),
        "env": dict(sorted(config.app.env.items())),
    }
    digest.update(json.dumps(parts, sort_keys=True).encode())
    for item in config.database.migrations:
        root = item if item.is_dir() else item.parent
        _hash_files(
            digest,
            root,
            list(_walk(item)) if item.is_dir() else [item],
        )
    if config.database.seed_sql is not None:
        digest.update(b"seed_sql\0" + config.database.seed_sql.read_bytes())
    if config.database.schema_source == "dump" and config.database.dump is not None:
        digest.update(b"dump\0" + config.database.dump.read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


# ---------------------------------------------------------------- images


#: nocrud's own images (nocrud.images.own builds the ones it knows when missing).
OWN_IMAGES = ("nocrud/postgres:", "nocrud/reaper:")


def ensure_image(client: docker.DockerClient, ref: str, *, what: str, key: str, say: Say) -> str:
    """Return the id of ``ref``, pulling it if needed; say what to do when neither works.

    Args:
        client: Docker client.
        ref: Image reference.
        what: What the image is, for messages.
        key: The nocrud.yaml key that names it, for messages.
        say: Prints a line for the user.
    """
    found = image_id(client, ref)
    if found:
        return found
    if own_image(ref) is not None:
        # nocrud's own images are on no registry: built from the package's Dockerfiles.
        try:
            return str(ensure_own_image(client, ref, say=say))
        except OwnImageError as exc:
            raise BuildError(f"{what} {ref}: {exc}") from exc
    say(f"pulling {what} {ref}")
    try:
        return str(client.images.pull(ref).id)
    except docker.errors.DockerException as exc:
        hint = (
            "nocrud builds nocrud/postgres:15, nocrud/postgres:17 and nocrud/reaper:1 "
            "itself: name one of those, or pull or build this one first"
            if ref.startswith(OWN_IMAGES)
            else f"pull or build it first, or name another image in {key} of nocrud.yaml"
        )
        raise BuildError(
            f"{what} {ref} is not present and cannot be pulled ({one_line(exc)}): {hint}"
        ) from exc


def build_app_image(client: docker.DockerClient, config: Config, *, say: Say) -> tuple[str, bool]:
    """Build (or find) the app image. Returns its reference and whether it was built now."""
    if config.app.image is not None:
        ensure_image(client, config.app.image, what="app image", key="app.image", say=say)
        return config.app.image, False
    build = config.app.build
    assert build is not None
    ref = f"{config.app_image_repo}:{app_key(config)}"
    if image_id(client, ref):
        say(f"app image up to date: {ref}")
        return ref, False
    say(f"building app image {ref} from {build}")
    started = time.monotonic()
    log: list[str] = []
    context, dockerfile = assemble(build, config.app.dockerfile, config.app.add_to_context)
    try:
        for chunk in client.api.build(
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile,
            buildargs=dict(config.app.build_args),
            tag=ref,
            rm=True,
            forcerm=True,
            decode=True,
            labels={cleanup.LABEL_PROJECT: config.project, cleanup.LABEL_IMAGE_KEY: ref},
            timeout=int(config.timeouts.build),
        ):
            if "stream" in chunk:
                log.extend(str(chunk["stream"]).splitlines())
            if "error" in chunk:
                raise BuildError(
                    f"building the app image from {build} failed: {chunk['error'].strip()}\n"
                    + "\n".join(log[-30:])
                )
    except docker.errors.DockerException as exc:
        raise BuildError(f"building the app image from {build} failed: {one_line(exc)}") from exc
    finally:
        context.close()
    say(f"built app image {ref} in {time.monotonic() - started:.1f}s")
    _prune_superseded(client, config.app_image_repo, keep=ref)
    return ref, True


def build_db_image(
    client: docker.DockerClient,
    config: Config,
    app_ref: str,
    *,
    say: Say,
    run_id: str,
    connection: Connection,
) -> tuple[str, bool]:
    """Build (or find) the pre-migrated database image; return its reference and if it was built."""
    base_id = ensure_image(
        client, config.database.image, what="database base image", key="database.image", say=say
    )
    app_id = image_id(client, app_ref)
    assert app_id is not None
    ref = f"{config.db_image_repo}:{db_key(config, app_id, base_id)}"
    if image_id(client, ref):
        say(f"db image up to date: {ref}")
        return ref, False
    say(f"building db image {ref}: migrating a fresh database")
    started = time.monotonic()
    try:
        _migrate_and_commit(client, config, app_ref, ref, run_id=run_id, say=say, link=connection)
    except docker.errors.DockerException as exc:
        raise BuildError(f"building the db image {ref} failed: {one_line(exc)}") from exc
    say(f"built db image {ref} in {time.monotonic() - started:.1f}s")
    _prune_superseded(client, config.db_image_repo, keep=ref)
    return ref, True


def build_images(
    client: docker.DockerClient,
    config: Config,
    *,
    say: Say,
    run_id: str,
    connection: Connection,
    db_image: bool = True,
) -> BuiltImages:
    """The build step of ``nocrud up`` and all of ``nocrud build``.

    Args:
        db_image: Build the pre-migrated database image too; strategies that make the
            schema themselves (``migrate``, ``external``) skip it and get ``database.image``.
    """
    try:
        # The backstop for killed runs: built now if missing, so the next run has it.
        ensure_own_image(client, REAPER, say=say)
    except OwnImageError as exc:
        raise BuildError(f"the reaper image: {exc}") from exc
    app, app_built = build_app_image(client, config, say=say)
    if not db_image:
        return BuiltImages(app=app, db=config.database.image, app_built=app_built, db_built=False)
    db, db_built = build_db_image(
        client, config, app, say=say, run_id=run_id, connection=connection
    )
    return BuiltImages(app=app, db=db, app_built=app_built, db_built=db_built)


# ---------------------------------------------------------------- the migrate step


def _migrate_and_commit(
    client: docker.DockerClient,
    config: Config,
    app_ref: str,
    ref: str,
    *,
    run_id: str,
    say: Say,
    link: Connection,
) -> None:
    # The session label lets the reaper remove these if nocrud is killed mid-build.
    labels = {**cleanup.run_labels(run_id, config.project, role="db-build"), **session_labels()}
    timeout = config.timeouts.build
    name = f"nocrud-{run_id}-build"
    dbc = config.database
    with (
        Network(client, name, labels=labels, connection=link),
        Container(
            client,
            dbc.image,
            what="build database",
            name=f"{name}-db",
            labels=labels,
            network=name,
            aliases=[DB_ALIAS],
            ports=link.ports(DB_PORT),
            # An official postgres image keeps PGDATA on a VOLUME: moved so commit keeps it.
            environment=base_image_environment(client.images.get(dbc.image).attrs["Config"] or {}),
        ) as db,
    ):
        try:
            host, port = db.address(link, DB_PORT, name)
        except (LookupError, RuntimeError) as exc:
            raise BuildError(f"cannot reach the build database: {exc}\n{db.logs(30)}") from exc
        superuser = DatabaseAddress(host, port, "postgres", SUPERUSER, BUILT_IN_PASSWORD)
        last = wait_until_accepting(superuser, config.timeouts.db_ready)
        if last is not None:
            raise BuildError(
                "PostgreSQL from the base image did not accept connections within "
                f"{config.timeouts.db_ready:.0f}s ({last}):\n{db.logs(30)}"
            )
        password = dbc.password.get_secret_value()
        create_role_and_database(superuser, dbc.name, dbc.user, password)
        run_in_app = functools.partial(
            run_in_app_image,
            client,
            config,
            app_ref,
            network=name,
            labels=labels,
            timeout=timeout,
            say=say,
        )
        own = DatabaseAddress(host, port, dbc.name, dbc.user, password)
        make_schema(own, config, run_in_app, say=say)
        db.obj.stop(timeout=60)
        exit_code = db.obj.wait(timeout=60).get("StatusCode", -1)
        if exit_code != 0:
            raise BuildError(
                f"PostgreSQL did not shut down cleanly after migrating (exit {exit_code}):\n"
                + db.logs(30)
            )
        repository, tag = ref.rsplit(":", 1)
        db.obj.commit(
            repository=repository,
            tag=tag,
            message=f"nocrud: {config.project} migrated database",
            conf={
                # `docker commit` merges the container's labels into the image's; blank
                # the per-run ones, or the reaper would remove the cached image and every
                # container started from it would claim the build's run and owner.
                "Labels": {
                    **dict.fromkeys(labels, ""),
                    cleanup.LABEL_PROJECT: config.project,
                    cleanup.LABEL_IMAGE_KEY: ref,
                    cleanup.LABEL_ROLE: "db-image",
                }
            },
        )


def make_schema(
    own: DatabaseAddress,
    config: Config,
    run_in_app: Callable[[tuple[str, ...], str], None],
    *,
    say: Say,
) -> None:
    """Fill the empty database ``own`` from ``database.source``, then seed it.

    The one recipe of every strategy that makes a schema (the database image, the
    ``migrate`` strategy per flow, the ``external`` strategy's template): the migrate
    command (or the dump, loaded as the app's role), ``seed_sql``, ``seed``.

    Args:
        own: The database, as the app's role, reachable from this process.
        config: The configuration (``database.*``).
        run_in_app: Runs a command from the app image against that database.
        say: Prints a line for the user.
    """
    dbc = config.database
    if dbc.schema_source == "dump":
        assert dbc.dump is not None
        say(f"loading the database from {dbc.dump.name}")
        try:
            load_dump(own, dbc.dump)
        except DumpError as exc:
            raise BuildError(f"database.dump: {exc}") from exc
    elif dbc.migrate is None:
        say("no database.migrate command: the database holds an empty schema")
    else:
        run_in_app(dbc.migrate, "migrate")
    if dbc.seed_sql is not None:
        say(f"seeding from {dbc.seed_sql.name}")
        run_sql_file(own, dbc.seed_sql, on_error=lambda text: BuildError(f"seed SQL {text}"))
    if dbc.seed is not None:
        run_in_app(dbc.seed, "seed")


def run_in_app_image(
    client: docker.DockerClient,
    config: Config,
    app_ref: str,
    command: tuple[str, ...],
    what: str,
    *,
    network: str,
    labels: dict[str, str],
    timeout: float,
    say: Say,
    environment: dict[str, str] | None = None,
) -> None:
    """Run ``command`` to completion in a container of the app image on ``network``.

    Its last output lines are said when it succeeds; a non-zero exit is a
    :class:`BuildError` with all of it (said there only, so once).

    Args:
        environment: The container's environment; ``app.env`` rendered for the
            database at ``db:5432`` when None.
    """
    container = Container(
        client,
        app_ref,
        what=what,
        labels=labels,
        network=network,
        command=list(command),
        environment=(
            environment if environment is not None else config.render_app_env(DB_ALIAS, DB_PORT)
        ),
    )
    with contextlib.ExitStack() as stack:
        stack.callback(container.remove)
        container.start()
        try:
            status = container.obj.wait(timeout=timeout)
        except Exception as exc:
            raise BuildError(
                f"the {what} command did not finish within {timeout:.0f}s: "
                f"raise timeouts.build in nocrud.yaml or fix the command\n" + container.logs(40)
            ) from exc
        output = container.obj.logs(stdout=True, stderr=True).decode(errors="replace")
        code = int(status.get("StatusCode", -1))
        if code != 0:
            # Said once, by the error: not also line by line as progress (issue 21 item 13).
            shown = shlex.join(command)
            raise BuildError(
                f"the {what} command `{shown}` failed with exit code {code}; its output:\n"
                + output.rstrip()
            )
        for line in output.splitlines()[-20:]:
            say(f"  {what}: {line}")


def _prune_superseded(client: docker.DockerClient, repository: str, *, keep: str) -> None:
    """Remove older cached images of the same repository, so the cache does not grow forever."""
    for image in client.images.list(name=repository):
        if keep in image.tags:
            continue
        for tag in image.tags:
            if tag.startswith(repository + ":"):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, noprune=False)
