"""nocrud.yaml's ``store`` section: the run store's URL and retention, with the usual precedence."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from nocrud.config import ConfigError, load_config
from nocrud.store import RunStore, store_settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "nocrud.yaml").write_text("project: demo\napp:\n  image: demo/app:1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths start at the file, not here
    return tmp_path


def _write(project: Path, store: str) -> Path:
    path = project / "nocrud.yaml"
    path.write_text(f"project: demo\napp:\n  image: demo/app:1\nstore:\n{store}")
    return path


def test_unset_the_history_is_sqlite_beside_the_file(project: Path) -> None:
    config = load_config(project / "nocrud.yaml", env={})
    assert config.store_url == f"sqlite:///{project / '.nocrud' / 'history.db'}"
    settings = store_settings(config)
    assert (settings.keep_runs, settings.keep_days) == (1000, 90.0)
    assert config.to_display_dict()["store"] == {"url": None, "keep_runs": 1000, "keep_days": 90.0}


def test_the_file_sets_url_and_retention_and_a_relative_sqlite_path_starts_at_the_file(
    project: Path,
) -> None:
    path = _write(project, "  url: sqlite:///history/runs.db\n  keep_runs: 50\n  keep_days: 7\n")
    config = load_config(path, env={})
    assert config.store_url == f"sqlite:///{project / 'history' / 'runs.db'}"
    assert store_settings(config).keep_runs == 50
    assert store_settings(config).keep_days == 7.0
    # The store opens where the file says, whatever the working directory.
    RunStore(config.store_url).close()
    assert (project / "history" / "runs.db").is_file()
    absolute = _write(project, "  url: sqlite:////srv/nocrud/h.db\n")
    assert load_config(absolute, env={}).store_url == "sqlite:////srv/nocrud/h.db"
    shared = _write(project, "  url: postgresql://ci:s3cret@db:5432/nocrud\n")
    config = load_config(shared, env={})
    assert config.store_url == "postgresql://ci:s3cret@db:5432/nocrud"
    assert config.to_display_dict()["store"]["url"] == "postgresql://ci:********@db:5432/nocrud"


def test_precedence_default_file_environment_command_line(project: Path) -> None:
    path = _write(project, "  url: sqlite:///from-file.db\n  keep_runs: 50\n")
    env = {
        "NOCRUD_STORE_URL": "sqlite:///from-env.db",
        "NOCRUD_STORE_KEEP_RUNS": "20",
        "NOCRUD_STORE_KEEP_DAYS": "3",
    }
    config = load_config(path, env=env)
    assert config.store_url == f"sqlite:///{project / 'from-env.db'}"
    assert (config.store.keep_runs, config.store.keep_days) == (20, 3.0)
    config = load_config(path, env=env, overrides={"store.url": "sqlite:///from-cli.db"})
    assert config.store_url == f"sqlite:///{project / 'from-cli.db'}"
    assert load_config(path, env={"NOCRUD_STORE_URL": " "}).store.url == "sqlite:///from-file.db"


@pytest.mark.parametrize(
    ("store", "env", "line"),
    [
        (
            "  keep_runs: 0\n",
            {},
            "nocrud.yaml: store.keep_runs: 0 is not a valid number of runs: use an integer >= 1",
        ),
        (
            "  keep_days: soon\n",
            {},
            "nocrud.yaml: store.keep_days: 'soon' is not a valid number of days: use a number "
            "greater than 0",
        ),
        (
            "  keep_days: true\n",
            {},
            "nocrud.yaml: store.keep_days: true is not a valid number of days",
        ),
        (
            "  keep_run: 5\n",
            {},
            "nocrud.yaml: store.keep_run: unknown key: did you mean 'keep_runs'?",
        ),
        (
            "  url: history.db\n",
            {},
            "nocrud.yaml: store.url: 'history.db' is not a database URL: write sqlite:///PATH",
        ),
        (
            "  keep_runs: 5\n",
            {"NOCRUD_STORE_KEEP_DAYS": "-1"},
            "NOCRUD_STORE_KEEP_DAYS=-1: store.keep_days: '-1' is not a valid number of days",
        ),
        (
            "  keep_runs: 5\n",
            {"NOCRUD_STORE_KEEP_RUNS": "many"},
            "NOCRUD_STORE_KEEP_RUNS=many: store.keep_runs: 'many' is not a valid number of runs",
        ),
    ],
)
def test_mistakes_name_the_source_the_key_and_the_fix(
    project: Path, store: str, env: dict[str, str], line: str
) -> None:
    path = _write(project, store)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    problems = [p.replace(str(path), "nocrud.yaml") for p in caught.value.problems]
    assert any(p.startswith(line) for p in problems), problems


@pytest.mark.parametrize("url", ["pg://u:hunter22 @host", "u:hunter22@host/db"])
def test_a_bad_url_from_the_environment_never_shows_its_password(project: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(project / "nocrud.yaml", env={"NOCRUD_STORE_URL": url})
    assert "hunter22" not in str(caught.value)
    assert str(caught.value).startswith("NOCRUD_STORE_URL=********@host")
    assert "store.url" in str(caught.value)


def test_nocrud_config_shows_the_store_and_serve_store_wins(project: Path) -> None:
    from nocrud.cli import main

    path = _write(project, "  url: postgresql://u:pw1234@127.0.0.1:1/nocrud\n")
    shown = CliRunner().invoke(main, ["-c", str(path), "config"], env={})
    assert shown.exit_code == 0, shown.output
    assert "store" in shown.output and "pw1234" not in shown.output
    # The file names an unreachable server; --store on the command line wins over it.
    served = CliRunner().invoke(main, ["-c", str(path), "serve", "--store", "not-a-url"], env={})
    assert served.exit_code == 2, served.output
    assert "command line: store.url: 'not-a-url' is not a database URL" in served.output


def test_nocrud_up_keeps_the_runs_store_keep_runs_says(project: Path) -> None:
    from nocrud.cli._record import recording
    from nocrud.workflow import UpOptions

    package = f"keepflows_{uuid.uuid4().hex[:8]}"  # flows are imported by name
    (project / package).mkdir()
    (project / package / "__init__.py").write_text("")
    path = _write(project, f"  keep_runs: 2\nflows:\n  path: {package}\n")
    config = load_config(path, env={})
    for _ in range(3):
        with recording(
            config,
            UpOptions(),
            record=True,
            report_to=None,
            results=project / "results.json",
            selection={},
            say=print,
        ) as (bracket, _listener):
            bracket.exit_code = 0
    store = RunStore(config.store_url)
    runs, total = store.list_runs()
    assert total == 2 and all(r["status"] == "passed" for r in runs)
    store.close()
