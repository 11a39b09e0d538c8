"""Settings of the inventory app, read from the environment in one place.

The environment is read when an app is created (never at import time), so tests can
create apps with explicit values and gunicorn workers see the container's variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PORT = 8000
DEFAULT_POOL_SIZE = 4
DEFAULT_TOKEN_TTL_SECONDS = 12 * 3600


class ConfigError(ValueError):
    """An environment variable holds a value the app cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the app needs from its environment.

    Attributes:
        database_url: libpq URL (``postgresql://user:pw@host:port/db``), or None when
            unset; the app still starts and answers 503 until it is set.
        port: Port gunicorn binds; kept here so the README and the app agree.
        pool_size: Most idle database connections kept open per process.
        connect_timeout: Seconds libpq waits for a connection before giving up.
        token_ttl_seconds: How long a bearer token from ``/api/auth/login`` is valid.
    """

    database_url: str | None = None
    port: int = DEFAULT_PORT
    pool_size: int = DEFAULT_POOL_SIZE
    connect_timeout: int = 3
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, database_url: str | None = None
    ) -> Settings:
        """Build settings from environment variables.

        Args:
            env: The variables to read; ``os.environ`` when None.
            database_url: Overrides ``DATABASE_URL`` when given.

        Returns:
            The settings.

        Raises:
            ConfigError: A variable is set to something that is not a valid value.
        """
        env = os.environ if env is None else env
        return cls(
            database_url=database_url or env.get("DATABASE_URL") or None,
            port=_int_var(env, "PORT", DEFAULT_PORT, minimum=1, maximum=65535),
            pool_size=_int_var(env, "DB_POOL_SIZE", DEFAULT_POOL_SIZE, minimum=1, maximum=100),
            token_ttl_seconds=_int_var(
                env, "TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_SECONDS, minimum=1, maximum=10**8
            ),
        )


def _int_var(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value} must be between {minimum} and {maximum}")
    return value
