"""The first step of the data path: ``nocrud.yaml`` into one validated :class:`Config`.

:mod:`~nocrud.config.model` holds the typed model and the precedence (default <
file < environment < command line) in :func:`load_config`;
:mod:`~nocrud.config.errors` turns every problem into one line that names the
source, the key, the bad value and the fix.
"""

from nocrud.config.model import (
    CONFIG_FILENAME,
    ENV_VARS,
    PLACEHOLDERS,
    AppConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    FlowsConfig,
    RunConfig,
    StrategyName,
    TimeoutsConfig,
    find_config,
    load_config,
)

__all__ = [
    "CONFIG_FILENAME",
    "ENV_VARS",
    "PLACEHOLDERS",
    "AppConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "FlowsConfig",
    "RunConfig",
    "StrategyName",
    "TimeoutsConfig",
    "find_config",
    "load_config",
]
