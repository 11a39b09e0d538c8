"""nocrud's pytest plugin: each test that asks for it gets its own app and database.

Registered as the ``nocrud`` pytest11 entry point, so ``pip install nocrud`` is enough.
It does nothing until a test asks for one of its fixtures: no nocrud.yaml is read, no
Docker is touched and nothing heavy is imported before then (this module imports only
pytest and the standard library). Turn it off with ``-p no:nocrud``.

Fixtures:
    ``nocrud_env``: the test's own environment (:class:`~nocrud.testing.session.TestEnvironment`):
        base URL, database host/port/name/user/password/URL, app logs, ``keep()``.
    ``api`` (also ``nocrud_api``): nocrud's :class:`~nocrud.http.client.ApiClient` on that app,
        with the auth helpers, ``expect=`` checks and request log flows have.
    ``db`` (also ``nocrud_db``): a psycopg2 connection (autocommit) to that database as the
        app's role, closed after the test.

The first test that asks builds the images (cached by content hash, as ``nocrud up``
does; under pytest-xdist one worker builds while the others wait) and prepares the
configured strategy once per process. A failing test's report gains the sections
``nocrud requests``, ``nocrud curl`` and ``nocrud app log``. docs/pytest.md has the rest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nocrud.http.client import ApiClient
    from nocrud.testing.record import PytestRecording
    from nocrud.testing.session import EnvironmentSession, Settings, TestEnvironment

__all__ = [
    "api",
    "db",
    "nocrud_api",
    "nocrud_db",
    "nocrud_env",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_configure",
    "pytest_runtest_makereport",
]

#: The marker's line in ``pytest --markers``.
MARKER = (
    "nocrud(fresh=False): options of the test's nocrud environment; fresh=True asks for an "
    "environment that never served another test (a new pair under the pool strategy)"
)
#: How many of the app's last log lines a failing test's report shows.
LOG_LINES = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nocrud", "nocrud: a database and app of its own for each test")
    group.addoption(
        "--nocrud-config",
        metavar="PATH",
        default=None,
        help="nocrud.yaml (or its directory); default: $NOCRUD_CONFIG, else the nearest "
        "nocrud.yaml in the rootdir or its parents.",
    )
    group.addoption(
        "--nocrud-strategy",
        metavar="NAME",
        default=None,
        help="Provisioning strategy for the tests' environments (image, pool, template, "
        "migrate, external); default: run.strategy of the config.",
    )
    group.addoption(
        "--nocrud-keep-failed",
        action="store_true",
        default=False,
        help="Keep the environments of failed tests for inspection (remove them with "
        "`nocrud clean`); no reaper runs.",
    )
    group.addoption(
        "--nocrud-report-to",
        metavar="URL",
        default=None,
        help="Stream the tests that used nocrud's fixtures to a nocrud console (as "
        "`nocrud up --report-to`).",
    )
    group.addoption(
        "--nocrud-flows",
        action="store_true",
        default=False,
        help="Collect the flows of flows.path (@flow and crud()) as tests, each in its own "
        "environment; their tags become markers (pytest --nocrud-flows flows/).",
    )
    group.addoption(
        "--nocrud-no-record",
        action="store_true",
        default=False,
        help="Do not record the run in the local run store (as `nocrud up --no-record`).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    _spare_from_assertion_rewriting(config)
    if not hasattr(config, "workerinput"):  # an xdist worker's reports go to its controller
        config.pluginmanager.register(_RunRecorder(config), "nocrud-run-recorder")


def _spare_from_assertion_rewriting(config: pytest.Config) -> None:
    """Let nocrud's own modules load as plain Python, not through pytest's assertion rewriting.

    pytest rewrites the asserts of every package whose distribution registers a pytest11
    plugin, so that a test helper's ``assert`` reports like a test's. nocrud is a test
    runner, not a library of assertions; rewriting its forty-odd modules (parse, rewrite,
    compile) costs a few tenths of a CPU-second in every process that uses the fixtures,
    in each pytest-xdist worker again, and every time where bytecode is not cached
    (``PYTHONDONTWRITEBYTECODE``, common in CI images). pytest has no public way to unmark
    a package; the hook's set of marked names is read defensively, and without it the
    modules are rewritten as before.
    """
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    cache = getattr(hook, "_marked_for_rewrite_cache", None)
    if isinstance(marked, set) and "nocrud" in marked:
        marked.discard("nocrud")
        if isinstance(cache, dict):
            for name in [n for n in cache if n == "nocrud" or n.startswith("nocrud.")]:
                del cache[name]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tests that will ask for an environment are collected: start the reaper meanwhile.

    The reaper's container starts on a thread of its own while pytest (and pytest-xdist,
    which waits for every worker's collection) gets to the first test, whose set-up then
    finds it started. pytest-xdist's workers share one reaper (the first starts it, the
    others register on it): one container per session, not one per worker. Nothing
    happens for ``--collect-only``, for a session that uses none of the fixtures, or under
    ``--nocrud-keep-failed`` (no reaper: kept environments must outlive the process).
    """
    config = session.config
    if config.option.collectonly or config.getoption("--nocrud-keep-failed"):
        return
    if not any("_nocrud_session" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from nocrud.docker.reaper import start_early

    _share_reaper(config)
    start_early()


def _share_reaper(config: pytest.Config) -> None:
    """In a pytest-xdist worker: share one reaper with the session's other workers."""
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict) and workerinput.get("testrunuid"):
        from nocrud.docker.reaper import share_with

        share_with(f"pytest-xdist {workerinput['testrunuid']}")


