"""One pytest process's environments: images built once, a provisioner prepared once.

:class:`EnvironmentSession` is what the plugin's session-scoped fixture holds. It runs the
same steps as ``nocrud up`` (:func:`nocrud.prepare.prepare_docker` and
:func:`nocrud.prepare.build`, :func:`nocrud.environment.provisioner_for`, a
:class:`~nocrud.environment.Run`), so a test's environment is a flow's environment: same
images, same strategy, same labels, same reaper. Under pytest-xdist every worker is a
process of its own with its own session; the build runs under a lock shared by all of
them (:func:`build_lock`), so the first worker builds and the others wait and then find
the images up to date. Each test then gets a :class:`TestEnvironment` from
:meth:`EnvironmentSession.acquire`, and hands it back when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.environment import Provisioner, Target
    from nocrud.execute import FlowExecutor
    from nocrud.flows import Flow
    from nocrud.results import FlowResult

__all__ = ["EnvironmentSession", "Settings", "TestEnvironment", "build_lock"]


@dataclass(frozen=True)
class Settings:
    """What the command line and ini chose for this process.

    Attributes:
        config: ``--nocrud-config``: a nocrud.yaml or its directory; None: the nearest one.
        strategy: ``--nocrud-strategy``: overrides ``run.strategy``.
        keep_failed: ``--nocrud-keep-failed``: keep the environments of failed tests (and
            start no reaper, which would remove them when pytest exits).
        start: Where to look for the nearest nocrud.yaml (pytest's rootdir).
    """

    config: Path | None = None
    strategy: str | None = None
    keep_failed: bool = False
    start: Path = field(default_factory=Path.cwd)


@dataclass
class TestEnvironment:
    """One test's own app and database, as this process reaches them.

    Attributes:
        base_url: Root URL of the test's own app.
        db_host: The database's host, as this process reaches it.
        db_port: Its port.
        db_name: The test's own database.
        db_user: The app's role.
        db_password: That role's password (a new one per environment).
    """

    base_url: str
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str = field(repr=False)
    _target: Target = field(repr=False)
    _kept: str = field(default="", repr=False)

    @property
    def db_url(self) -> str:
        """``postgresql://user:password@host:port/name``, for SQLAlchemy, Django or psql."""
        user, password = quote(self.db_user, safe=""), quote(self.db_password, safe="")
        return f"postgresql://{user}:{password}@{self.db_host}:{self.db_port}/{self.db_name}"

    def connect(self) -> Any:
        """A new psycopg2 connection to the test's database, as the app's role."""
        return self._target.database.connect()

    def app_logs(self, tail: int = 40) -> str:
        """The app's last ``tail`` log lines."""
        return self._target.app_logs(tail)

    def keep(self) -> str:
        """Keep this environment after the test; return how to reach it.

        Kept environments outlive pytest only with ``--nocrud-keep-failed`` (without it
        the reaper removes everything of this process when it exits).
        """
        if not self._kept:
            self._kept = self._target.keep()
        return self._kept

    @property
    def kept(self) -> str:
        """How to reach the environment when it was kept, else empty."""
        return self._kept


def build_lock(config: Config) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock for building ``config``'s images, shared by every process.

    The lock file lives in the system's temporary directory, named after the project and
    its config file: never inside the app's build context, where a new file would change
    the image's content hash.
    """
    key = hashlib.sha256(str(config.source.resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"nocrud-build-{config.project}-{key}.lock"
    return _locked(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


class _Lines(io.StringIO):
    """A text stream that hands each complete line to ``say`` (the build's progress)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__()
        self._say = say
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._say(line.rstrip())
        return len(text)


class EnvironmentSession:
    """This process's Docker connection, images and provisioner, made on first use.

    Args:
        settings: The command line's choices.
        say: Prints one line for the user (the terminal, when pytest has one).
    """

    def __init__(self, settings: Settings, say: Callable[[str], None]) -> None:
        self.settings = settings
        self._say = say
        self._config: Config | None = None
        self._stack: contextlib.ExitStack | None = None
        self._provisioner: Provisioner | None = None
        self._start_error: BaseException | None = None
        self._executor: FlowExecutor | None = None
        self.run_id = ""

    @property
    def config(self) -> Config:
        """The validated configuration (loaded on first use)."""
        if self._config is None:
            self._config = load(self.settings)
        return self._config

    def start(self) -> None:
        """Make the provisioner this process's tests take their environments from."""
        self._provisioner = self._open(self.config)

    def _open(self, config: Config) -> Provisioner:
        """Connect, build under the shared lock, prepare the strategy: ``nocrud up``'s steps."""
        from rich.console import Console

        from nocrud import prepare
        from nocrud.docker import cleanup

        self.run_id = cleanup.new_run_id()
        console = Console(file=_Lines(self._say), no_color=True, highlight=False, width=200)
        stack = contextlib.ExitStack()
        prepared = stack.enter_context(
            prepare.environments(
                config,
                console,
                run_id=self.run_id,
                keep_failed=self.settings.keep_failed,
                say=self._say,
                build_lock=build_lock(config),
            )
        )
        # Closed by close(): the provisioner, the run's leftovers, the Docker connection.
        self._stack = stack
        return prepared.provisioner

    def _ready(self) -> Provisioner:
        """The prepared provisioner, started on first use; a failed start is raised again."""
        if self._start_error is not None:
            raise self._start_error  # every test would fail the same way: do not retry
        if self._provisioner is None:
            try:
                self.start()
            except Exception as exc:
                self._start_error = exc
                raise
        assert self._provisioner is not None
        return self._provisioner

    @contextlib.contextmanager
    def acquire(self, name: str, *, fresh: bool = False) -> Iterator[TestEnvironment]:
        """One test's environment; handed back (or kept) when the block ends."""
        with self._ready().acquire(name, fresh=fresh) as target:
            db = target.database
            yield TestEnvironment(
                base_url=target.base_url,
                db_host=db.host,
                db_port=db.port,
                db_name=db.dbname,
                db_user=db.user,
                db_password=db.password,
                _target=target,
            )

    def run_flow(self, flow: Flow) -> FlowResult:
        """Run one ``@flow`` or ``crud()`` flow in an environment of its own, as ``nocrud up``
        does (the same executor: its timeout, steps, output and app logs)."""
        from nocrud.execute import FlowExecutor

        if self._executor is None:
            self._executor = FlowExecutor(
                self._ready(),
                flow_timeout=self.config.timeouts.flow,
                keep_failed=self.settings.keep_failed,
                openapi=self.config.app.openapi,
                headers=self.config.app.headers,
            )
        return self._executor.run(flow, 0)

    def kill_all(self) -> int:
        """Tear every environment down now (an interrupt)."""
        return self._provisioner.kill_all() if self._provisioner is not None else 0

    def close(self) -> None:
        """Remove what this process made (unless ``--nocrud-keep-failed``). Idempotent."""
        provisioner, self._provisioner = self._provisioner, None
        stack, self._stack = self._stack, None
        self._executor = None
        try:
            if provisioner is not None:
                provisioner.close()  # idempotent: the stack closes it again, with the rest
        finally:
            if stack is not None:
                stack.close()


def load(settings: Settings) -> Config:
    """The configuration as ``nocrud`` would load it, with this process's overrides.

    One pytest process runs one test at a time, so the provisioner is prepared for one
    environment at a time (``run.parallel`` 1); pytest-xdist's workers are the parallelism.
    """
    from nocrud.config import find_config, load_config

    path = settings.config
    if path is None and not os.environ.get("NOCRUD_CONFIG", "").strip():
        path = find_config(settings.start)
    overrides: dict[str, Any] = {"run.parallel": 1}
    if settings.strategy:
        overrides["run.strategy"] = settings.strategy
    return load_config(path, overrides=overrides)
