"""What a change means to ``nocrud watch``: rerun which flows, rebuild which image, or nothing.

A project on disk (flows package, build context with a .dockerignore, migrations) and
fake flows whose origins point into it; no Docker, no watcher.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nocrud.flows import Flow
from nocrud.watch.changes import Plan, Watched, classify, to_rerun


@pytest.fixture
def project(tmp_path: Path) -> Watched:
    flows = tmp_path / "flows"
    app = tmp_path / "app"
    migrations = app / "migrations"
    for directory in (flows, migrations, app / "src", app / "docs"):
        directory.mkdir(parents=True)
    for name in ("__init__.py", "sites.py", "users.py", "helpers.py"):
        (flows / name).write_text("")
    (app / "src" / "views.py").write_text("")
    (app / "docs" / "notes.md").write_text("")
    (app / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (app / ".dockerignore").write_text("docs/\n*.log\n")
    (migrations / "001.sql").write_text("")
    return Watched(
        flows=flows,
        build=app,
        ignore=("docs/", "*.log"),
        app_files=(app / "Dockerfile",),
        database=(migrations,),
    )


def flow(name: str, path: Path) -> Flow:
    return Flow(name=name, func=lambda ctx: None, origin=f"{path}:3")


def test_a_changed_flow_file_reruns_only_the_flows_it_defines(project: Watched) -> None:
    sites, users = project.flows / "sites.py", project.flows / "users.py"
    found = [flow("site_crud", sites), flow("site_list", sites), flow("login", users)]

    plan = classify([sites], project)

    assert plan == Plan(flow_files=frozenset({sites}), reasons=("sites.py: flows",))
    assert not plan.rebuild
    assert [f.name for f in to_rerun(plan, found, found)] == ["site_crud", "site_list"]
    # Selected with -f login: the edit of sites.py reruns nothing.
    assert to_rerun(plan, found[2:], found) == []


def test_a_changed_helper_module_reruns_every_selected_flow(project: Watched) -> None:
    found = [
        flow("site_crud", project.flows / "sites.py"),
        flow("login", project.flows / "users.py"),
    ]

    for helper in ("helpers.py", "__init__.py"):
        plan = classify([project.flows / helper], project)
        assert to_rerun(plan, found, found) == found, helper


def test_a_deleted_flow_file_reruns_nothing_its_flows_are_gone(project: Watched) -> None:
    users = project.flows / "users.py"
    users.unlink()
    found = [flow("site_crud", project.flows / "sites.py")]  # discovered after the delete

    plan = classify([users], project)

    assert plan.flow_files == {users}
    assert to_rerun(plan, found, found) == []


def test_an_app_file_rebuilds_the_app_image_and_reruns_every_selected_flow(
    project: Watched,
) -> None:
    assert project.build is not None
    found = [flow("site_crud", project.flows / "sites.py")]
    for changed in (project.build / "src" / "views.py", project.build / "Dockerfile",
                    project.build / ".dockerignore"):  # fmt: skip
        plan = classify([changed], project)
        assert (plan.app, plan.database, plan.rebuild) == (True, False, True), changed
        assert to_rerun(plan, found, found) == found


def test_a_migration_rebuilds_the_database_image(project: Watched) -> None:
    assert project.build is not None
    plan = classify([project.build / "migrations" / "001.sql"], project)

    assert (plan.database, plan.app, plan.rebuild) == (True, False, True)
    assert plan.reasons == ("001.sql: database image",)


@pytest.mark.parametrize(
    "relative",
    [
        "app/docs/notes.md",  # .dockerignore: docs/
        "app/server.log",  # .dockerignore: *.log
        "app/src/__pycache__/views.cpython-311.pyc",
        "app/.nocrud/last-run.json",  # nocrud's own state
        "app/.git/index",
        "flows/notes.txt",  # not a module
        "flows/__pycache__/sites.cpython-311.pyc",
        "elsewhere/readme.md",  # outside everything watched
    ],
)
def test_files_the_build_and_the_flows_ignore_mean_nothing(project: Watched, relative: str) -> None:
    root = project.flows.parent
    plan = classify([root / relative], project)

    assert plan.empty, plan


def test_one_batch_can_ask_for_everything_at_once(project: Watched) -> None:
    assert project.build is not None
    plan = classify(
        [project.flows / "sites.py", project.build / "src" / "views.py",
         project.build / "migrations" / "001.sql"],
        project,
    )  # fmt: skip

    assert (plan.app, plan.database) == (True, True)
    assert plan.flow_files == {project.flows / "sites.py"}


def test_flows_inside_the_build_context_rerun_instead_of_rebuilding(tmp_path: Path) -> None:
    """A flow edit must not cost an image build, even where the flows live in the app."""
    app = tmp_path / "app"
    flows = app / "flows"
    flows.mkdir(parents=True)
    (flows / "sites.py").write_text("")
    watched = Watched(flows=flows, build=app)

    plan = classify([flows / "sites.py"], watched)

    assert (plan.rebuild, plan.flow_files) == (False, {flows / "sites.py"})
    assert watched.roots() == [app]


def test_the_watched_roots_are_read_from_the_config(project: Watched, tmp_path: Path) -> None:
    from nocrud.config import load_config

    (tmp_path / "nocrud.yaml").write_text(
        "project: watchunit\n"
        "app: {build: app}\n"
        "database: {name: shop, user: shop, password: shop, migrate: ['true'],"
        " migrations: [app/migrations]}\n"
        "flows: {path: flows}\n"
    )
    watched = Watched.of(load_config(tmp_path / "nocrud.yaml"))

    assert watched == project
    # The migrations and the Dockerfile live inside the build context: one root covers them.
    assert set(watched.roots()) == {project.flows, project.build}
