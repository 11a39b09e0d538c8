"""``nocrud fuzz`` end to end, on the same workflow functions as ``nocrud up``.

Docker, images and the provisioner come from :mod:`nocrud.workflow` and
:mod:`nocrud.environment` exactly as for ``up``; every unit of work, and every replay,
is a :class:`~nocrud.flows.Flow` run by :func:`nocrud.workflow.run_flows`, so each
gets its own environment from the configured strategy, on ``-j`` workers, with the
same live progress, interrupt handling, app logs, ``--keep-failed`` lines and run-store
listener. The phases:

1. **discover**: one environment serves the app's OpenAPI document (``app.openapi``
   or the usual paths), unless ``app.openapi`` names a file or URL;
2. **explore**: the stateless batches and stateful batches (:mod:`~nocrud.fuzz.plan`);
3. **replay**: every distinct failure (one per operation and check) is replayed in
   brand-new environments, in rounds, one replay per failure per round
   (:mod:`~nocrud.fuzz.replay`); with ``--keep-failed`` a last round keeps the
   environment of each reproduced failure;
4. **report**: blocks, curl scripts, JUnit, JSON (:mod:`~nocrud.fuzz.report`), and a
   :class:`~nocrud.results.RunResult` for the run store and ``nocrud coverage``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from nocrud import prepare, workflow
from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.environment import provisioner_for
from nocrud.errors import (
    EXIT_FAILED,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)
from nocrud.flows import Flow, FlowContext
from nocrud.fuzz.engine import FuzzSchema, Target, UnitOutcome, load_schema, send_exchanges
from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.fuzz.plan import FuzzOptions, Unit, plan_units
from nocrud.fuzz.replay import Classification, classification
from nocrud.fuzz.report import (
    FuzzReport,
    failure_block,
    findings_in_order,
    summary_lines,
    write_json,
    write_junit,
    write_scripts,
)
from nocrud.results import FlowResult, RequestRecord, RunResult, Status

__all__ = ["fuzz", "results_of"]

#: Where the curl scripts of the last run go, under the project's state directory.
SCRIPTS_DIR = "fuzz"


def fuzz(
    config: Config,
    options: FuzzOptions,
    console: Console,
    *,
    results: Path,
    listener: Any = None,
) -> tuple[int, FuzzReport | None]:
    """Run ``nocrud fuzz``: returns the exit code and the report (``None`` if none was made).

    Args:
        config: The validated configuration (its strategy and ``-j`` decide the workers).
        options: The fuzz budget and options.
        console: Where progress and blocks go.
        results: Where the run's :class:`RunResult` JSON goes (the store and
            ``nocrud coverage`` read it).
        listener: Hears every explored unit (the run store's recorder).
    """
    from nocrud.analysis.coverage import state_dir

    say = _sayer(console)
    setup = _setup_function(config, options)
    provisioner = provisioner_for(config)  # an unknown strategy stops here, before Docker
    run_id = cleanup.new_run_id()
    started_at, t0 = time.time(), time.monotonic()
    base = workflow.UpOptions(json=None, listener=listener)
    quiet = workflow.UpOptions(json=None)
    with prepare.environments(
        config,
        console,
        provisioner=provisioner,
        run_id=run_id,
        keep_failed=options.keep_failed,
        say=say,
    ) as prepared:

        def flows(items: Sequence[Flow], opts: workflow.UpOptions) -> RunResult:
            return workflow.run_flows(
                config, provisioner, items, opts, console, run_id=run_id, engine=prepared.engine
            )

        schema, units, explorer, explored, findings = _explore(
            config, options, flows, setup=setup, say=say, quiet=quiet, base=base, t0=t0
        )
    report = FuzzReport(
        run_id=run_id,
        project=config.project,
        seed=options.seed,
        operations=tuple(schema.labels),
        checks=tuple(options.checks),
        findings=tuple(findings_in_order(findings)),
        examples=explorer.examples,
        units=len(units),
        wall_time=time.monotonic() - t0,
        errors=tuple(f"{r.name}: {r.message}" for r in explored.flows if r.status is Status.ERROR),
        skipped=dict(schema.skipped),
        interrupted=explored.interrupted,
    )
    _print_report(report, console, state_dir(config.root) / SCRIPTS_DIR)
    _write(report, options, console)
    run_result = results_of(report, explored, started_at)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(run_result.to_dict(), indent=1))
    if report.interrupted:
        return EXIT_INTERRUPTED, report
    if explored.stopped:  # the environment or the configuration, as `up` says it
        console.print(f"error: {explored.stopped}", soft_wrap=True, highlight=False)
        return (EXIT_INFRASTRUCTURE if explored.infrastructure else EXIT_USAGE), report
    return (EXIT_OK if report.ok else EXIT_FAILED), report


def _explore(
    config: Config,
    options: FuzzOptions,
    flows: Callable[[Sequence[Flow], workflow.UpOptions], RunResult],
    *,
    setup: Callable[[FlowContext], object] | None,
    say: Callable[[str], None],
    quiet: workflow.UpOptions,
    base: workflow.UpOptions,
    t0: float,
) -> tuple[FuzzSchema, list[Unit], _Explorer, RunResult, list[Finding]]:
    """Discover the document, explore it unit by unit, replay what failed."""
    document = _discover(config, flows, quiet)
    try:
        schema = load_schema(document, options.operations, options.checks)
    except Exception as exc:  # Schemathesis' own words name the problem
        raise UsageError(
            f"the app's OpenAPI document cannot be used: {type(exc).__name__}: {exc}; "
            "check it (or app.openapi in nocrud.yaml)"
        ) from exc
    if not schema.operations:
        wanted = ", ".join(options.operations) or "any"
        raise UsageError(
            f"no operation of the document matches --operation {wanted}: "
            f"there are {', '.join(schema.labels) or 'none'}"
        )
    say(f"fuzz: seed {options.seed}, {len(schema.operations)} operation(s)")
    # --auth's bearer login sets the credential: a placeholder here, the real one when sent.
    fixed = {"Authorization": "set-by-nocrud-login"} if options.auth is not None else None
    draws = schema.draw(options.max_examples, options.seed, negative=options.negative, fixed=fixed)
    units = plan_units({k: len(v) for k, v in draws.items()}, options)
    explorer = _Explorer(schema, draws, options, setup, t0)
    explored = flows(
        [explorer.flow(unit) for unit in units],
        dataclasses.replace(base, keep_failed=False),
    )
    findings = _distinct(explorer.findings)
    if findings and not explored.interrupted:
        say(f"replaying {len(findings)} failure(s), each in brand-new environments")
        findings = _replay_all(
            findings, schema=schema, options=options, setup=setup, flows=flows, quiet=quiet
        )
    return schema, units, explorer, explored, findings


def _sayer(console: Console) -> Callable[[str], None]:
    return lambda line: console.print(line, highlight=False, soft_wrap=True)


class _Explorer:
    """Makes the flows of the explore phase and collects what they found (thread-safe)."""

    def __init__(
        self,
        schema: FuzzSchema,
        draws: dict[tuple[str, str], list[Any]],
        options: FuzzOptions,
        setup: Callable[[FlowContext], object] | None,
        t0: float,
    ) -> None:
        self._schema = schema
        self._draws = draws
        self._options = options
        self._setup = setup
        self._t0 = t0
        self._lock = threading.Lock()
        self._found: dict[str, list[Finding]] = {}
        self._order: dict[str, int] = {}
        self.examples = 0

    def flow(self, unit: Unit) -> Flow:
        with self._lock:
            self._order[unit.name] = len(self._order)

        def run(ctx: FlowContext) -> None:
            budget = self._options.time_budget
            if budget and time.monotonic() - self._t0 > budget:
                ctx.log(f"not run: the --time budget of {budget:g} s was spent")
                return
            target = _target(ctx, self._setup)
            if unit.kind == "stateless":
                cases = [self._draws[(unit.operation, unit.mode)][i] for i in unit.cases]
                outcome = self._schema.run_stateless(unit, cases, target)
            else:
                outcome = self._schema.run_stateful(unit, target, steps=self._options.steps)
            self._collect(unit, outcome, ctx)

        return Flow(name=unit.name, func=run, doc=f"fuzz: {unit.name}", kind="fuzz")

    def _collect(self, unit: Unit, outcome: UnitOutcome, ctx: FlowContext) -> None:
        for finding in outcome.findings:
            ctx.log(f"found: {finding.operation}: {finding.check}: {finding.message}")
        with self._lock:
            self.examples += len(outcome.exchanges)
            self._found[unit.name] = outcome.findings

    @property
    def findings(self) -> list[Finding]:
        """Every finding, in unit order (the plan's, not the finishing order)."""
        with self._lock:
            ordered = sorted(self._found.items(), key=lambda item: self._order[item[0]])
        return [finding for _, found in ordered for finding in found]


def _target(ctx: FlowContext, setup: Callable[[FlowContext], object] | None) -> Target:
    if setup is not None:
        setup(ctx)
    recorder = ctx.api.recorder

    def record(exchange: Exchange, elapsed: float) -> None:
        endpoint = exchange.operation.partition(" ")[2] or exchange.path.partition("?")[0]
        recorder.record(RequestRecord(exchange.method, endpoint, exchange.status, elapsed))

    return Target(
        base_url=ctx.base_url, session=ctx.api.session, auth=ctx.api.auth, on_exchange=record
    )


def _distinct(findings: Sequence[Finding]) -> list[Finding]:
    """The first finding of each operation and check: one bug, one replay."""
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        seen.setdefault(finding.key, finding)
    return list(seen.values())


def _replay_flow(
    name: str,
    finding: Finding,
    exchanges: Sequence[Exchange],
    *,
    schema: FuzzSchema,
    setup: Callable[[FlowContext], object] | None,
    checks: Collection[str],
) -> Flow:
    """A flow that sends ``exchanges`` to a brand-new environment; FAILED when it reproduces."""

    def replay(ctx: FlowContext) -> None:
        target = _target(ctx, setup)
        send_exchanges(exchanges[:-1], target)
        case = finding.extra.get("case")
        if case is not None and exchanges[-1] == finding.failing:
            again = schema.fails_again(case, target, checks)
        else:  # pragma: no cover - every minimal sequence ends with the failing exchange
            again = False
        if again:
            raise AssertionError(f"reproduced: {finding.operation}: {finding.check}")

    return Flow(name=name, func=replay, doc=f"replay {name}", kind="fuzz-replay", fresh=True)


def _replay_all(
    findings: list[Finding],
    *,
    schema: FuzzSchema,
    options: FuzzOptions,
    setup: Callable[[FlowContext], object] | None,
    flows: Callable[[Sequence[Flow], workflow.UpOptions], RunResult],
    quiet: workflow.UpOptions,
) -> list[Finding]:
    """Classify every finding, one replay per failing request per round, rounds in parallel.

    Checks that failed on the same response (a 500 is a server error and an undocumented
    status) are one replay: it reproduces when any of them fails again.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    for index, finding in enumerate(findings):
        groups.setdefault((finding.unit, len(finding.history)), []).append(index)
    leaders = {members[0]: members for members in groups.values()}
    checks = {i: {findings[m].check for m in members} for i, members in leaders.items()}
    pending: dict[int, tuple[Classification, tuple[Exchange, ...]]] = {}
    done: dict[int, Finding] = {}
    logs: dict[int, str] = {}
    for index in leaders:
        steps = classification(findings[index], budget=options.replay_budget)
        pending[index] = (steps, next(steps))
    round_number = 0
    while pending:
        round_number += 1
        names = {index: f"replay {index + 1}.{round_number}" for index in pending}
        batch = [
            _replay_flow(
                names[i], findings[i], candidate, schema=schema, setup=setup, checks=checks[i]
            )
            for i, (_, candidate) in pending.items()
        ]
        result = flows(batch, dataclasses.replace(quiet, keep_failed=False))
        if result.interrupted:
            break
        by_name = {r.name: r for r in result.flows}
        for index in list(pending):
            steps, _ = pending[index]
            outcome = by_name[names[index]]
            reproduced = outcome.status is Status.FAILED
            if reproduced:
                logs[index] = outcome.app_logs
            try:
                pending[index] = (steps, steps.send(reproduced))
            except StopIteration as stop:
                done[index] = stop.value
                del pending[index]
    classified = list(findings)
    for leader, members in leaders.items():
        verdict = done.get(leader)
        for member in members:
            if verdict is not None:
                classified[member] = findings[member].classified(
                    verdict.verdict or Verdict.NOT_REPRODUCED, verdict.minimal, verdict.attempts
                )
            classified[member] = dataclasses.replace(
                classified[member], app_logs=logs.get(leader, "")
            )
    if options.keep_failed:
        classified = _keep(classified, schema, setup, flows, quiet)
    return classified


def _keep(
    findings: list[Finding],
    schema: FuzzSchema,
    setup: Callable[[FlowContext], object] | None,
    flows: Callable[[Sequence[Flow], workflow.UpOptions], RunResult],
    quiet: workflow.UpOptions,
) -> list[Finding]:
    """Reproduce each failure once more in an environment that is then kept."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, f in enumerate(findings):
        if f.verdict is not Verdict.NOT_REPRODUCED:
            groups.setdefault((f.unit, len(f.history)), []).append(i)
    if not groups:
        return findings
    batch = [
        _replay_flow(
            f"keep {members[0] + 1}",
            findings[members[0]],
            findings[members[0]].minimal,
            schema=schema,
            setup=setup,
            checks={findings[m].check for m in members},
        )
        for members in groups.values()
    ]
    result = flows(batch, dataclasses.replace(quiet, keep_failed=True))
    by_name = {r.name: r for r in result.flows}
    kept = list(findings)
    for members in groups.values():
        outcome = by_name.get(f"keep {members[0] + 1}")
        if outcome is not None and outcome.status is Status.FAILED:
            lines = outcome.message.splitlines()[1:]  # after "reproduced: ..."
            for m in members:
                kept[m] = dataclasses.replace(kept[m], kept="\n".join(lines))
    return kept


def _discover(
    config: Config,
    flows: Callable[[Sequence[Flow], workflow.UpOptions], RunResult],
    quiet: workflow.UpOptions,
) -> dict[str, Any]:
    """The app's OpenAPI document: from ``app.openapi`` (file or URL), else from the app."""
    from nocrud.analysis.coverage import capture_openapi, find_openapi, load_openapi

    where = config.app.openapi
    if where is not None and not where.startswith("/"):
        return find_openapi(config.root, None, where)
    with tempfile.TemporaryDirectory(prefix="nocrud-fuzz-") as scratch:
        directory = Path(scratch)

        def fetch(ctx: FlowContext) -> None:
            capture_openapi(ctx.base_url, directory, where, headers=config.app.headers)

        flows([Flow(name="openapi", func=fetch, kind="fuzz")], quiet)
        document = directory / "openapi.json"
        if document.is_file():
            return load_openapi(document)
        attempts = directory / "openapi-attempts.json"
        tried = json.loads(attempts.read_text())["tried"] if attempts.is_file() else []
        answers = "; ".join(f"{t['path']}: {t['answer']}" for t in tried) or "nothing answered"
        raise UsageError(
            f"the app serves no OpenAPI document where nocrud looked ({answers}): set "
            "app.openapi in nocrud.yaml to its path on the app, a file or a URL"
        )


def _setup_function(config: Config, options: FuzzOptions) -> Callable[[FlowContext], object] | None:
    """What logs each environment's client in: ``--auth USER:PASSWORD`` or ``--setup``."""
    if options.auth is not None and options.setup is not None:
        raise UsageError("--auth and --setup both log in: give one of them")
    if options.auth is not None:
        user, sep, password = options.auth.partition(":")
        if not sep or not user:
            raise UsageError(
                "--auth: expected USER:PASSWORD (a JSON bearer login at --login-path, "
                "as ctx.login does); for other schemes use --setup"
            )
        return lambda ctx: ctx.login(user, password, path=options.login_path)
    if options.setup is None:
        return None
    return _load_setup(config.root, options.setup)


def _load_setup(root: Path, spec: str) -> Callable[[FlowContext], object]:
    import importlib
    import sys

    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(
            f"--setup {spec!r}: expected MODULE:FUNCTION, e.g. flows.auth:login_admin "
            "(a function taking the flow context, like a flow)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"--setup {spec!r}: cannot import {module_name!r} ({exc}); it is imported from {root}"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise UsageError(f"--setup {spec!r}: {module_name} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


def _print_report(report: FuzzReport, console: Console, scripts: Path) -> None:
    paths = write_scripts(report, scripts)
    for index, finding in enumerate(report.findings, 1):
        console.print("")
        console.print(
            failure_block(finding, index=index, seed=report.seed),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        console.print(f"  curl script: {paths[index - 1]}", highlight=False, soft_wrap=True)
    console.print("")
    for line in summary_lines(report):
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def _write(report: FuzzReport, options: FuzzOptions, console: Console) -> None:
    if options.junit is not None:
        write_junit(report, Path(options.junit))
        console.print(f"JUnit XML written to {options.junit}")
    if options.json is not None:
        write_json(report, Path(options.json))
        console.print(f"JSON results written to {options.json}")


def results_of(report: FuzzReport, explored: RunResult, started_at: float) -> RunResult:
    """The run as a :class:`RunResult` for the store and ``nocrud coverage``.

    The explore units keep their requests (endpoint coverage) and pass unless their
    environment broke; each failure is one more result, FAILED when a brand-new
    environment reproduced it, with its block as the message.
    """
    units = tuple(
        dataclasses.replace(r, status=Status.PASSED) if r.status is Status.FAILED else r
        for r in explored.flows
    )
    failures = tuple(
        FlowResult(
            name=f"fuzz {f.operation}: {f.check}",
            status=Status.PASSED if f.verdict is Verdict.NOT_REPRODUCED else Status.FAILED,
            message=failure_block(f, index=i, seed=report.seed),
            app_logs=f.app_logs,
            kind="fuzz-failure",
        )
        for i, f in enumerate(report.findings, 1)
    )
    return dataclasses.replace(
        explored,
        flows=units + failures,
        started_at=started_at,
        wall_time=report.wall_time,
    )
