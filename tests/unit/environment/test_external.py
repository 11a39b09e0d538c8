"""The ``external`` strategy: settings' mistakes name the key and the fix; names and sweeps.

Running it against a real server (a PostgreSQL container the test starts) is in
tests/e2e/test_strategies_e2e.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nocrud.config import ConfigError, load_config
from nocrud.docker import cleanup
from nocrud.environment import needs_db_image, provisioner_for
from nocrud.environment.external import server_address

URL = "postgresql://ci:s3cr3t-pw@pg.internal:6543/ci"


def write(tmp_path: Path, external: dict[str, Any] | None = None) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "flows").mkdir(exist_ok=True)
    database: dict[str, Any] = {"migrate": "python3 manage.py migrate"}
    if external is not None:
        database["external"] = external
    path = tmp_path / "nocrud.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "project": "shop",
                "app": {"build": "app"},
                "database": database,
                "flows": {"path": "flows"},
                "run": {"strategy": "external"},
            }
        )
    )
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return str(caught.value)


def test_without_a_url_the_error_names_the_key_the_variable_and_the_role_needed(
    tmp_path: Path,
) -> None:
    message = problems(write(tmp_path))

    assert "run.strategy is 'external' but database.external.url is not set" in message
    assert "NOCRUD_EXTERNAL_URL" in message
    assert "a role that may create databases" in message


def test_a_url_that_is_not_postgresql_is_refused_with_its_password_masked(tmp_path: Path) -> None:
    message = problems(write(tmp_path), env={"NOCRUD_EXTERNAL_URL": "mysql://ci:s3cr3t-pw@db/ci"})

    assert "database.external.url:" in message
    assert "is not a PostgreSQL URL: write postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in message
    assert "s3cr3t-pw" not in message


def test_a_loopback_url_needs_the_address_containers_use(tmp_path: Path) -> None:
    message = problems(write(tmp_path, {"url": "postgresql://ci:pw@localhost:5432/ci"}))

    assert "database.external.url points at localhost" in message
    assert "set database.external.app_host to HOST:PORT" in message


def test_an_app_host_without_a_port_names_the_key_and_the_form(tmp_path: Path) -> None:
    message = problems(write(tmp_path, {"url": URL, "app_host": "pg.internal"}))

    assert "database.external.app_host: 'pg.internal' is not a valid HOST:PORT" in message


def test_the_url_comes_from_the_environment_and_the_app_image_is_all_it_builds(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path), env={"NOCRUD_EXTERNAL_URL": URL})

    address = server_address(config)
    assert (address.host, address.port, address.dbname, address.user, address.password) == (
        "pg.internal",
        6543,
        "ci",
        "ci",
        "s3cr3t-pw",
    )
    assert "s3cr3t-pw" not in str(config.to_display_dict())
    assert not needs_db_image(provisioner_for(config))


def test_databases_carry_the_run_in_their_name_and_the_owner_in_their_comment() -> None:
    assert cleanup.database_name("0123456789", "0007") == "nocrud_0123456789_0007"
    comment = cleanup.database_comment("0123456789", keep=True)
    assert comment == f"nocrud run=0123456789 owner={cleanup.owner()} keep=true"
