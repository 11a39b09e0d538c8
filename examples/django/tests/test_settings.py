"""Settings come from the environment; a missing or wrong one names the variable."""

from __future__ import annotations

import pytest


def database_from_environment(environ: dict[str, str]) -> dict[str, object]:
    from djangoshop.settings import database_from_environment as parse

    return parse(environ)


@pytest.fixture(autouse=True)
def _settings_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing the settings module reads DATABASE_URL once.
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h:5432/d")


def test_database_url_is_split_and_unquoted() -> None:
    database = database_from_environment({"DATABASE_URL": "postgresql://shop:p%40ss@db:5433/shop"})
    assert {k: database[k] for k in ("NAME", "USER", "PASSWORD", "HOST", "PORT")} == {
        "NAME": "shop",
        "USER": "shop",
        "PASSWORD": "p@ss",
        "HOST": "db",
        "PORT": "5433",
    }


def test_db_variables_work_without_a_url() -> None:
    database = database_from_environment(
        {"DB_HOST": "db", "DB_PORT": "5432", "DB_NAME": "shop", "DB_USER": "u", "DB_PASSWORD": "p"}
    )
    assert (database["HOST"], database["NAME"]) == ("db", "shop")


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "set DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u:p@h/d"}, "DATABASE_URL must look like postgresql://"),
        ({"DATABASE_URL": "postgresql://u:p@h:5432/"}, "DATABASE_URL must look like"),
    ],
)
def test_a_missing_or_wrong_database_setting_names_the_variable(
    environ: dict[str, str], says: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=says):
        database_from_environment(environ)
