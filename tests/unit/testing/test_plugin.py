"""The pytest plugin's options and fixture wiring, with a fake provisioner at the seam.

Each test runs a real ``pytest`` subprocess (the installed ``nocrud`` entry point) on a
small project whose conftest replaces :meth:`EnvironmentSession._open`, the one place
the plugin reaches Docker, with a fake provisioner that writes what it was asked to a
JSON file. The fake's app is a real HTTP server on 127.0.0.1, so ``api`` and the failure
report's sections are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = """
import contextlib
import http.server
import json
import os
import threading
from dataclasses import dataclass

from nocrud.testing import session

EVENTS = os.path.join(os.path.dirname(__file__), "events.jsonl")


def note(**event):
    with open(EVENTS, "a") as handle:
        handle.write(json.dumps(event) + "\\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"error": "nope"}'
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@dataclass
class Address:
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "shop"
    user: str = "shop"
    password: str = "s3cret-password"

    def connect(self, timeout=5.0):
        raise RuntimeError("no database in this fake")


class Target:
    def __init__(self, url, name):
        self.base_url = url
        self.database = Address(dbname=f"db_{len(name)}")
        self.killed = False
        self.name = name

    def app_logs(self, tail=40):
        return "app booted\\nGET /missing 404 token=abc123"

    def casualties(self):
        return []

    def kill(self):
        self.killed = True

    def keep(self):
        note(event="keep", test=self.name)
        return "kept: " + self.base_url


class FakeProvisioner:
    def __init__(self, url):
        self.url = url

    @contextlib.contextmanager
    def acquire(self, name, *, fresh=False):
        note(event="acquire", test=name, fresh=fresh)
        yield Target(self.url, name)
        note(event="release", test=name)

    def kill_all(self):
        return 0

    def close(self):
        note(event="close")


def fake_open(self, config):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    note(
        event="open",
        strategy=config.run.strategy,
        parallel=config.run.parallel,
        keep_failed=self.settings.keep_failed,
        project=config.project,
    )
    return FakeProvisioner(f"http://127.0.0.1:{server.server_address[1]}")


session.EnvironmentSession._open = fake_open
"""

NOCRUD_YAML = """
project: shop
app:
  image: shop:1
database:
  name: shop
  user: shop
  password: shop
  migrate: ["true"]
flows:
  path: flows
"""


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOP_TOKEN": "abc123"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def events(directory: Path) -> list[dict[str, object]]:
    path = directory / "events.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "nocrud.yaml").write_text(NOCRUD_YAML)
    (tmp_path / "flows").mkdir()
    return tmp_path


def test_each_test_gets_its_own_environment_and_one_session_serves_them(project: Path) -> None:
    (project / "test_shop.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_one(nocrud_env, api):
                assert api.get("/health").status == 200
                assert nocrud_env.db_name == "db_%d" % len("test_shop.py::test_one")
                assert nocrud_env.db_url.startswith("postgresql://shop:s3cret-password@127.0.0.1")

            @pytest.mark.nocrud(fresh=True)
            def test_two(nocrud_env):
                assert nocrud_env.base_url.startswith("http://127.0.0.1:")

            def test_without_nocrud():
                pass
            """
        )
    )

    proc = run_pytest(project)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = events(project)
    assert [e["event"] for e in seen] == [
        "open", "acquire", "release", "acquire", "release", "close",
    ]  # fmt: skip
    assert [e.get("fresh") for e in seen if e["event"] == "acquire"] == [False, True]
    # One environment at a time per process: xdist's workers are the parallelism.
    assert (seen[0]["strategy"], seen[0]["parallel"], seen[0]["keep_failed"]) == ("image", 1, False)


