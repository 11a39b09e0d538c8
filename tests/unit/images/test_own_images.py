"""nocrud's own images and other PostgreSQL images, without Docker (issue 13 items 10, 11)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from nocrud.config import ConfigError, load_config
from nocrud.docker.postgres import COMMITTABLE_PGDATA, base_image_environment
from nocrud.images.own import ASSETS, ensure_own_image, own_image

#: What `docker image inspect postgres:13` says, as far as nocrud reads it.
OFFICIAL = {
    "Env": ["PATH=/usr/bin", "PG_MAJOR=13", "PGDATA=/var/lib/postgresql/data"],
    "Volumes": {"/var/lib/postgresql/data": {}},
    "Entrypoint": ["docker-entrypoint.sh"],
}


def test_the_package_ships_what_its_images_are_built_from() -> None:
    for name in ("postgres/Dockerfile", "postgres/pg_hba.conf", "reaper/Dockerfile"):
        assert (ASSETS / name).is_file(), name
    assert (ASSETS / "reaper" / "reaper.py").is_file()
    assert (ASSETS / "base" / "ensure-base-image.sh").is_file()


@pytest.mark.parametrize(
    ("ref", "release", "args"),
    [
        ("nocrud/postgres:15", "bookworm", {"PG_MAJOR": "15", "DEBIAN_RELEASE": "bookworm"}),
        ("nocrud/postgres:17", "trixie", {"PG_MAJOR": "17", "DEBIAN_RELEASE": "trixie"}),
        ("nocrud/reaper:1", "bookworm", {}),
    ],
)
def test_own_images_are_built_from_the_packaged_dockerfiles(
    ref: str, release: str, args: dict[str, str]
) -> None:
    recipe = own_image(ref)
    assert recipe is not None
    assert recipe.base == f"debian:{release}-slim"
    assert recipe.buildargs == args
    assert (recipe.context / "Dockerfile").is_file()


@pytest.mark.parametrize("ref", ["nocrud/postgres:13", "postgres:15", "nocrud/reaper:2"])
def test_other_images_are_not_nocruds_to_build(ref: str) -> None:
    assert own_image(ref) is None


def test_an_official_postgres_image_gets_pgdata_outside_its_volume() -> None:
    env = base_image_environment(OFFICIAL)
    assert env["PGDATA"] == COMMITTABLE_PGDATA
    assert not env["PGDATA"].startswith("/var/lib/postgresql/data")
    assert env["POSTGRES_USER"] == "postgres"
    assert env["POSTGRES_PASSWORD"] == "postgres"


def test_nocrud_s_own_image_needs_nothing() -> None:
    own = {"Env": ["PGDATA=/var/lib/nocrud/pgdata"], "Volumes": None, "Entrypoint": None}
    assert base_image_environment(own) == {}


def _config(tmp_path: Path, database: str) -> Path:
    (tmp_path / "flows").mkdir()
    path = tmp_path / "nocrud.yaml"
    path.write_text(f"project: p\napp: {{image: app:1}}\ndatabase: {database}\n")
    return path


def test_database_version_picks_nocrud_s_image(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "{version: 17}"), env={})
    assert config.database.image == "nocrud/postgres:17"


@pytest.mark.parametrize(
    ("database", "error"),
    [
        ("{version: 13}", "database.version: 13 is not a valid choice"),
        ("{version: 15, image: 'postgres:13'}", "set only one"),
    ],
)
def test_database_version_errors_name_the_key(tmp_path: Path, database: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_config(_config(tmp_path, database), env={})


class _Images:
    """The Docker seam as nocrud.images.own uses it: one base present, nothing else."""

    def __init__(self) -> None:
        self.present = {"debian:trixie-slim"}
        self.built: list[tuple[str, dict[str, str]]] = []

    def get(self, ref: str) -> Any:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return SimpleNamespace(id=f"sha256:{ref}")

    def build(self, *, path: str, tag: str, buildargs: dict[str, str], **_: Any) -> Any:
        assert (Path(path) / "Dockerfile").is_file()
        self.built.append((tag, buildargs))
        self.present.add(tag)
        return SimpleNamespace(id=f"sha256:{tag}"), []

    def pull(self, ref: str) -> Any:
        raise docker.errors.APIError("no registry here")


def test_a_missing_own_image_is_built_from_the_package_when_needed() -> None:
    client = SimpleNamespace(images=_Images())
    said: list[str] = []
    found = ensure_own_image(client, "nocrud/postgres:17", say=said.append)  # type: ignore[arg-type]
    assert found == "sha256:nocrud/postgres:17"
    assert client.images.built == [
        ("nocrud/postgres:17", {"PG_MAJOR": "17", "DEBIAN_RELEASE": "trixie"})
    ]
    assert any("from nocrud's own Dockerfile" in line for line in said)
    # Present now: nothing is built twice.
    ensure_own_image(client, "nocrud/postgres:17", say=said.append)  # type: ignore[arg-type]
    assert len(client.images.built) == 1
    assert ensure_own_image(client, "postgres:13", say=said.append) is None  # type: ignore[arg-type]
