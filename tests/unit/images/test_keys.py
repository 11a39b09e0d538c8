"""The images' cache keys: what changes them and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from nocrud.config import load_config
from nocrud.images.build import app_key, db_key
from nocrud.images.context import ignored as _ignored


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


def test_app_key_ignores_dockerignored_files(tmp_path: Path) -> None:
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "tests" / "test_x.py").write_text("changed")
    assert app_key(config) == key
    (root / "app" / "main.py").write_text("print('changed')\n")
    assert app_key(config) != key


def test_an_edited_migration_changes_the_app_key(tmp_path: Path) -> None:
    """Issue 21 item 3: nothing is copied into the app's containers any more, so an edited
    migration reaches the migrate command through a rebuilt app image."""
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id bigint);\n")
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


def test_a_dockerignored_dockerfile_still_counts(tmp_path: Path) -> None:
    """Issue 21 item 2: Docker reads the Dockerfile even when .dockerignore leaves it out."""
    root = _project(tmp_path)
    (root / "app" / ".dockerignore").write_text("Dockerfile\ntests/\n")
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / "Dockerfile").write_text("FROM debian:bookworm-slim\nRUN true\n")
    assert app_key(config) != key


def test_nocrud_state_in_the_context_never_counts(tmp_path: Path) -> None:
    """Issue 21 item 2: `.nocrud/` (history, last run) beside the app changes no key."""
    root = _project(tmp_path)
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "app" / ".nocrud").mkdir()
    (root / "app" / ".nocrud" / "last-run.json").write_text("{}")
    assert app_key(config) == key


def test_ignored_directories_are_pruned_unless_a_pattern_reincludes(tmp_path: Path) -> None:
    """Issue 21 item 4: an ignored venv is never walked; `!` inside it still works."""
    from nocrud.images.context import context_files

    (tmp_path / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "big.py").write_text("")
    (tmp_path / "venv" / "keep.txt").write_text("")
    (tmp_path / "main.c").write_text("")
    walked: list[str] = []
    real_walk = __import__("os").walk

    def spy(top: Path) -> object:
        for entry in real_walk(top):
            walked.append(Path(entry[0]).name)
            yield entry

    import nocrud.images.context as context

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(context.os, "walk", spy)
        files = [p.name for p in context_files(tmp_path, ["venv/"])]
        assert files == ["main.c"]
        assert "venv" not in walked and "lib" not in walked
        walked.clear()
        files = [p.name for p in context_files(tmp_path, ["venv/", "!venv/keep.txt"])]
        assert sorted(files) == ["keep.txt", "main.c"]


def test_build_args_and_files_brought_into_the_context_change_the_key(tmp_path: Path) -> None:
    """Issue 21 item 4: app.build_args and app.add_to_context are part of the key."""
    root = _project(tmp_path)
    (root / "wheels").mkdir()
    (root / "wheels" / "a.whl").write_text("one")
    (root / "nocrud.yaml").write_text(
        (root / "nocrud.yaml")
        .read_text()
        .replace(
            "  build: app\n",
            "  build: app\n  build_args: {MODE: offline}\n  add_to_context: {wheels: wheels}\n",
        )
    )
    config = load_config(root / "nocrud.yaml", env={})
    key = app_key(config)
    (root / "wheels" / "a.whl").write_text("two")
    assert app_key(config) != key
    key = app_key(config)
    (root / "nocrud.yaml").write_text(
        (root / "nocrud.yaml").read_text().replace("MODE: offline", "MODE: online")
    )
    assert app_key(load_config(root / "nocrud.yaml", env={})) != key


def test_the_assembled_context_brings_files_in_and_leaves_nocrud_state_out(tmp_path: Path) -> None:
    """Issue 21 items 2 and 4: the context Docker receives."""
    import tarfile

    from nocrud.images.context import OUTSIDE_DOCKERFILE, assemble

    app = tmp_path / "app"
    (app / ".nocrud").mkdir(parents=True)
    (app / ".nocrud" / "last-run.json").write_text("{}")
    (app / "main.c").write_text("int main;\n")
    (app / "Dockerfile").write_text("FROM scratch\n")
    (app / ".dockerignore").write_text("Dockerfile\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes").write_text("binary")
    (tmp_path / "own.Dockerfile").write_text("FROM debian\n")
    fileobj, name = assemble(app, app / "Dockerfile", {"build/notes": tmp_path / "out" / "notes"})
    with fileobj, tarfile.open(fileobj=fileobj) as tar:
        names = set(tar.getnames())
    assert name == "Dockerfile"
    assert {"Dockerfile", "main.c", "build/notes"} <= names
    assert not any(n.startswith(".nocrud") for n in names)
    fileobj, name = assemble(app, tmp_path / "own.Dockerfile", {})
    with fileobj, tarfile.open(fileobj=fileobj) as tar:
        assert name == OUTSIDE_DOCKERFILE
        extracted = tar.extractfile(OUTSIDE_DOCKERFILE)
        assert extracted is not None
        assert extracted.read() == b"FROM debian\n"
