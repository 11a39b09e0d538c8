"""The pipeline behind the CLI: config, images, discover, select, run, report, exit code.

Each step is a plain function a test can call. :func:`up` is ``nocrud up``; its set-up
and teardown (Docker, images, the prepared strategy) is :mod:`nocrud.prepare`'s, which
every other front end shares. Interrupts are handled in one place: SIGINT or SIGTERM
while flows run stops scheduling, tears down every live environment and makes the run
exit 130; during the build step (:mod:`nocrud.prepare`) they unwind the build (which
removes its temporary container and network) the same way.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console

from nocrud import __version__
from nocrud.analysis.coverage import state_dir
from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, EngineLostError, engine_lost
from nocrud.environment import Provisioner, provisioner_for
from nocrud.errors import (
    EXIT_FAILED,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from nocrud.execute import FlowExecutor
from nocrud.execute.capture import install_output_capture
from nocrud.flows import Flow, discover, select
from nocrud.prepare import environments, handle_signals
from nocrud.report import TerminalReporter, write_json, write_junit
from nocrud.report.terminal import running
from nocrud.results import FlowResult, RunResult, ShardPlan
from nocrud.scheduler import BACKENDS, Backend, RunListener
from nocrud.sharding import Shard, plan_of


@dataclass(frozen=True)
class UpOptions:
    """What ``nocrud up`` was asked to do, beyond the config file."""

    names: Sequence[str] = ()
    keyword: str | None = None
    fail_fast: bool = False
    keep_failed: bool = False
    junit: Path | None = None
    json: Path | None = None
    verbose: bool = False
    #: Also hears every flow start and result, e.g. the run store's recorder (``--no-record``).
    listener: RunListener | None = None
    #: Run only this CI shard's part of the selected flows (``--shard I/N``).
    shard: Shard | None = None
    #: Results files whose flow durations balance the shards (later files win).
    durations: Sequence[Path] = ()
    #: Send the flows to Celery workers through this Redis broker instead of running them here.
    broker: str | None = None
    #: The split of a CI shard; set by :func:`up` from ``shard`` and ``durations``.
    plan: ShardPlan | None = None
    #: The run's one id (terminal, reports, Docker labels, store, console, Celery tasks);
    #: empty: a new one. The CLI chooses it before the run is recorded, so all agree.
    run_id: str = ""


def collect(config: Config, options: UpOptions) -> list[Flow]:
    """Discover flows and apply the selection."""
    return select(discover(config.flows.path), names=options.names, keyword=options.keyword)


def up(config: Config, options: UpOptions, console: Console) -> int:
    """``nocrud up``: build what changed, run the selected flows, report, return the exit code."""
    flows = collect(config, options)
    if not flows:
        console.print("no flows selected: check -f/-k, or `nocrud list` to see the flows there are")
        return EXIT_USAGE
    if options.shard is not None:
        flows, plan = _shard(flows, options, console)
        options = dataclasses.replace(options, plan=plan)
        if not flows:
            # More jobs than flows: this job passes, and its empty files keep the merge whole.
            _write_reports(_empty_run(config, options), options, console)
            return EXIT_OK
    if options.broker is not None:
        return _up_remote(config, flows, options, console)
    provisioner = provisioner_for(config)  # an unknown strategy stops here, before Docker
    with environments(
        config,
        console,
        provisioner=provisioner,
        run_id=options.run_id,
        keep_failed=options.keep_failed,
    ) as prepared:
        result = run_flows(
            config,
            provisioner,
            flows,
            options,
            console,
            run_id=prepared.run_id,
            engine=prepared.engine,
        )
    _write_reports(result, options, console)
    return _verdict(result, console)


def _verdict(result: RunResult, console: Console) -> int:
    """The exit code of a run that got to its reports, with the one line a stop needs."""
    if result.stopped and result.infrastructure:
        # Said once, here: the flows' blocks only say they did not run.
        console.print(f"error: {result.stopped}", soft_wrap=True, highlight=False)
        return EXIT_INFRASTRUCTURE
    if result.stopped:
        # Reported in full in the first flow's block; the run's own verdict is a config error.
        console.print("stopped: a configuration problem every flow would hit (see above)")
        return EXIT_USAGE
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


def _shard(flows: list[Flow], options: UpOptions, console: Console) -> tuple[list[Flow], ShardPlan]:
    """This CI job's part of ``flows``, balanced by ``--durations``, and the plan it is part of."""
    assert options.shard is not None
    chosen, plan, durations = plan_of(flows, options.shard, options.durations)
    known = sum(1 for f in flows if f.name in durations)
    estimate = sum(durations.get(f.name, 0.0) for f in chosen)
    history = (
        f"{known} of {len(flows)} with recorded durations, ~{estimate:.0f} s of them here"
        if known
        else "split by name; --durations FILE balances by time"
    )
    console.print(
        f"shard {options.shard}: {len(chosen)} of {len(flows)} flow(s) ({history}; "
        f"plan {plan.fingerprint})",
        soft_wrap=True,
    )
    return chosen, plan


