"""Faults in one flow's environment on the real daemon: containers dying, apps never ready.

These drive :class:`~nocrud.execute.FlowExecutor` directly (the scheduler's
``run_one``) on images built once for this module, so each fault costs one
environment. The flows break their own environment through the Docker SDK, the
way a crashing app or an OOM-killed database would, and every test checks that
the result says what happened, carries the evidence, and that nothing labelled
with the session's project is left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nocrud.config import Config, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, detect_connection
from nocrud.environment import Run
from nocrud.environment.image import ImageProvisioner
from nocrud.execute import FlowExecutor
from nocrud.flows import Flow, FlowContext
from nocrud.images import BuiltImages, build_images
from nocrud.results import FlowResult, Status

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built(docker_client: Any, example_config: Path) -> tuple[Config, BuiltImages]:
    """The example app's images under this session's project (built once per session)."""
    config = load_config(example_config, env={})
    images = build_images(
        docker_client,
        config,
        say=lambda _line: None,
        run_id=cleanup.new_run_id(),
        connection=detect_connection(docker_client),
    )
    return config, images


def _own(harness: Any, flow: str, role: str) -> Any:
    """The one running container of ``role`` in the environment of ``flow``."""
    labels = [
        f"{cleanup.LABEL_PROJECT}={harness.project}",
        f"{cleanup.LABEL_FLOW}={flow}",
        f"{cleanup.LABEL_ROLE}={role}",
    ]
    found = harness.client.containers.list(filters={"label": labels})
    assert len(found) == 1, f"expected one {role} container for {flow}, found {found}"
    return found[0]


def _run(
    config: Config,
    images: BuiltImages,
    client: Any,
    name: str,
    func: Callable[[FlowContext], None],
    *,
    flow_timeout: float = 60,
) -> FlowResult:
    provisioner = ImageProvisioner()
    provisioner.prepare(
        Run(
            config=config,
            run_id=cleanup.new_run_id(),
            engine=Engine(client, detect_connection(client)),
            images=images,
            say=lambda _line: None,
        )
    )
    executor = FlowExecutor(provisioner, flow_timeout=flow_timeout)
    return executor(Flow(name=name, func=func), 0)


def test_database_killed_mid_flow_is_an_error_naming_the_dead_container(
    built: tuple[Config, BuiltImages], harness: Any
) -> None:
    config, images = built

    def db_dies(ctx: FlowContext) -> None:
        ctx.api.get("/api/sites")
        _own(harness, "db_dies", "db").kill()
        ctx.api.get("/api/sites")

    result = _run(config, images, harness.client, "db_dies", db_dies)

    assert result.status is Status.ERROR, result
    cause, _, symptom = result.message.partition("\nthe flow saw: ")
    assert cause == "the database container exited with code 137 during the flow"
    # The app lives in the database container's network namespace: the database's death
    # takes the app's network with it, so the flow sees the app vanish, not a 503.
    assert "could not reach the app" in symptom
    assert "GET /api/sites" in result.app_logs
    assert harness.leftovers() == []


def test_app_crashing_mid_flow_is_an_error_with_the_connection_failure_and_app_logs(
    built: tuple[Config, BuiltImages], harness: Any
) -> None:
    config, images = built

    def app_dies(ctx: FlowContext) -> None:
        ctx.api.get("/api/sites")
        _own(harness, "app_dies", "app").kill()
        ctx.api.get("/api/sites")

    result = _run(config, images, harness.client, "app_dies", app_dies)

    assert result.status is Status.ERROR, result
    assert "could not reach the app" in result.message
    assert "GET /api/sites" in result.app_logs  # the log of the app that died, kept
    assert harness.leftovers() == []


NEVER_HEALTHY = """
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"warming up forever")

print("listening, but never healthy", file=sys.stderr, flush=True)
http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def test_app_never_healthy_is_an_error_after_the_readiness_timeout_with_its_logs(
    built: tuple[Config, BuiltImages], harness: Any
) -> None:
    config, images = built
    stubborn = config.model_copy(
        update={
            "app": config.app.model_copy(update={"command": ("python3", "-c", NEVER_HEALTHY)}),
            "timeouts": config.timeouts.model_copy(update={"app_ready": 3.0}),
        }
    )
    ran: list[str] = []

    def never_runs(ctx: FlowContext) -> None:
        ran.append(ctx.name)

    started = time.monotonic()
    result = _run(stubborn, images, harness.client, "never_healthy", never_runs)
    elapsed = time.monotonic() - started

    assert result.status is Status.ERROR, result
    assert "app not ready after 3s" in result.message
    assert "HTTP 503" in result.message
    assert "raise timeouts.app_ready" in result.message
    # The app's own start-up output, not crowded out by our readiness polls ...
    assert "listening, but never healthy" in result.message
    assert '"GET /health HTTP/1.1" 503' not in result.message
    # ... which stay in the full app log of the result.
    assert '"GET /health HTTP/1.1" 503' in result.app_logs
    assert ran == []
    assert elapsed < 20, f"readiness timeout of 3 s took {elapsed:.1f} s to report"
    assert harness.leftovers() == []