def _settings(config: pytest.Config) -> Settings:
    from nocrud.testing.session import Settings

    option = config.getoption
    path = option("--nocrud-config")
    return Settings(
        config=Path(path) if path else None,
        strategy=option("--nocrud-strategy"),
        keep_failed=bool(option("--nocrud-keep-failed")),
        start=config.rootpath,
    )


class _RunRecorder:
    """Records the run in the process that hears every report (pytest, or xdist's controller).

    Registered by :func:`pytest_configure` except in an xdist worker, whose reports its
    controller hears. Nothing is imported before a report of a test that used the fixtures.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._recording: PytestRecording | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not isinstance(getattr(report, "nocrud", None), dict):
            return
        if self._recording is None:
            from nocrud.testing.record import PytestRecording, selection_of

            config = self._config
            workers = getattr(config.option, "numprocesses", None)
            self._recording = PytestRecording(
                _settings(config),
                record=not config.getoption("--nocrud-no-record"),
                report_to=config.getoption("--nocrud-report-to"),
                parallel=workers if isinstance(workers, int) and workers > 0 else 1,
                selection=selection_of(config.invocation_params.args),
                say=_say(config),
            )
        self._recording.report(report)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self._recording is not None:
            self._recording.finish(exitstatus)
            if self._recording.run_id:
                _say(self._config)(f"run {self._recording.run_id} recorded")


@dataclass
class _Evidence:
    """What a failing test's report shows, gathered while it runs."""

    env: TestEnvironment | None = None
    lines: list[str] = field(default_factory=list)
    clients: list[ApiClient] = field(default_factory=list)


_EVIDENCE = pytest.StashKey[_Evidence]()


def _evidence(item: pytest.Item) -> _Evidence:
    found = item.stash.get(_EVIDENCE, None)
    if found is None:
        found = item.stash[_EVIDENCE] = _Evidence()
    return found


