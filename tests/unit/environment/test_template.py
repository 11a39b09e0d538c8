"""The ``template`` strategy: its settings' mistakes are config errors naming the key and the fix.

Running it against a real daemon is in tests/e2e/test_strategies_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nocrud.config import ConfigError, load_config
from nocrud.environment import STRATEGIES, needs_db_image, provisioner_for


def write(tmp_path: Path, database: dict[str, Any], strategy: str = "template") -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "flows").mkdir(exist_ok=True)
    path = tmp_path / "nocrud.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "project": "shop",
                "app": {"build": "app"},
                "database": database,
                "flows": {"path": "flows"},
                "run": {"strategy": strategy},
            }
        )
    )
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return str(caught.value)


def test_a_dump_source_without_a_dump_names_both_keys_and_the_fix(tmp_path: Path) -> None:
    message = problems(write(tmp_path, {"source": "dump"}))

    assert "database.source is 'dump' but database.dump is not set" in message
    assert "pg_dump --no-owner --no-privileges" in message


def test_a_dump_that_does_not_exist_is_named_with_the_path_looked_for(tmp_path: Path) -> None:
    message = problems(write(tmp_path, {"dump": "schema.sql"}))

    assert "database.dump: 'schema.sql' does not exist" in message
    assert str(tmp_path / "schema.sql") in message


def test_a_dump_with_source_migrate_is_a_contradiction_with_both_ways_out(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")

    message = problems(write(tmp_path, {"dump": "schema.sql", "source": "migrate"}))

    assert "remove database.dump, or set database.source: dump" in message


def test_an_unknown_source_lists_the_choices(tmp_path: Path) -> None:
    message = problems(write(tmp_path, {"source": "dumps"}))

    assert "database.source: 'dumps' is not a valid schema source" in message
    assert "use one of migrate, dump: did you mean 'dump'?" in message


def test_a_dump_alone_means_source_dump_and_the_template_builds_the_migrated_image(
    tmp_path: Path,
) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")

    config = load_config(write(tmp_path, {"dump": "schema.sql"}), env={})
    provisioner = provisioner_for(config)

    assert config.database.schema_source == "dump"
    assert provisioner.name == "template"
    assert needs_db_image(provisioner)
    assert STRATEGIES["template"] == "nocrud.environment.template:TemplateProvisioner"
