"""The ``migrate`` strategy: its settings' mistakes are config errors naming the key and the fix.

Running it against a real daemon is in tests/e2e/test_strategies_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nocrud.config import ConfigError, load_config
from nocrud.environment import needs_db_image, provisioner_for


def write(tmp_path: Path, migrate: object) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "flows").mkdir()
    path = tmp_path / "nocrud.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "project": "shop",
                "app": {"build": "app"},
                "database": {"migrate": migrate},
                "flows": {"path": "flows"},
                "run": {"strategy": "migrate"},
            }
        )
    )
    return path


def test_an_empty_migrate_command_names_the_key_and_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, []), env={})

    message = str(caught.value)
    assert "database.migrate:" in message
    assert 'use a list of strings such as ["python3", "-m", "app.migrate"]' in message


def test_a_strategy_typo_from_the_environment_names_the_variable_and_the_choice(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "manage.py migrate"), env={"NOCRUD_STRATEGY": "migrat"})

    message = str(caught.value)
    assert message.startswith("NOCRUD_STRATEGY=migrat: run.strategy: 'migrat' is not a valid")
    assert "did you mean 'migrate'?" in message


def test_migrate_runs_the_command_per_flow_and_so_needs_no_migrated_image(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "python3 manage.py migrate --noinput"), env={})
    provisioner = provisioner_for(config)

    assert config.database.migrate == ("python3", "manage.py", "migrate", "--noinput")
    assert config.database.schema_source == "migrate"
    assert provisioner.name == "migrate"
    assert not needs_db_image(provisioner)
