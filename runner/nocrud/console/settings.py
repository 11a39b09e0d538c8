"""What ``nocrud serve`` was started with: the store, the project, how to start a run."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ConsoleSettings", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConsoleSettings:
    """Everything the console needs, decided by ``nocrud serve`` (the composition root).

    Attributes:
        store_url: The run store's SQLAlchemy URL.
        project: The project runs are started for (nocrud.yaml's ``project``).
        config_path: The nocrud.yaml a started run uses.
        command: How to call nocrud (``[.../nocrud]``); a run is ``command -c CONFIG up ...``.
        public_url: Where started runs report their events (this console's own URL).
        strategies: The provisioning strategies the start form offers (read at start-up
            from the environment's table by ``nocrud serve``).
        default_parallel: Pre-filled parallelism of the start form.
        token: Required on every request when set (``NOCRUD_SERVE_TOKEN``/``--token``).
        keep_runs: Retention: runs kept.
        keep_days: Retention: days runs are kept.
        all_projects: Show the runs of every project in the store (``nocrud serve
            --all-projects``); by default the console shows ``project``'s runs only,
            so two projects sharing a store (two configs in one directory) stay apart.
    """

    store_url: str
    project: str
    config_path: Path
    command: tuple[str, ...]
    public_url: str
    strategies: tuple[str, ...] = ("image",)
    default_parallel: int = 2
    token: str = ""
    keep_runs: int = 1000
    keep_days: float = 90.0
    extra_env: dict[str, str] = field(default_factory=dict)
    all_projects: bool = False
