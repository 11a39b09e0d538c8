"""``nocrud watch``: rerun flows on warm environments as their files, the app or migrations change.

Parses the options, loads the config with the ``pool`` strategy (unless ``--strategy``
names another: the file's ``run.strategy`` is ``up``'s) and leaves the rest to
:func:`nocrud.watch.loop.watch`; the guard turns Ctrl-C into exit 130.
"""

from __future__ import annotations

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command, exit_now
from nocrud.cli._options import Selection, console, load, selection_options

__all__ = ["watch"]


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Flows run at once, and pairs kept warm (default: run.parallel, else CPU count).",
)
@click.option(
    "--strategy",
    default="pool",
    show_default=True,
    help="Provisioning strategy; under pool the pairs stay up between reruns and are reset, "
    "so no rerun waits for a boot.",
)
@click.option(
    "--warm",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Environments kept ready beyond -j: a flow that failed has its pair replaced "
    "(a boot), and the spare serves the next rerun meanwhile.",
)
@selection_options
@click.option(
    "--no-first-run",
    "no_first_run",
    is_flag=True,
    help="Do not run the selection at the start (the first rerun then waits for its pairs).",
)
@click.pass_context
def watch(
    ctx: click.Context,
    *,
    parallel: int | None,
    strategy: str,
    warm: int,
    selection: Selection,
    no_first_run: bool,
) -> None:
    """Rerun flows on warm environments whenever a flow file, the app or a migration changes.

    Runs the selected flows once, then watches the flows package and the app's build
    context (as .dockerignore leaves it). A saved flow file reruns the flows it
    defines; an app file rebuilds the app image (Docker's layer cache) and recycles
    the environments; a migration rebuilds the database image. Each rerun prints one
    line per flow and a summary, and keeps the details of what still fails on screen.
    Ctrl-C removes everything and exits 130. See docs/watch.md.

    \b
    Examples:
      nocrud watch                      # every flow, pool strategy, -j from nocrud.yaml
      nocrud watch -k sites -j 2        # only flows matching "sites", two pairs
      nocrud watch -f site_crud --strategy image
      nocrud watch -j 1 --warm 0        # the least memory: one pair
    """
    from nocrud.watch.loop import WatchOptions, sigterm_as_interrupt
    from nocrud.watch.loop import watch as run_watch

    config = load(ctx, {"run.parallel": parallel, "run.strategy": strategy, "run.warm": warm})
    options = WatchOptions(
        names=selection.names,
        keyword=selection.keyword,
        tags=selection.tags,
        kinds=selection.kinds,
        first_run=not no_first_run,
    )
    with sigterm_as_interrupt():
        code = run_watch(config, options, console())
    exit_now(code)
