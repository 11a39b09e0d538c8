"""``nocrud watch``: one long process that reruns flows on warm environments as files change.

It is a front end over the same workflow as ``nocrud up``: Docker is opened once
(:func:`nocrud.prepare.docker_session`: the sweep, the reaper, the run's labels), and a
*generation* of environments is prepared on the current images
(:func:`nocrud.prepare.prepared_provisioner`: build by content hash, prepare the
strategy) and kept prepared between reruns, each rerun being
:func:`nocrud.workflow.run_flows` with :class:`~nocrud.watch.report.WatchReporter`.
Under ``pool`` (watch's default strategy) the pairs stay up between reruns and are
reset in the background after each flow, so a rerun's flows start on ready pairs.

The watcher (watchfiles, Rust's notify) groups an editor's several writes: a batch is
handed over once no new event came for ``step`` milliseconds. Each batch becomes a
:class:`~nocrud.watch.changes.Plan`: flow files re-import the flows package
(:func:`nocrud.flows.discover` with ``reload``) and rerun the flows they define; app
files and migrations rebuild the images (Docker's layer cache does the app's part) and,
when an image changed, close this generation and prepare the next. A rebuild that fails
is printed and the old environments keep serving until the next save.

Ctrl-C (or SIGTERM) while waiting unwinds the blocks (provisioner closed, the run's
objects removed, Docker closed) and the CLI's guard exits 130; during a rerun,
``run_flows`` tears the running environments down first.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console

from nocrud import prepare, workflow
from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.environment import needs_db_image, provisioner_for
from nocrud.errors import EXIT_INTERRUPTED, EXIT_USAGE, NocrudError
from nocrud.flows import Flow, discover, select
from nocrud.images import BuiltImages
from nocrud.report.terminal import plural
from nocrud.results import RunResult
from nocrud.watch.changes import Plan, Watched, classify, to_rerun
from nocrud.watch.report import Failures, WatchReporter

__all__ = ["Changes", "WatchOptions", "file_changes", "sigterm_as_interrupt", "watch"]

#: Batches of changed paths; an empty batch is a tick with nothing changed.
Changes = Iterator[set[Path]]


@dataclass(frozen=True)
class WatchOptions:
    """What ``nocrud watch`` was asked to do, beyond the config file.

    Attributes:
        names: ``-f``: only these flows.
        keyword: ``-k``: only flows whose name or tags match.
        tags: ``-m``: only flows whose tags match.
        kinds: ``--crud``: only these kinds.
        step_ms: Quiet time that ends a batch of changes (an editor's several writes).
        first_run: Run the selection once at the start (it also warms the pairs).
    """

    names: tuple[str, ...] = ()
    keyword: str | None = None
    tags: str | None = None
    kinds: tuple[str, ...] = ()
    step_ms: int = 50
    first_run: bool = True

    def select(self, flows: Sequence[Flow]) -> list[Flow]:
        return select(
            flows, names=self.names, keyword=self.keyword, tags=self.tags, kinds=self.kinds
        )


def file_changes(roots: Sequence[Path], *, step_ms: int = 50) -> Changes:
    """Batches of changed paths under ``roots``, from watchfiles; a batch per quiet ``step``.

    The first batch is empty and comes once the watcher runs, so edits made while the
    caller works (a rerun) are not lost: the watcher keeps them for the next batch.
    """
    import watchfiles

    for batch in watchfiles.watch(
        *roots, step=step_ms, rust_timeout=1000, yield_on_timeout=True, raise_interrupt=True
    ):
        yield {Path(path) for _change, path in batch}


class _Screen:
    """What one ``watch`` prints, on one console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.failures = Failures()

    def say(self, line: str) -> None:
        self.console.print(line, highlight=False, soft_wrap=True)

    def begin(self, why: str) -> None:
        if self.console.is_terminal:
            self.console.clear()
        self.say(f"rerun: {why}")


def watch(
    config: Config,
    options: WatchOptions,
    console: Console,
    *,
    changes: Callable[[Sequence[Path]], Changes] | None = None,
) -> int:
    """Run ``nocrud watch`` until interrupted; return the exit code (130, or 2 for no flows).

    Args:
        config: The validated configuration (its strategy and ``-j`` decide the environments).
        options: Selection and watcher settings.
        console: Where results go.
        changes: Makes the batches of changed paths from the roots to watch (a test's
            fake); default: :func:`file_changes`.
    """
    watched = Watched.of(config)
    discovered = discover(config.flows.path)
    selected = options.select(discovered)
    if not selected:
        console.print("no flows selected: check -f/-k/-m/--crud, or `nocrud list`")
        return EXIT_USAGE
    screen = _Screen(console)
    make_changes = changes or (lambda roots: file_changes(roots, step_ms=options.step_ms))
    run_id = cleanup.new_run_id()
    with prepare.docker_session(config, console, run_id=run_id) as engine:
        batches = make_changes(watched.roots())
        next(batches)  # the watcher runs from here on
        due: list[Flow] | None = selected if options.first_run else None
        why = f"{plural(len(selected), 'selected flow')}, at the start"
        images: BuiltImages | None = None  # built by the last change, else by the first block
        while True:
            provisioner = provisioner_for(config)
            with prepare.prepared_provisioner(
                config, engine, console, provisioner, run_id=run_id, say=screen.say, images=images
            ) as prepared:
                if due:
                    result = _rerun(config, prepared, due, screen, why=why)
                    if result.interrupted:
                        return EXIT_INTERRUPTED
                screen.say(
                    f"watching {_describe(watched)} ({provisioner.name} strategy, "
                    f"-j {config.parallel}); Ctrl-C to stop"
                )
                change = _wait(config, options, prepared, batches, screen=screen, watched=watched)
                if change is None:
                    return EXIT_INTERRUPTED
                plan, images = change
            # A new generation on the new images; every selected flow reruns on it.
            with contextlib.suppress(Exception):  # names of the closed pairs are free again
                cleanup.remove_run(engine.client, run_id)
            found = _rediscover(config, options, screen)
            due = found[1] if found is not None else None
            why = f"rebuilt ({', '.join(plan.reasons)})"


def _wait(
    config: Config,
    options: WatchOptions,
    prepared: prepare.Prepared,
    batches: Changes,
    *,
    screen: _Screen,
    watched: Watched,
) -> tuple[Plan, BuiltImages] | None:
    """Rerun flows as their files change; return a change that made new images, and them."""
    for batch in batches:
        if not batch:
            continue
        plan = classify(batch, watched)
        if plan.empty:
            continue
        why = ", ".join(plan.reasons)
        if plan.rebuild:
            images = _build(config, prepared, screen, why)
            if images is None:
                continue
            return plan, images
        found = _rediscover(config, options, screen)
        if found is None:
            continue
        discovered, selected = found
        due = to_rerun(plan, selected, discovered)
        screen.failures.forget_except({f.name for f in discovered})
        if not due:
            screen.say(f"{why}: no selected flow is defined there")
            continue
        result = _rerun(config, prepared, due, screen, why=why)
        if result.interrupted:
            return None
    return None  # pragma: no cover - the watcher ends only on an interrupt


def _rediscover(
    config: Config, options: WatchOptions, screen: _Screen
) -> tuple[list[Flow], list[Flow]] | None:
    """The flows after an edit (the package imported again) and the selected ones of them.

    A package that no longer imports, or a selection that matches nothing now, is printed
    and the caller keeps watching (None).
    """
    try:
        discovered = discover(config.flows.path, reload=True)
        return discovered, options.select(discovered)
    except NocrudError as exc:
        screen.say(f"error: {exc}")
        screen.say("fix it and save again")
        return None


def _build(
    config: Config, prepared: prepare.Prepared, screen: _Screen, why: str
) -> BuiltImages | None:
    """Build what changed while the old environments keep serving; None if the build failed."""
    screen.begin(why)
    console = screen.console
    try:
        images = prepare.build(
            config,
            prepared.engine,
            console,
            prepared.run_id,
            db_image=needs_db_image(prepared.provisioner),
        )
    except NocrudError as exc:
        screen.say(f"error: {exc}")
        screen.say("the environments of the last good build keep serving: fix it and save again")
        return None
    if (images.app, images.db) == (prepared.images.app, prepared.images.db):
        screen.say("images unchanged: nothing to rerun")
        return None
    return images


def _rerun(
    config: Config,
    prepared: prepare.Prepared,
    flows: Sequence[Flow],
    screen: _Screen,
    *,
    why: str,
) -> RunResult:
    screen.begin(why)
    reporter = WatchReporter(screen.console, total=len(flows), failures=screen.failures, why=why)
    return workflow.run_flows(
        config,
        prepared.provisioner,
        flows,
        workflow.UpOptions(),
        screen.console,
        run_id=prepared.run_id,
        engine=prepared.engine,
        reporter=reporter,
    )


def _describe(watched: Watched) -> str:
    here = Path.cwd()

    def short(path: Path) -> str:
        return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)

    return ", ".join(short(p) for p in watched.roots())


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds ``watch`` as Ctrl-C does (the blocks' teardown runs), in the main thread."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.stdout.flush()
