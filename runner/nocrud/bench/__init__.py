"""``nocrud bench``: the same flows under each provisioning strategy, side by side.

:func:`run_bench` builds the images once (so no strategy pays for a build), then
runs the selected flows under each strategy in turn, each in a process of its own
(:mod:`nocrud.bench.measure`), plus the baseline a team would otherwise write: a
Docker Compose project per flow (:mod:`nocrud.bench.compose`), and the floor every
isolation is measured against: one environment shared by every flow, nothing reset
(:mod:`nocrud.bench.shared`). It returns one
:class:`~nocrud.bench.measure.Figures` per strategy, and writes them as a table,
Markdown, JSON and a PNG chart (:mod:`nocrud.bench.report`). Run one bench at a time
on a machine: the strategies share its Docker daemon and CPUs, which is the point.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nocrud.bench.measure import Figures, measure
from nocrud.bench.report import ratios, table, write_chart, write_json, write_markdown
from nocrud.bench.shared import SHARED

if TYPE_CHECKING:
    from nocrud.config import Config

__all__ = [
    "BASELINE",
    "BASELINES",
    "DEFAULT_STRATEGIES",
    "KEPT",
    "SHARED",
    "Figures",
    "default_strategies",
    "run_bench",
]

#: The compose-per-flow baseline's name in --strategies and the reports.
BASELINE = "compose"
#: The pool's second run: its pairs kept by an unmeasured first run (``run.keep_pool``).
KEPT = "kept"
#: The names in --strategies that are not strategies a run may choose.
BASELINES = (BASELINE, SHARED, KEPT)
#: What ``nocrud bench`` compares unless told otherwise (external joins when configured).
DEFAULT_STRATEGIES = ("shared", "image", "pool", "template", "migrate", BASELINE)


def default_strategies(has_external_server: bool) -> tuple[str, ...]:
    """The strategies a bench compares by default."""
    return (*DEFAULT_STRATEGIES, "external") if has_external_server else DEFAULT_STRATEGIES


def run_bench(
    config_path: Path,
    *,
    flows: int,
    strategies: Sequence[str],
    parallel: int,
    keyword: str | None,
    out_dir: Path,
    say: Callable[[str], None],
) -> list[Figures]:
    """Run the bench and write its reports into ``out_dir``; return the figures.

    Args:
        config_path: The project's nocrud.yaml.
        flows: How many flows to run (the first ones of the selection, in discovery order).
        strategies: Strategy names, and ``compose`` and ``shared`` for the baselines, in
            the order to run.
        parallel: Flows at once, for every strategy.
        keyword: A ``-k`` expression selecting the flows first.
        out_dir: Where ``bench.md``, ``bench.json``, ``bench.png`` and the logs go.
        say: Prints one line for the user.
    """
    from rich.console import Console

    from nocrud import prepare
    from nocrud.config import load_config
    from nocrud.docker import cleanup
    from nocrud.flows import discover, select

    config = load_config(config_path)
    chosen = [f.name for f in select(discover(config.flows.path), keyword=keyword)][:flows]
    if not chosen:
        from nocrud.errors import UsageError

        raise UsageError("no flows selected: check -k, or `nocrud list` to see the flows there are")
    if len(chosen) < flows:
        say(f"only {len(chosen)} flow(s) match: running those")
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    engine = prepare.prepare_docker(config, console)
    figures: list[Figures] = []
    try:
        prepare.build(config, engine, console, cleanup.new_run_id())
        for strategy in strategies:
            say(f"{strategy}: {len(chosen)} flow(s), -j {parallel} ...")
            figure = measure(
                engine.client,
                config_path=config.source,
                strategy=strategy,
                flows=chosen,
                parallel=parallel,
                workdir=out_dir,
                run_id=cleanup.new_run_id(),
            )
            say(
                f"{strategy}: {figure.passed}/{figure.flows} passed, wall {figure.wall:.1f} s, "
                f"provision p50 {figure.provision_p50:.2f} s"
            )
            figures.append(figure)
            # After every strategy: a bench stopped halfway keeps what it measured.
            _write_reports(figures, config, len(chosen), parallel, out_dir)
    finally:
        engine.close()
    say(table(figures))
    for line in ratios(figures):
        say(line)
    say(f"written: {out_dir / 'bench.md'}, {out_dir / 'bench.json'}, {out_dir / 'bench.png'}")
    return figures


def _write_reports(
    figures: list[Figures], config: Config, flows: int, parallel: int, out_dir: Path
) -> None:
    context: dict[str, Any] = {
        "project": config.project,
        "config": str(config.source),
        "flows": flows,
        "parallel": parallel,
        "cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "ratios": ratios(figures),
    }
    write_markdown(figures, context, out_dir / "bench.md")
    write_json(figures, context, out_dir / "bench.json")
    write_chart(figures, context, out_dir / "bench.png")
