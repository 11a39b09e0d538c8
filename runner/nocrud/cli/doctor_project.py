"""``nocrud doctor``'s checks of the project: the config and the flows package load as
``nocrud up`` loads them (what ``up`` refuses with exit 2, doctor fails), and what
``run.strategy`` needs beyond Docker (for ``external``, its server answers).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nocrud.cli._checks import Check, CheckStatus, Host
from nocrud.cli.doctor_images import BASE_IMAGE, DEFAULT_DB_IMAGE

if TYPE_CHECKING:
    from nocrud.config import Config

__all__ = ["config_check", "flows_check", "strategy_check"]


def config_check(host: Host, config_path: Path | None) -> tuple[Check, list[tuple[str, str]]]:
    """The config check, and the images it names (with the key that names them)."""
    from nocrud.config import ConfigError, find_config, load_config

    default = [(BASE_IMAGE, "base of nocrud's images"), (DEFAULT_DB_IMAGE, "database.image")]
    given = config_path or (
        Path(host.env["NOCRUD_CONFIG"]) if host.env.get("NOCRUD_CONFIG", "").strip() else None
    )
    path = given if given is not None else find_config(host.cwd)
    if path is None:
        return (
            Check(
                "config",
                CheckStatus.SKIP,
                f"no nocrud.yaml in {host.cwd} or above: checking the default images",
                "run doctor where your nocrud.yaml is, or pass --config PATH",
            ),
            default,
        )
    try:
        config = load_config(path, env=host.env)
    except ConfigError as exc:
        # `nocrud up` refuses this config (exit 2): so does doctor (issue 21 item 9).
        return (
            Check(
                "config",
                CheckStatus.FAIL,
                f"{path}: {exc}",
                "fix nocrud.yaml (every key is in docs/config.md); `nocrud config` shows "
                "the resolved values",
            ),
            default,
        )
    images = [(BASE_IMAGE, "base of nocrud's images"), (config.database.image, "database.image")]
    if config.app.image is not None:
        images.append((config.app.image, "app.image"))
    return (
        Check("config", CheckStatus.OK, f"{config.source} (project {config.project})"),
        images,
    )


def _valid_config(host: Host, config_path: Path | None) -> Config | None:
    """The config ``up`` would load here, or None when there is none or it is invalid."""
    from nocrud.config import ConfigError, find_config, load_config

    given = config_path or (
        Path(host.env["NOCRUD_CONFIG"]) if host.env.get("NOCRUD_CONFIG", "").strip() else None
    )
    path = given if given is not None else find_config(host.cwd)
    if path is None:
        return None
    try:
        return load_config(path, env=host.env)
    except ConfigError:
        return None


def flows_check(host: Host, config_path: Path | None) -> list[Check]:
    """The flows package imports as ``up`` imports it (a broken one is ``up``'s exit 2).

    Empty when there is no valid config (the config check says why).
    """
    from nocrud.flows import FlowDiscoveryError, discover

    config = _valid_config(host, config_path)
    if config is None:
        return []
    before = set(sys.modules)
    try:
        found = discover(config.flows.path)
    except FlowDiscoveryError as exc:
        fix = "fix the module named (`nocrud list` shows the same error), or flows.path"
        return [Check("flows", CheckStatus.FAIL, str(exc), fix)]
    finally:
        # Doctor only looks: the flows' modules leave with it (a caller may import its own).
        package = config.flows.path.name
        for name in set(sys.modules) - before:
            if name == package or name.startswith(f"{package}."):
                del sys.modules[name]
    if not found:
        return [
            Check(
                "flows",
                CheckStatus.WARN,
                f"no flows in {config.flows.path}",
                "`nocrud new crud RESOURCE --endpoint PATH` or `nocrud new flow NAME` writes one",
            )
        ]
    return [Check("flows", CheckStatus.OK, f"{len(found)} flow(s) in {config.flows.path}")]


def strategy_check(host: Host, config_path: Path | None) -> list[Check]:
    """What ``run.strategy`` needs beyond Docker and the images: for ``external``, the server.

    Empty when there is no valid config (the config check says why).
    """
    config = _valid_config(host, config_path)
    if config is None:
        return []
    strategy = config.run.strategy
    name = f"strategy {strategy}"
    if strategy == "external":
        from nocrud.environment import PrepareError
        from nocrud.environment.external import check_server

        try:
            detail = check_server(config)
        except PrepareError as exc:
            fix = "fix database.external.url (or NOCRUD_EXTERNAL_URL), or the server, as said"
            return [Check(name, CheckStatus.FAIL, str(exc), fix)]
        return [Check(name, CheckStatus.OK, detail + "; a cloned database per flow")]
    dbc = config.database
    if strategy == "migrate" and dbc.schema_source == "migrate" and dbc.migrate is None:
        return [
            Check(
                name,
                CheckStatus.WARN,
                "database.migrate is not set: every flow gets an empty database",
                "set database.migrate to the command that makes the schema, or "
                "database.dump to a pg_dump file",
            )
        ]
    described = {
        "image": "a PostgreSQL container from the migrated image and an app per flow",
        "template": "one PostgreSQL per run; a cloned database and an app per flow",
        "migrate": f"an empty PostgreSQL and its {config.database.schema_source} step per flow",
    }
    return [Check(name, CheckStatus.OK, described.get(strategy, "needs Docker only"))]
