"""nocrud.yaml: the model, its error messages and the precedence of sources."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from nocrud.config import Config, ConfigError, find_config, load_config
from nocrud.config.model import MASK

VALID: dict[str, Any] = {
    "project": "example",
    "app": {
        "build": "example_app",
        "port": 8000,
        "health_path": "/health",
        "env": {"DATABASE_URL": "{database_url}"},
    },
    "database": {
        "name": "inventory",
        "user": "inventory",
        "password": "inventory",
        "migrate": ["python3", "-m", "inventory.migrate"],
        "migrations": ["example_app/migrations"],
    },
    "flows": {"path": "flows"},
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out like the bundled example, and the working directory."""
    (tmp_path / "example_app" / "migrations").mkdir(parents=True)
    (tmp_path / "example_app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "example_app" / "migrations" / "001_init.sql").write_text("SELECT 1;\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(**changes: Any) -> dict[str, Any]:
    """VALID with dotted keys changed; a value of ... deletes the key."""
    data = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return data


def write(directory: Path, data: dict[str, Any] | str) -> Path:
    path = directory / "nocrud.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def load(
    directory: Path,
    data: dict[str, Any] | str,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    write(directory, data)
    return load_config(env=env or {}, overrides=overrides)


def problems(directory: Path, data: dict[str, Any] | str, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(directory, data, **kwargs)
    return str(info.value).splitlines()


# --- a valid file -------------------------------------------------------------


def test_valid_file_loads_with_absolute_paths_and_defaults(project: Path) -> None:
    config = load(project, VALID)

    assert config.source == project.resolve() / "nocrud.yaml"
    assert config.root == project.resolve()
    assert config.app.build == project.resolve() / "example_app"
    assert config.app.dockerfile == project.resolve() / "example_app" / "Dockerfile"
    assert config.database.migrations == (project.resolve() / "example_app" / "migrations",)
    assert config.flows.path == project.resolve() / "flows"
    assert config.database.migrate == ("python3", "-m", "inventory.migrate")
    assert config.database.image == "nocrud/postgres:15"
    assert config.run.strategy == "image"
    assert config.run.keep_failed is False
    assert config.timeouts.flow == 300.0
    assert config.app_image_repo == "nocrud/example-app"
    assert config.db_image_repo == "nocrud/example-db"


def test_config_is_frozen(project: Path) -> None:
    config = load(project, VALID)
    with pytest.raises(ValidationError):
        config.project = "other"  # type: ignore[misc]


def test_command_given_as_a_string_is_split_like_a_shell(project: Path) -> None:
    config = load(project, settings(app__command="gunicorn -b '0.0.0.0:8000' app:wsgi"))
    assert config.app.command == ("gunicorn", "-b", "0.0.0.0:8000", "app:wsgi")


def test_numbers_in_env_become_strings(project: Path) -> None:
    config = load(project, settings(app__env={"WORKERS": 2, "RATIO": 0.5}))
    assert config.app.env == {"WORKERS": "2", "RATIO": "0.5"}


def test_section_left_empty_means_all_defaults(project: Path) -> None:
    config = load(project, yaml.safe_dump(VALID) + "run:\ntimeouts:\n")
    assert config.run.parallel is None
    assert config.timeouts.app_ready == 60.0


# --- one test per kind of mistake ---------------------------------------------


def test_unknown_key_suggests_the_close_one(project: Path) -> None:
    assert problems(project, settings(run__paralel=4)) == [
        "nocrud.yaml: run.paralel: unknown key: did you mean 'parallel'?"
    ]


def test_key_in_the_wrong_section_says_where_it_belongs(project: Path) -> None:
    assert problems(project, settings(parallel=4)) == [
        "nocrud.yaml: parallel: unknown key here: it belongs at run.parallel"
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(project: Path) -> None:
    (line,) = problems(project, settings(flows__zzz=1))
    assert line == "nocrud.yaml: flows.zzz: unknown key: remove it (keys allowed here: path)"


def test_wrong_type(project: Path) -> None:
    assert problems(project, settings(timeouts__flow="soon")) == [
        "nocrud.yaml: timeouts.flow: 'soon' is not a valid timeout: "
        "use a number of seconds greater than 0"
    ]


def test_yaml_boolean_is_not_a_number_nor_an_env_value(project: Path) -> None:
    lines = problems(project, settings(run__parallel=True, app__env={"DEBUG": True}))
    assert lines == [
        "nocrud.yaml: app.env.DEBUG: true is not a valid env value: "
        "use a string; write true/false/yes/no/on/off in quotes",
        "nocrud.yaml: run.parallel: true is not a valid worker count: "
        "use an integer >= 1, or null for one per CPU",
    ]


def test_missing_required_key(project: Path) -> None:
    (line,) = problems(project, settings(project=...))
    assert line.startswith(
        "nocrud.yaml: project: is required: add `project:` at the top level; use"
    )


def test_bad_port(project: Path) -> None:
    assert problems(project, settings(app__port=70000)) == [
        "nocrud.yaml: app.port: 70000 is not a valid port: use a number from 1 to 65535"
    ]


def test_bad_identifier(project: Path) -> None:
    assert problems(project, settings(database__user="Inventory-User")) == [
        "nocrud.yaml: database.user: 'Inventory-User' is not a valid database user: "
        "use 1 to 63 lowercase letters, digits or '_', not starting with a digit"
    ]


def test_bad_project_name(project: Path) -> None:
    (line,) = problems(project, settings(project="My App"))
    assert line.startswith("nocrud.yaml: project: 'My App' is not a valid project name: use")


def test_bad_strategy_name_suggests_the_close_one(project: Path) -> None:
    assert problems(project, settings(run__strategy="templates")) == [
        "nocrud.yaml: run.strategy: 'templates' is not a valid strategy: "
        "use one of image, pool, template, migrate, external: did you mean 'template'?"
    ]


def test_both_build_and_image(project: Path) -> None:
    (line,) = problems(project, settings(app__image="myapp:1"))
    assert line.startswith("nocrud.yaml: app: both are set: set exactly one of app.build")


def test_neither_build_nor_image(project: Path) -> None:
    (line,) = problems(project, settings(app__build=...))
    assert line.startswith("nocrud.yaml: app: neither is set: set exactly one of app.build")


def test_missing_build_directory(project: Path) -> None:
    assert problems(project, settings(app__build="nope")) == [
        f"nocrud.yaml: app.build: 'nope' does not exist (looked for {project.resolve() / 'nope'}): "
        "create it or fix the path"
    ]


def test_missing_dockerfile_is_looked_for_in_the_build_directory(project: Path) -> None:
    (line,) = problems(project, settings(app__dockerfile="Dockerfile.prod"))
    assert line.startswith("nocrud.yaml: app.dockerfile: 'Dockerfile.prod' does not exist")
    assert str(project.resolve() / "example_app" / "Dockerfile.prod") in line


def test_missing_migrations_path(project: Path) -> None:
    lines = problems(project, settings(database__migrations=["example_app/migrations", "gone"]))
    assert len(lines) == 1
    assert lines[0].startswith("nocrud.yaml: database.migrations[1]: 'gone' does not exist")


def test_unknown_placeholder(project: Path) -> None:
    (line,) = problems(project, settings(app__env={"DB": "{database_uri}"}))
    assert line.startswith(
        "nocrud.yaml: app.env.DB: '{database_uri}' uses unknown placeholder {database_uri}: "
        "use one of {database_url}, {db_host}"
    )


def test_unmatched_brace_in_env_value(project: Path) -> None:
    (line,) = problems(project, settings(app__env={"X": "a{b"}))
    assert "unmatched '{' or '}': write {{ or }} for a literal brace" in line


def test_bad_health_path(project: Path) -> None:
    assert problems(project, settings(app__health_path="health")) == [
        "nocrud.yaml: app.health_path: 'health' is not a valid health path: "
        "use a URL path starting with '/', such as /health"
    ]


def test_yaml_syntax_error_names_line_and_column(project: Path) -> None:
    text = "project: example\napp:\n  build: [example_app\n  port: 8000\n"
    (line,) = problems(project, text)
    assert line.startswith("nocrud.yaml: line 4, column 7: invalid YAML (")
    assert line.endswith("): fix the syntax there")


def test_top_level_not_a_mapping(project: Path) -> None:
    assert problems(project, "- project: example\n") == [
        "nocrud.yaml: the top level is a list, not a mapping: "
        "write `key: value` lines such as `project: myapp`"
    ]


def test_empty_file(project: Path) -> None:
    (line,) = problems(project, "# nothing yet\n")
    assert line.startswith("nocrud.yaml: the file is empty: add at least `project:`")


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(env={})
    # A nocrud.yaml above tmp_path would be found instead; there is none on a sane machine.
    assert str(info.value) == (
        f"no nocrud.yaml found in {Path.cwd()} or its parents: "
        "create one (see docs/config.md) or pass --config PATH"
    )


def test_missing_file_named_by_cli_or_environment(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--config other.yaml: no such file: "):
        load_config(Path("other.yaml"), env={})
    with pytest.raises(ConfigError, match=r"^NOCRUD_CONFIG: no such file: .*gone.yaml: check"):
        load_config(env={"NOCRUD_CONFIG": "gone.yaml"})


def test_bad_environment_variable_value(project: Path) -> None:
    lines = problems(project, VALID, env={"NOCRUD_PARALLEL": "abc", "NOCRUD_KEEP_FAILED": "maybe"})
    assert lines == [
        "NOCRUD_PARALLEL=abc: run.parallel: 'abc' is not a valid worker count: "
        "use an integer >= 1, or null for one per CPU",
        "NOCRUD_KEEP_FAILED=maybe: run.keep_failed: 'maybe' is not a valid true/false value: "
        "use true or false",
    ]


def test_bad_override_names_the_command_line(project: Path) -> None:
    assert problems(project, VALID, overrides={"run.parallel": 0, "run.paralell": 2}) == [
        "command line: run.parallel: 0 is not a valid worker count: "
        "use an integer >= 1, or null for one per CPU",
        "command line: run.paralell: unknown key: did you mean 'parallel'?",
    ]


def test_every_problem_is_reported_at_once(project: Path) -> None:
    data = settings(
        project="Bad Name",
        app__port=0,
        app__healthpath="/x",
        database__name="9lives",
        database__seed_sql="seed.sql",
        timeouts__db_ready=-1,
    )
    lines = problems(project, data, env={"NOCRUD_STRATEGY": "fast"})

    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "project",
        "app.port",
        "app.healthpath",
        "database.name",
        "database.seed_sql",
        "run.strategy",
        "timeouts.db_ready",
    ]
    assert all(line.startswith(("nocrud.yaml: ", "NOCRUD_STRATEGY=fast: ")) for line in lines)
    text = "\n".join(lines)
    assert "Input should" not in text
    assert "pydantic" not in text


def test_secrets_never_appear_in_error_messages(project: Path) -> None:
    lines = problems(project, settings(database__password=["hunter2"], app__env={"API_KEY": True}))
    assert lines == [
        "nocrud.yaml: app.env.API_KEY: (hidden) is not a valid env value: "
        "use a string; write true/false/yes/no/on/off in quotes",
        "nocrud.yaml: database.password: (hidden) is not a valid password: use a string",
    ]


def test_config_error_survives_pickling() -> None:
    error = ConfigError("a: b: c", "d: e: f")
    copied = pickle.loads(pickle.dumps(error))
    assert copied.problems == error.problems
    assert str(copied) == "a: b: c\nd: e: f"


# --- where the file is and which value wins ----------------------------------


def test_file_is_found_in_a_parent_directory(project: Path) -> None:
    write(project, VALID)
    (project / "flows" / "deep").mkdir()
    os.chdir(project / "flows" / "deep")  # monkeypatch.chdir in the fixture restores it
    assert load_config(env={}).source == project.resolve() / "nocrud.yaml"
    assert find_config(project / "flows" / "deep") == project.resolve() / "nocrud.yaml"


def test_cli_path_beats_nocrud_config(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    write(project, VALID)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "flows").mkdir()
    data = settings(app__build=..., app__image="myapp:1", database__migrations=[])
    write(elsewhere, {**data, "project": "elsewhere"})

    from_env = load_config(env={"NOCRUD_CONFIG": str(elsewhere / "nocrud.yaml")})
    from_cli = load_config(project, env={"NOCRUD_CONFIG": str(elsewhere / "nocrud.yaml")})

    assert from_env.project == "elsewhere"
    assert from_env.root == elsewhere.resolve()
    assert from_cli.project == "example"


def test_precedence_default_file_environment_command_line(project: Path) -> None:
    env = {"NOCRUD_PARALLEL": "3", "NOCRUD_TIMEOUT": "45", "NOCRUD_KEEP_FAILED": "yes"}
    cli = {"run.parallel": 4}

    default = load(project, VALID)
    from_file = load(project, settings(run__parallel=2, timeouts__flow=10))
    from_env = load(project, settings(run__parallel=2, timeouts__flow=10), env=env)
    from_cli = load(project, settings(run__parallel=2), env=env, overrides=cli)

    assert default.run.parallel is None
    assert default.parallel == (os.cpu_count() or 1)
    assert (from_file.parallel, from_file.timeouts.flow) == (2, 10.0)
    assert (from_env.parallel, from_env.timeouts.flow, from_env.run.keep_failed) == (3, 45.0, True)
    assert (from_cli.parallel, from_cli.timeouts.flow) == (4, 45.0)


def test_environment_is_read_at_call_time(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, VALID)
    monkeypatch.setenv("NOCRUD_PARALLEL", "5")
    monkeypatch.setenv("NOCRUD_DB_IMAGE", "postgres:16")
    config = load_config()
    assert config.parallel == 5
    assert config.database.image == "postgres:16"


def test_app_image_from_environment_replaces_the_build(project: Path) -> None:
    config = load(project, VALID, env={"NOCRUD_APP_IMAGE": "registry/app:sha"})
    assert config.app.image == "registry/app:sha"
    assert config.app.build is None


def test_empty_environment_variable_counts_as_unset(project: Path) -> None:
    assert load(project, VALID, env={"NOCRUD_PARALLEL": ""}).run.parallel is None


# --- rendering and display ----------------------------------------------------


def test_render_app_env_fills_placeholders_and_quotes_the_password(project: Path) -> None:
    env = {
        "DATABASE_URL": "{database_url}",
        "PGHOST": "{db_host}",
        "DSN": "host={db_host} port={db_port} dbname={db_name} user={db_user}",
        "PGPASSWORD": "{db_password}",
        "LITERAL": "{{not a placeholder}}",
    }
    config = load(project, settings(app__env=env, database__password="p@ss/w:rd"))

    assert config.render_app_env("db", 5432) == {
        "DATABASE_URL": "postgresql://inventory:p%40ss%2Fw%3Ard@db:5432/inventory",
        "PGHOST": "db",
        "DSN": "host=db port=5432 dbname=inventory user=inventory",
        "PGPASSWORD": "p@ss/w:rd",
        "LITERAL": "{not a placeholder}",
    }


def test_render_app_env_takes_one_environment_s_own_database_role_and_password(
    project: Path,
) -> None:
    env = {"DATABASE_URL": "{database_url}", "DSN": "dbname={db_name} user={db_user}"}
    config = load(project, settings(app__env=env))

    own = config.render_app_env("127.0.0.1", 5432, name="flow_0007", user="u", password="n#w")
    only_password = config.render_app_env("127.0.0.1", 5432, password="n#w")

    assert own == {
        "DATABASE_URL": "postgresql://u:n%23w@127.0.0.1:5432/flow_0007",
        "DSN": "dbname=flow_0007 user=u",
    }
    assert only_password["DATABASE_URL"] == "postgresql://inventory:n%23w@127.0.0.1:5432/inventory"
    assert config.database.password.get_secret_value() != "n#w"  # the config is left as it was


def test_display_dict_masks_secrets(project: Path) -> None:
    env = {
        "DATABASE_URL": "{database_url}",
        "LEGACY_URL": "postgres://admin:s3cret@db.internal:5432/app",
        "TEMPLATE_URL": "postgresql://{db_user}:{db_password}@{db_host}/{db_name}",
        "API_TOKEN": "abc123",
        "secret_key": "xyz",
        "LOG_LEVEL": "debug",
    }
    config = load(project, settings(app__env=env))

    shown = config.to_display_dict()

    assert shown["database"]["password"] == MASK
    assert shown["app"]["env"] == {
        "DATABASE_URL": "{database_url}",
        "LEGACY_URL": f"postgres://admin:{MASK}@db.internal:5432/app",
        "TEMPLATE_URL": "postgresql://{db_user}:{db_password}@{db_host}/{db_name}",
        "API_TOKEN": MASK,
        "secret_key": MASK,
        "LOG_LEVEL": "debug",
    }
    assert shown["app"]["build"] == str(project.resolve() / "example_app")
    assert shown["run"] == {
        "parallel": None,
        "strategy": "image",
        "keep_failed": False,
        "warm": 0,
        "pool_max_uses": 100,
        "pool_app_reload": "restart",
        "keep_pool": 0.0,
        "keep_pool_max": 4,
    }
    assert "inventory" not in yaml.safe_dump(shown["database"]["password"])