@pytest.fixture(scope="session")
def _nocrud_session(request: pytest.FixtureRequest) -> Iterator[EnvironmentSession]:
    from nocrud.testing.session import EnvironmentSession

    config = request.config
    _share_reaper(config)
    session = EnvironmentSession(_settings(config), say=_say(config))
    problem = _user_error(lambda: session.config)  # a bad config: the key and the fix
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def nocrud_env(
    request: pytest.FixtureRequest, _nocrud_session: EnvironmentSession
) -> Iterator[TestEnvironment]:
    """This test's own app and database (see :class:`~nocrud.testing.session.TestEnvironment`)."""
    marker = request.node.get_closest_marker("nocrud")
    fresh = bool(marker.kwargs.get("fresh", False)) if marker is not None else False
    evidence = _evidence(request.node)
    context = _nocrud_session.acquire(request.node.nodeid, fresh=fresh)
    entered: list[TestEnvironment] = []
    problem = _user_error(lambda: entered.append(context.__enter__()))
    if problem:
        pytest.fail(problem, pytrace=False)
    env = entered[0]
    evidence.env = env
    try:
        yield env
    finally:
        # pytest never throws the test's exception into a fixture: this is the teardown.
        context.__exit__(None, None, None)


@pytest.fixture
def nocrud_api(
    request: pytest.FixtureRequest,
    nocrud_env: TestEnvironment,
    _nocrud_session: EnvironmentSession,
) -> Iterator[ApiClient]:
    """nocrud's HTTP client on this test's own app (anonymous until the test logs in).

    It sends ``app.headers`` on every request, as a flow's ``ctx.api`` does.
    """
    from nocrud.http.client import ApiClient

    evidence = _evidence(request.node)
    headers = _nocrud_session.config.app.headers
    client = _RecordingClient(ApiClient, nocrud_env.base_url, evidence.lines.append, headers)
    evidence.clients.append(client)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def api(nocrud_api: ApiClient) -> ApiClient:
    """``nocrud_api`` under its short name (a project's own ``api`` fixture wins over it)."""
    return nocrud_api


@pytest.fixture
def nocrud_db(nocrud_env: TestEnvironment) -> Iterator[Any]:
    """A psycopg2 connection (autocommit) to this test's own database, as the app's role."""
    connection = nocrud_env.connect()
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def db(nocrud_db: Any) -> Any:
    """``nocrud_db`` under its short name (a project's own ``db`` fixture wins over it)."""
    return nocrud_db