def _empty_run(config: Config, options: UpOptions) -> RunResult:
    return RunResult(
        run_id=options.run_id or cleanup.new_run_id(),
        project=config.project,
        flows=(),
        started_at=time.time(),
        wall_time=0.0,
        parallel=config.parallel,
        nocrud_version=__version__,
        shard=str(options.shard or ""),
        plan=options.plan,
    )


def _write_reports(result: RunResult, options: UpOptions, console: Console) -> None:
    if options.junit is not None:
        write_junit(result, options.junit)
        console.print(f"JUnit XML written to {options.junit}")
    if options.json is not None:
        write_json(result, options.json)
        console.print(f"JSON results written to {options.json}")


def run_flows(
    config: Config,
    provisioner: Provisioner,
    flows: Sequence[Flow],
    options: UpOptions,
    console: Console,
    *,
    run_id: str,
    backend: str = "local",
    engine: Engine | None = None,
    reporter: TerminalReporter | None = None,
) -> RunResult:
    """Run the flows on a backend with live reporting; interrupts stop it cleanly.

    With the run's ``engine``, a flow that does not pass makes the executor ask whether
    the Docker daemon is still there; a lost daemon stops the run (see
    :func:`nocrud.docker.engine.engine_lost`). A front end with its own ``reporter``
    (``watch``'s compact one) gets no "running N flows" line.
    """
    parallel = config.parallel
    executor = FlowExecutor(
        provisioner,
        flow_timeout=config.timeouts.flow,
        keep_failed=options.keep_failed,
        state_dir=state_dir(config.root),
        openapi=config.app.openapi,
        headers=config.app.headers,
    )
    announce = reporter is None
    if reporter is None:
        reporter = TerminalReporter(console, verbose=options.verbose, total=len(flows))
    runner: Backend[Flow] = BACKENDS[backend](
        executor,
        parallel=parallel,
        fail_fast=options.fail_fast,
        listener=reporter if options.listener is None else _Listeners(reporter, options.listener),
    )
    executor.stop_run = runner.stop  # a configuration problem every flow would hit
    if engine is not None:
        executor.engine_check = engine_lost  # or the daemon went away
    if announce:
        console.print(f"running {running(len(flows), parallel)} (run {run_id})")
    stopped = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if stopped.is_set():
            return
        stopped.set()
        console.print(
            f"\n{signal.Signals(signum).name}: stopping; tearing down running environments"
        )
        runner.stop("interrupted")
        threading.Thread(target=executor.kill_all, name="nocrud-teardown", daemon=True).start()

    started_at = time.time()
    t0 = time.monotonic()
    undo_capture = install_output_capture()
    try:
        with reporter, handle_signals(stop):
            schedule = runner.run(flows)
    finally:
        undo_capture()
    result = RunResult(
        run_id=run_id,
        project=config.project,
        flows=schedule.results,
        started_at=started_at,
        wall_time=time.monotonic() - t0,
        parallel=parallel,
        # A configuration problem stops the scheduler too; that is not an interrupt.
        interrupted=stopped.is_set()
        or (
            schedule.interrupted
            and executor.configuration_problem is None
            and executor.engine_problem is None
        ),
        stopped=_lost_engine(executor)
        or ("" if executor.configuration_problem is None else str(executor.configuration_problem)),
        infrastructure=executor.engine_problem is not None
        or getattr(executor.configuration_problem, "infrastructure", False),
        nocrud_version=__version__,
        shard=str(options.shard or ""),
        plan=options.plan,
    )
    reporter.finish(result)
    return result