def test_options_choose_the_config_strategy_and_keeping(project: Path) -> None:
    other = project / "elsewhere"
    (other / "flows").mkdir(parents=True)
    (other / "nocrud.yaml").write_text(NOCRUD_YAML.replace("project: shop", "project: other"))
    (project / "test_x.py").write_text("def test_x(nocrud_env):\n    pass\n")

    proc = run_pytest(
        project, "--nocrud-config", str(other), "--nocrud-strategy", "pool", "--nocrud-keep-failed"
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    opened = events(project)[0]
    assert (opened["project"], opened["strategy"], opened["keep_failed"]) == ("other", "pool", True)


def test_a_suite_that_asks_for_nothing_never_reads_a_config(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")

    proc = run_pytest(tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert events(tmp_path) == []


def test_a_bad_config_is_the_tests_error_with_the_key_and_no_traceback(project: Path) -> None:
    (project / "nocrud.yaml").write_text(NOCRUD_YAML.replace("project: shop", "project: Bad Name"))
    (project / "test_x.py").write_text("def test_x(nocrud_env):\n    pass\n")

    proc = run_pytest(project)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ERROR at setup of test_x" in proc.stdout
    assert "nocrud: " in proc.stdout and "project" in proc.stdout
    assert "Traceback" not in proc.stdout and "pydantic" not in proc.stdout
    assert events(project) == []


def test_a_failing_test_reports_its_requests_a_curl_line_and_the_app_log(project: Path) -> None:
    (project / "test_fail.py").write_text(
        textwrap.dedent(
            """
            import os

            def test_missing(api):
                api.session.headers["Authorization"] = "Bearer " + os.environ["SHOP_TOKEN"]
                api.get("/missing?page=2", expect=200)
            """
        )
    )

    proc = run_pytest(project, "--nocrud-keep-failed")

    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    for section in ("nocrud requests", "nocrud curl", "nocrud app log", "nocrud kept environment"):
        assert f" {section} " in out, out
    assert "GET /missing?page=2 -> 404" in out
    assert "curl -i -X GET \"$APP\"'/missing?page=2'" in out
    assert "APP=http://127.0.0.1:" in out
    assert "app booted" in out
    # The token is masked wherever the report shows it.
    assert "abc123" not in out
    # The client's own frames are hidden: the message says it all.
    assert "raise UnexpectedStatus" not in out
    assert [e["event"] for e in events(project)].count("keep") == 1


def test_the_collect_benchmark_shows_the_plugin_imports_nothing_heavy() -> None:
    """benchmarks/pytest_collect.py at reduced size: both timings, and no heavy import."""
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [
            sys.executable,
            str(repo / "benchmarks" / "pytest_collect.py"),
            "-n",
            "1",
            "--tests",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("with nocrud ") for line in lines), proc.stdout
    assert any(line.startswith("without (-p no:nocrud) ") for line in lines), proc.stdout
    assert any(line.startswith("with / without: ") for line in lines), proc.stdout
    assert "heavy packages imported because of nocrud: none" in lines, proc.stdout
    assert "nocrud modules imported: nocrud nocrud.testing nocrud.testing.plugin" in lines


RECORDED_SUITE = """
import os

def test_ok(api):
    assert api.get("/health").status == 200

def test_missing(api):
    api.session.headers["Authorization"] = "Bearer " + os.environ["SHOP_TOKEN"]
    api.get("/missing", expect=200)

def test_plain():
    pass
"""


def recorded_runs(project: Path) -> list[tuple[dict[str, object], list[dict[str, object]]]]:
    from nocrud.store import RunStore

    store = RunStore(f"sqlite:///{project / '.nocrud' / 'history.db'}")
    runs, _ = store.list_runs()
    return [(run, store.run_flows(str(run["id"]))) for run in runs]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_a_run_is_recorded_in_the_store_once_with_each_nocrud_test_as_a_flow(
    project: Path, workers: tuple[str, ...]
) -> None:
    (project / "test_rec.py").write_text(RECORDED_SUITE)

    proc = run_pytest(project, *workers)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    [(run, flows)] = recorded_runs(project)  # the xdist controller records, its workers do not
    assert (run["project"], run["status"], run["exit_code"]) == ("shop", "failed", 1)
    assert f"run {run['nocrud_run_id']} recorded" in proc.stdout
    by_name = {f["name"]: f for f in flows}
    # Only the tests that used the fixtures are flows, of kind pytest, each once.
    assert sorted(by_name) == ["test_rec.py::test_missing", "test_rec.py::test_ok"]
    assert {f["kind"] for f in flows} == {"pytest"}
    assert by_name["test_rec.py::test_ok"]["status"] == "passed"
    failed = by_name["test_rec.py::test_missing"]
    assert failed["status"] == "failed"
    assert "404" in str(failed["message"])
    assert "abc123" not in str(failed["message"])  # masked as everything the store keeps


def test_no_record_and_a_suite_without_fixtures_leave_the_store_alone(project: Path) -> None:
    (project / "test_rec.py").write_text(RECORDED_SUITE)
    (project / "test_plain.py").write_text("def test_plain():\n    pass\n")

    recorded = run_pytest(project, "--nocrud-no-record")
    plain = run_pytest(project, "test_plain.py")

    assert recorded.returncode == 1, recorded.stdout + recorded.stderr
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert not (project / ".nocrud" / "history.db").exists()


def test_the_api_fixture_sends_the_apps_configured_headers(project: Path) -> None:
    (project / "nocrud.yaml").write_text(
        NOCRUD_YAML.replace(
            "  image: shop:1\n",
            '  image: shop:1\n  headers:\n    Accept: "*/*"\n    X-Tenant: acme\n',
        )
    )
    (project / "test_h.py").write_text(
        textwrap.dedent(
            """
            def test_headers(api):
                assert api.session.headers["Accept"] == "*/*"
                assert api.session.headers["X-Tenant"] == "acme"
                assert api.get("/health").status == 200
            """
        )
    )
    proc = run_pytest(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nocrud_loads_as_plain_python_not_through_assertion_rewriting(tmp_path: Path) -> None:
    """pytest rewrites every module of a plugin's distribution; nocrud opts its own out."""
    (tmp_path / "test_loader.py").write_text(
        textwrap.dedent(
            """
            import sys

            def loader(name):
                return type(sys.modules[name].__loader__).__name__

            def test_loader(request):
                import nocrud.environment.preload_launcher
                print("LOADER", loader("nocrud.environment.preload_launcher"))
                assert loader(__name__) == "AssertionRewritingHook"  # tests still are
            """
        )
    )
    plain = run_pytest(tmp_path, "-s")
    blocked = run_pytest(tmp_path, "-s", "-p", "no:nocrud")  # the package stays marked

    assert plain.returncode == 0 and blocked.returncode == 0, plain.stdout + blocked.stdout
    assert "LOADER SourceFileLoader" in plain.stdout, plain.stdout
    assert "LOADER AssertionRewritingHook" in blocked.stdout, blocked.stdout