def _RecordingClient(  # noqa: N802 - a class factory
    cls: type[ApiClient], base_url: str, log: Any, headers: Mapping[str, str]
) -> ApiClient:
    """An :class:`ApiClient` that remembers its last response, for the failure report."""

    class RecordingClient(cls):  # type: ignore[valid-type,misc]
        last_response: Any = None

        def request(self, method: str, path: str, **options: Any) -> Any:
            from nocrud.http.responses import UnexpectedStatus

            __tracebackhide__ = True
            try:
                response = super().request(method, path, **options)
            except UnexpectedStatus as exc:
                self.last_response = exc.response
                raise
            self.last_response = response
            return response

    return RecordingClient(base_url, log=log, headers=headers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if "nocrud_env" in getattr(item, "fixturenames", ()):
        # basic types only: pytest-xdist sends the report's attributes to its controller
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
        marks = {"worker": int(worker) if worker.isdigit() else 0}
        setattr(report, "nocrud", marks)  # noqa: B010 - an extra attribute TestReport does not declare
    evidence = item.stash.get(_EVIDENCE, None)
    if evidence is None or evidence.env is None or report.passed or report.when == "teardown":
        return report
    with contextlib.suppress(Exception):  # the report matters more than its extra sections
        for name, text in _sections(item, evidence, call):
            report.sections.append((name, text))
    return report


def _sections(
    item: pytest.Item, evidence: _Evidence, call: pytest.CallInfo[None]
) -> list[tuple[str, str]]:
    from nocrud.masking import mask_text
    from nocrud.testing.evidence import curl_for

    env = evidence.env
    assert env is not None
    sections = []
    if evidence.lines:
        sections.append(("nocrud requests", "\n".join(mask_text(x) for x in evidence.lines)))
    curl = curl_for(call.excinfo.value if call.excinfo else None, evidence.clients)
    if curl:
        sections.append(("nocrud curl", f"APP={env.base_url}\n{curl}"))
    logs = env.app_logs(LOG_LINES).strip()
    if logs:
        sections.append(("nocrud app log", mask_text(logs)))
    if item.config.getoption("--nocrud-keep-failed"):
        sections.append(("nocrud kept environment", env.keep()))
    return sections


def _say(config: pytest.Config) -> Any:
    """Print a line on pytest's terminal, past output capturing (no terminal: nowhere)."""

    def say(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        disabled = capture.global_and_fixture_disabled() if capture is not None else _nothing()
        with disabled:
            reporter.write_line(f"nocrud: {line}")

    return say


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _user_error(step: Callable[[], object]) -> str:
    """Run ``step``; a user's problem (config, Docker, an app that never starts) is returned
    as the one message the test's setup error shows, anything else is raised (a bug)."""
    from nocrud.environment import ProvisionError
    from nocrud.errors import NocrudError

    try:
        step()
    except (NocrudError, ProvisionError) as exc:
        return f"nocrud: {exc}"
    return ""


# -- flows as pytest items ----------------------------------------------------------------

_FLOWS = pytest.StashKey[tuple[Path, list[Any]]]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Under ``--nocrud-flows``, a module of the flows package collects its flows."""
    config = parent.config
    if not config.getoption("--nocrud-flows") or file_path.suffix != ".py":
        return None
    directory, _ = _flows(config)
    if not file_path.resolve().is_relative_to(directory):
        return None
    return FlowFile.from_parent(parent, path=file_path)


def _flows(config: pytest.Config) -> tuple[Path, list[Any]]:
    """The flows package's directory and its flows, discovered once per pytest run."""
    found = config.stash.get(_FLOWS, None)
    if found is None:
        from nocrud.config import ConfigError
        from nocrud.flows import FlowDiscoveryError, discover
        from nocrud.testing.session import load

        try:
            loaded = load(_settings(config))
            flows = discover(loaded.flows.path)
        except (ConfigError, FlowDiscoveryError) as exc:
            raise pytest.UsageError(f"nocrud: {exc}") from None
        for tag in sorted({tag for flow in flows for tag in _markers(flow)}):
            config.addinivalue_line("markers", f"{tag}: a nocrud flow tag (or kind)")
        found = config.stash[_FLOWS] = (loaded.flows.path.resolve(), flows)
    return found


class FlowFile(pytest.File):
    """One module of the flows package: its flows, in the order they are defined."""

    def collect(self) -> Iterator[pytest.Item]:
        _, flows = _flows(self.config)
        here = self.path.resolve()
        for flow in flows:
            origin = Path(flow.origin.rpartition(":")[0] or flow.origin)
            if origin.resolve() != here:
                continue
            item = pytest.Function.from_parent(self, name=flow.name, callobj=_flow_test(flow))
            for tag in _markers(flow):
                item.add_marker(tag)
            yield item


def _markers(flow: Any) -> list[str]:
    """A flow's markers: its tags, and ``crud`` for a declared CRUD flow (as ``up --crud``)."""
    return sorted({*flow.tags, *(["crud"] if flow.kind == "crud" else [])})


def _flow_test(flow: Any) -> Callable[..., None]:
    """The test function of one flow: run it as ``nocrud up`` would, then judge its result."""

    def run_flow(_nocrud_session: EnvironmentSession) -> None:
        __tracebackhide__ = True
        from nocrud.report.terminal import format_steps
        from nocrud.results import Status

        result = _nocrud_session.run_flow(flow)
        if result.status is Status.PASSED:
            return
        if result.status is Status.SKIPPED:
            pytest.skip(result.message)
        parts = [f"{flow.name}: {result.status.value}"]
        if result.steps:
            parts.append(format_steps(result.steps))
        parts += [result.message, result.output]
        if result.app_logs.strip():
            tail = "\n".join(result.app_logs.strip().splitlines()[-LOG_LINES:])
            parts.append(f"app log (last lines):\n{tail}")
        pytest.fail("\n".join(part for part in parts if part), pytrace=False)

    run_flow.__doc__ = flow.summary
    return run_flow
