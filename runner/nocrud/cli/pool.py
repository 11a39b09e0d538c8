"""``nocrud pool status`` / ``stop``: the pairs a project keeps between runs (``run.keep_pool``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from nocrud.cli._guard import Command, Group, exit_now
from nocrud.cli._options import console, load
from nocrud.errors import EXIT_OK

__all__ = ["pool"]

MIB = 2**20


@click.group(cls=Group)
def pool() -> None:
    """Show or remove the pairs kept between runs (run.keep_pool, `nocrud up --keep-pool`)."""


@pool.command(name="status", cls=Command)
@click.pass_context
def status_command(ctx: click.Context) -> None:
    """Show this project's kept pairs: state, uses, memory, and when they expire.

    \b
    Examples:
      nocrud pool status
      NOCRUD_STRATEGY=pool nocrud up --keep-pool 10m && nocrud pool status
    """
    from nocrud.docker.engine import connect
    from nocrud.environment.kept import expire, pool_dir, read_pools, settler_running

    config = load(ctx)
    printer = console()

    def out_print(line: str) -> None:
        printer.print(line, soft_wrap=True)

    client = connect()
    try:
        expire(client, config.root)
        pools = read_pools(config.root)
        if not any(pools.values()):
            out_print(
                f"project {config.project}: no kept pairs (keep them with run.keep_pool or "
                "`nocrud up --keep-pool 10m` under the pool strategy)"
            )
            exit_now(EXIT_OK)
        for key, records in pools.items():
            if not records:
                continue
            meta = _meta(config.root, key)
            settler = settler_running(pool_dir(config.root) / key)
            out_print(
                f"pool {key} (app {meta.get('app_image', '?')}, database "
                f"{meta.get('db_image', '?')}): {len(records)} pair(s), "
                f"{_expiry(records, meta, settler=settler)}"
            )
            with ThreadPoolExecutor(max_workers=8) as threads:
                memory = list(threads.map(lambda r: _memory(client, r.data), records))
            out_print(f"  {'pair':<34} {'state':<8} {'uses':>5} {'RSS':>9} {'in memory':>10}")
            total_rss = total_mem = 0.0
            for record, (rss, mem) in zip(records, memory, strict=True):
                state = record.state
                total_rss += rss or 0
                total_mem += mem or 0
                out_print(
                    f"  {record.name:<34} {state:<8} {record.data.get('uses', 0):>5} "
                    f"{_mib(rss):>9} {_mib(mem):>10}"
                )
            out_print(f"  {'total':<34} {'':<8} {'':>5} {_mib(total_rss):>9} {_mib(total_mem):>10}")
    finally:
        client.close()
    out_print(
        "RSS: the containers' processes; in memory: that plus the page cache they keep "
        "active (the pool's PostgreSQL data lives on a tmpfs). `nocrud pool stop` removes them."
    )
    exit_now(EXIT_OK)


@pool.command(name="stop", cls=Command)
@click.pass_context
def stop_command(ctx: click.Context) -> None:
    """Remove this project's kept pairs now (pairs a running run holds are left to it).

    \b
    Examples:
      nocrud pool stop
    """
    from nocrud.docker.engine import connect
    from nocrud.environment.kept import stop_pools

    config = load(ctx)
    client = connect()
    try:
        removed, in_use = stop_pools(client, config.root)
    finally:
        client.close()
    line = f"project {config.project}: removed {removed} kept pair(s)"
    if in_use:
        line += f"; {in_use} in use by a running run, removed when it ends or expires"
    console().print(line, soft_wrap=True)
    exit_now(EXIT_OK)


def _meta(root: Any, key: str) -> dict[str, Any]:
    import json

    from nocrud.environment.kept import pool_dir

    try:
        data = json.loads((pool_dir(root) / key / "pool.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _expiry(records: list[Any], meta: dict[str, Any], *, settler: bool = False) -> str:
    if any(r.state == "in use" for r in records):
        return "in use by a run"
    if settler or any(r.state == "settling" for r in records):
        return "being settled after the last run (pairs reset or started)"
    idle = float(meta.get("idle") or 0)
    left = max((float(r.data.get("left_at") or 0) for r in records), default=0.0)
    if not idle or not left:
        return "idle"
    remaining = left + idle - time.time()
    if remaining <= 0:
        return "expired: being removed"
    return f"idle, removed in {remaining / 60:.1f} min unless a run takes them"


def _memory(client: Any, data: dict[str, Any]) -> tuple[float | None, float | None]:
    """A pair's RSS and in-memory bytes (its two containers), or None where unknown."""
    rss = mem = 0.0
    for ref in (data.get("db"), data.get("app")):
        try:
            stats = client.api.stats(ref, stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - gone or unreadable: unknown, not an error
            return None, None
        memory = stats.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        rss += float(detail.get("total_rss", detail.get("rss", detail.get("anon", 0))))
        inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        mem += float(memory.get("usage", 0)) - float(inactive)
    return rss, mem


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value / MIB:.0f} MiB"