def _lost_engine(executor: FlowExecutor) -> str:
    """The one line naming a lost Docker daemon and how far the run got, else empty."""
    problem = executor.engine_problem
    if problem is None:
        return ""
    done = executor.finished_before_problem
    text = f"{problem} after {done} flow{'' if done == 1 else 's'}"
    if isinstance(problem, EngineLostError):
        text = f"lost the Docker daemon at {problem.where} after {done} flow"
        text += f"{'' if done == 1 else 's'} ({problem.cause})"
    return (
        f"{text}: the flows it was running are errors, the rest not run; check the daemon "
        "(`nocrud doctor`) and run again"
    )


def _up_remote(config: Config, flows: Sequence[Flow], options: UpOptions, console: Console) -> int:
    """``nocrud up --broker``: run on the workers, report here, the same exit codes."""
    result = run_remote(config, flows, options, console)
    _write_reports(result, options, console)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


def run_remote(
    config: Config, flows: Sequence[Flow], options: UpOptions, console: Console
) -> RunResult:
    """Run the flows on Celery workers (``--broker``) with the same live report as a local run.

    Nothing here touches Docker: each worker prepares its own host. Ctrl-C or SIGTERM
    revokes the queued flows and tells the workers to tear down the running ones.
    """
    from nocrud.masking import mask_url
    from nocrud.worker.checkout import fingerprint

    assert options.broker is not None
    run_id = options.run_id or cleanup.new_run_id()
    reporter = TerminalReporter(console, verbose=options.verbose, total=len(flows))
    runner: Backend[Flow] = BACKENDS["celery"](
        None,
        parallel=config.parallel,
        fail_fast=options.fail_fast,
        listener=reporter if options.listener is None else _Listeners(reporter, options.listener),
        broker=options.broker,
        run_id=run_id,
        project=config.project,
        checkout=fingerprint(config),
        say=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
    console.print(
        f"sending {len(flows)} flow(s) to the workers on {mask_url(options.broker)} (run {run_id})",
        soft_wrap=True,
    )
    stopped = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if stopped.is_set():
            return
        stopped.set()
        console.print(
            f"\n{signal.Signals(signum).name}: stopping; queued flows revoked, "
            "workers tear down the running ones"
        )
        runner.stop("interrupted")

    started_at = time.time()
    t0 = time.monotonic()
    with reporter, handle_signals(stop):
        schedule = runner.run(flows)
    result = RunResult(
        run_id=run_id,
        project=config.project,
        flows=schedule.results,
        started_at=started_at,
        wall_time=time.monotonic() - t0,
        parallel=config.parallel,
        interrupted=schedule.interrupted or stopped.is_set(),
        nocrud_version=__version__,
        shard=str(options.shard or ""),
        plan=options.plan,
    )
    reporter.finish(result)
    return result


class _Listeners:
    """The terminal reporter, then the recorder: both hear every flow, in that order."""

    def __init__(self, *listeners: RunListener) -> None:
        self._listeners = listeners

    def flow_started(self, name: str, worker: int) -> None:
        for listener in self._listeners:
            listener.flow_started(name, worker)

    def flow_finished(self, result: FlowResult) -> None:
        for listener in self._listeners:
            listener.flow_finished(result)
