"""The images' cache keys: what changes them and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from nocrud.config import load_config
from nocrud.images.build import _ignored, app_key, db_key


def _project(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "migrations").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (app / "main.py").write_text("print('hi')\n")
    (app / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    (app / "tests").mkdir()
    (app / "tests" / "test_x.py").write_text("")
    (app / ".dockerignore").write_text("tests/\n**/*.pyc\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "nocrud.yaml").write_text(
        "project: shop\napp:\n  build: app\n"
        "database:\n  migrate: [migrate]\n  migrations: [app/migrations]\n"
    )
    return tmp_path


def test_app_key_ignores_dockerignored_files_and_migration_contents(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "tests" / "test_x.py").write_text("changed")
    (root / "app" / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id bigint);\n")
    assert app_key(config) == key
    (root / "app" / "main.py").write_text("print('changed')\n")
    assert app_key(config) != key


def test_a_new_migration_file_changes_the_app_key(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "migrations" / "0002_more.sql").write_text("SELECT 1;\n")
    assert app_key(config) != key


def test_db_key_covers_migrations_app_image_base_image_and_command(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = db_key(config, "sha256:app", "sha256:base")
    assert db_key(config, "sha256:app", "sha256:base") == key
    assert db_key(config, "sha256:app2", "sha256:base") != key
    assert db_key(config, "sha256:app", "sha256:base2") != key
    other = load_config(
        root / "nocrud.yaml", env={}, overrides={"database.migrate": ["migrate", "--fast"]}
    )
    assert db_key(other, "sha256:app", "sha256:base") != key
    (root / "app" / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id bigint);\n")
    assert db_key(config, "sha256:app", "sha256:base") != key


def test_cache_keys_do_not_depend_on_where_the_project_lives(tmp_path: Path) -> None:
    one = load_config(_project(tmp_path / "one") / "nocrud.yaml", env={})
    two = load_config(_project(tmp_path / "two") / "nocrud.yaml", env={})
    assert app_key(one) == app_key(two)
    assert db_key(one, "a", "b") == db_key(two, "a", "b")


@pytest.mark.parametrize(
    ("path", "patterns", "ignored"),
    [
        ("tests/test_x.py", ["tests/"], True),
        ("pkg/mod.pyc", ["**/*.pyc"], True),
        ("pkg/mod.py", ["**/*.pyc"], False),
        ("README.md", ["*.md", "!README.md"], False),
        ("docs/a.md", ["*.md"], True),
    ],
)
def test_dockerignore_matching(path: str, patterns: list[str], ignored: bool) -> None:
    from pathlib import PurePosixPath

    assert _ignored(PurePosixPath(path), patterns) is ignored


def test_a_dockerfile_outside_the_build_directory_is_hashed_by_its_content(
    tmp_path: Path,
) -> None:
    """Testing someone else's app with a Dockerfile of one's own beside it (issue 13, item 1)."""
    root = _project(tmp_path)
    (root / "mine").mkdir()
    dockerfile = root / "mine" / "Dockerfile"
    dockerfile.write_text("FROM debian:bookworm-slim\nCOPY . /app\n")
    (root / "nocrud.yaml").write_text(
        "project: shop\napp:\n  build: app\n  dockerfile: ../mine/Dockerfile\n"
        "database:\n  migrate: [migrate]\n  migrations: [app/migrations]\n"
    )
    config = load_config(root / "nocrud.yaml", env={})
    assert config.app.dockerfile == dockerfile
    before = app_key(config)
    assert before != app_key(load_config(_project(tmp_path / "inside") / "nocrud.yaml", env={}))
    dockerfile.write_text("FROM debian:bookworm-slim\nCOPY . /srv\n")
    assert app_key(config) != before
