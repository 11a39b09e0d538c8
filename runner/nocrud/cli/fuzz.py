"""``nocrud fuzz``: the command line of :mod:`nocrud.fuzz` (options, config, record, exit).

Thin: it parses the options into a :class:`~nocrud.fuzz.plan.FuzzOptions`, loads the
config (``pool`` unless a strategy is configured or given), records the run in the run
store like ``up`` and leaves everything else to :func:`nocrud.fuzz.runner.fuzz`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Command, exit_now
from nocrud.cli._options import console, load
from nocrud.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from nocrud.config import Config
    from nocrud.fuzz.plan import FuzzOptions

__all__ = ["fuzz"]


@click.command(cls=Command, epilog=EXIT_CODES_HELP)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Environments at once (default: run.parallel in nocrud.yaml, else CPU count).",
)
@click.option(
    "--strategy",
    default=None,
    help="Provisioning strategy (default: run.strategy if configured, else pool).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="The seed that makes the run reproducible (default: a new one, printed).",
)
@click.option(
    "--max-examples",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Stateless cases per operation and mode (positive, negative).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Stateless cases per environment (default 10; see docs/fuzz.md).",
)
@click.option(
    "--sequences",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Stateful sequences through the document's links (0: none).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=6,
    show_default=True,
    help="Requests a stateful sequence makes at most.",
)
@click.option(
    "--time",
    "time_budget",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Seconds after which no new environment starts exploring (0: no limit).",
)
@click.option(
    "-o",
    "--operation",
    "operations",
    multiple=True,
    metavar="TEXT",
    help="Only operations whose 'METHOD /path' contains TEXT, or with this "
    "operationId (repeatable).",
)
@click.option(
    "--check",
    "checks",
    multiple=True,
    metavar="NAME",
    help="Run only these checks (repeatable); default: not_a_server_error, "
    "status_code_conformance, response_schema_conformance, "
    "content_type_conformance, negative_data_rejection.",
)
@click.option("--no-negative", is_flag=True, help="Draw only valid (positive) cases.")
@click.option(
    "--auth",
    metavar="USER:PASSWORD",
    default=None,
    help="Log each environment's client in with ctx.login (JSON bearer login).",
)
@click.option(
    "--login-path",
    default="/api/auth/login",
    show_default=True,
    help="Where --auth posts its credentials (a JSON bearer-token login).",
)
@click.option(
    "--setup",
    metavar="MODULE:FUNCTION",
    default=None,
    help="A flow-style function run first in each environment, e.g. to log in.",
)
@click.option(
    "--replay-budget",
    type=click.IntRange(min=2),
    default=12,
    show_default=True,
    help="Brand-new environments a failure may use to be classified and shortened.",
)
@click.option(
    "--keep-failed",
    is_flag=True,
    help="Keep an environment of each reproduced failure (remove with `nocrud clean`).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML here: one test case per operation and check.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the findings as JSON here.",
)
@click.option("--no-record", is_flag=True, help="Do not record this run in the run store.")
@click.pass_context
def fuzz(
    ctx: click.Context,
    *,
    parallel: int | None,
    strategy: str | None,
    seed: int | None,
    max_examples: int,
    batch_size: int | None,
    sequences: int,
    steps: int,
    time_budget: float,
    operations: tuple[str, ...],
    checks: tuple[str, ...],
    no_negative: bool,
    auth: str | None,
    login_path: str,
    setup: str | None,
    replay_budget: int,
    keep_failed: bool,
    junit: Path | None,
    json_path: Path | None,
    no_record: bool,
) -> None:
    """Fuzz the app from its OpenAPI document; replay every failure in a brand-new environment.

    Schemathesis draws the requests (stateless cases per operation, stateful sequences
    through the document's links). Each batch runs in its own environment; each failure
    is replayed alone in brand-new environments and reported as reproducible (with the
    fewest requests that reproduce it from a clean database) or order-dependent (with
    the earlier requests it needs). Failures not reproduced are shown, not failed.

    \b
    Examples:
      nocrud fuzz                         # every operation, a new seed (printed)
      nocrud fuzz --seed 7 -j 4 --junit fuzz.xml
      nocrud fuzz -o 'POST /api/sites' --max-examples 100 --sequences 0
      nocrud fuzz --auth admin:secret --keep-failed
      nocrud fuzz --setup flows.auth:login_admin --time 120
    """
    from nocrud.cli.authoring import last_run_path
    from nocrud.fuzz.plan import DEFAULT_BATCH, DEFAULT_CHECKS, KNOWN_CHECKS, FuzzOptions

    unknown = [c for c in checks if c not in KNOWN_CHECKS]
    if unknown:
        raise UsageError(
            f"--check {unknown[0]}: not a check nocrud fuzz runs; use one of "
            + ", ".join(KNOWN_CHECKS)
        )
    overrides = {"run.parallel": parallel, "run.strategy": strategy}
    config = load(ctx, overrides)
    if strategy is None and "strategy" not in config.run.model_fields_set:
        # Fuzzing hands out many short-lived environments: the pool's resets are the cheap ones.
        config = load(ctx, {**overrides, "run.strategy": "pool"})
    chosen_seed = seed if seed is not None else int.from_bytes(os.urandom(3), "big")
    options = FuzzOptions(
        seed=chosen_seed,
        max_examples=max_examples,
        batch_size=batch_size or DEFAULT_BATCH,
        sequences=sequences,
        steps=steps,
        time_budget=time_budget,
        operations=operations,
        checks=checks or DEFAULT_CHECKS,
        negative=not no_negative,
        keep_failed=keep_failed,
        replay_budget=replay_budget,
        auth=auth,
        login_path=login_path,
        setup=setup,
        junit=str(junit) if junit else None,
        json=str(json_path) if json_path else None,
    )
    out = console()
    results = last_run_path(config.root)  # `nocrud coverage` and the run store read it
    code = _recorded(config, options, out, results, record=not no_record)
    exit_now(code)


def _recorded(
    config: Config, options: FuzzOptions, out: Console, results: Path, *, record: bool
) -> int:
    """Run the fuzzer inside the run store's bracket, like ``up``: ``nocrud serve`` shows it."""
    from nocrud import __version__
    from nocrud.fuzz.runner import fuzz as run_fuzz
    from nocrud.store import GitInfo, Recording, RunStart, git_info, recorder_for, store_settings

    def say(line: str) -> None:
        out.print(line, soft_wrap=True)

    recorder = recorder_for(
        store_settings(config) if record else None, report_to=None, say=say, env=os.environ
    )
    start = RunStart(
        project=config.project,
        flow_names=(),
        parallel=config.parallel,
        strategy=str(config.run.strategy),
        nocrud_run_id="",
        nocrud_version=__version__,
        selection={"fuzz": True, "seed": options.seed},
        git=git_info(config.root) if recorder else GitInfo(),
    )
    with Recording(recorder, start, results) as bracket:
        code, _report = run_fuzz(config, options, out, results=results, listener=recorder)
        bracket.exit_code = code
    return code
