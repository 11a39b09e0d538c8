"""``nocrud bench``: the same flows under each provisioning strategy, and what each cost.

A thin command over :func:`nocrud.bench.run_bench`; everything it measures and
writes is described there.
"""

from __future__ import annotations

from pathlib import Path

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command, exit_now
from nocrud.cli._options import console, load
from nocrud.errors import EXIT_FAILED, EXIT_OK, UsageError

__all__ = ["bench"]


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option(
    "--flows",
    "flow_count",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="How many flows each strategy runs (the first ones of the selection).",
)
@click.option(
    "--strategies",
    default=None,
    metavar="A,B,...",
    help="Strategies to compare, `compose` for the compose-project-per-flow baseline, "
    "`shared` for one environment serving every flow with nothing reset, and `kept` for "
    "`pool`'s second run, on the pairs an unmeasured first run kept (warm: -j) (default: "
    "shared,image,pool,template,migrate,compose; external too when database.external.url "
    "is set).",
)
@click.option(
    "--example",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The project to measure: a nocrud.yaml or its directory (default: -c, else the "
    "nearest nocrud.yaml).",
)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Flows at once, for every strategy.",
)
@click.option("-k", "keyword", default=None, help="Select flows by a -k expression first.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for bench.md, bench.json, bench.png and logs (default: .nocrud/bench).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    *,
    flow_count: int,
    strategies: str | None,
    example: Path | None,
    parallel: int,
    keyword: str | None,
    out_dir: Path | None,
) -> None:
    """Run the same flows under each provisioning strategy and compare what each costs.

    Prints a table (wall time, per-flow provision p50/p95, teardown p50, flows per
    minute, the runner's peak RSS, Docker creates, starts and removals per flow, and the
    objects each strategy left behind) and writes it as Markdown, JSON and a PNG chart.
    Every strategy's wall time is also given as a multiple of `shared` (one environment
    for every flow, nothing reset: what a suite without isolation costs). Exit 1 when a
    flow failed under some strategy other than `shared` (whose isolation flows may fail
    by design), or something was left behind.

    \b
    Examples:
      nocrud bench --flows 32 -j 4
      nocrud bench --example examples/django --strategies image,template
      nocrud bench --flows 8 -k isolation --out bench-results
    """
    from nocrud.bench import BASELINES, SHARED, default_strategies, run_bench
    from nocrud.config import load_config
    from nocrud.environment import STRATEGIES

    config = load_config(example) if example is not None else load(ctx)
    if strategies is None:
        names = list(default_strategies(config.database.external.url is not None))
    else:
        names = [name.strip() for name in strategies.split(",") if name.strip()]
        known = [*STRATEGIES, *BASELINES]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise UsageError(
                f"--strategies: {', '.join(unknown) or '(none)'} unknown: use a comma-separated "
                f"list of {', '.join(known)}"
            )
    if "external" in names and config.database.external.url is None:
        raise UsageError(
            "--strategies external needs database.external.url (or NOCRUD_EXTERNAL_URL): "
            "set it, or leave external out"
        )
    out = console()
    figures = run_bench(
        config.source,
        flows=flow_count,
        strategies=names,
        parallel=parallel,
        keyword=keyword,
        out_dir=out_dir or config.root / ".nocrud" / "bench",
        say=lambda line: out.print(line, soft_wrap=True),
    )
    clean = all(
        (f.passed == f.flows or f.strategy == SHARED) and f.left_behind == 0 for f in figures
    )
    exit_now(EXIT_OK if clean else EXIT_FAILED)
