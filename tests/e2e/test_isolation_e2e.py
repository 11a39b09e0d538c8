"""One flow's containers cannot reach another flow's app or database (the improved image path).

Two environments are up at once, as two flows at -j 2 have them; from inside the first
one's app container (which shares its database container's network namespace) the
test tries to open TCP connections to the second one's database and app: on their
addresses on the shared bridge, and on their published ports through the bridge's
gateway. Every attempt must fail, while the app's own database on 127.0.0.1 answers
(so a failure is the isolation, not a broken probe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nocrud.config import load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, detect_connection
from nocrud.docker.postgres import PORT
from nocrud.environment import Run
from nocrud.environment.image import ImageProvisioner
from nocrud.images import build_images

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

PROBE = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=2).close()
except OSError as exc:
    print(f"refused: {exc}")
    sys.exit(1)
print("connected")
"""


def _probe(container: Any, host: str, port: int) -> bool:
    result = container.exec_run(["python3", "-c", PROBE, host, str(port)])
    return bool(result.exit_code == 0)


def test_a_flows_app_cannot_reach_another_flows_app_or_database(
    docker_client: Any, example_config: Path
) -> None:
    config = load_config(example_config, env={})
    connection = detect_connection(docker_client)
    if not connection.uses_published_ports:
        pytest.skip("container-network mode gives every pair its own network (as before)")
    images = build_images(
        docker_client,
        config,
        say=lambda _line: None,
        run_id=cleanup.new_run_id(),
        connection=connection,
    )
    run_id = cleanup.new_run_id()
    provisioner = ImageProvisioner()
    provisioner.prepare(
        Run(
            config=config,
            run_id=run_id,
            engine=Engine(docker_client, connection),
            images=images,
            say=lambda _line: None,
        )
    )
    try:
        with provisioner.acquire("one") as one, provisioner.acquire("two") as two:
            app_one = docker_client.containers.get(f"{one.name}-app")
            db_two = docker_client.containers.get(f"{two.name}-db")
            networks = db_two.attrs["NetworkSettings"]["Networks"]
            (bridge,) = networks  # the shared bridge, nothing else
            ip_two, gateway = networks[bridge]["IPAddress"], networks[bridge]["Gateway"]
            bridge_options = docker_client.networks.get(bridge).attrs["Options"]
            assert bridge_options.get("com.docker.network.bridge.enable_icc") == "false"

            assert _probe(app_one, "127.0.0.1", PORT), "the probe cannot reach its own database"
            app_port = config.app.port
            for host, port in [
                (ip_two, PORT),  # the other flow's database
                (ip_two, app_port),  # the other flow's app (in that database's namespace)
                (gateway, two.database.port),  # its published ports, via the host side
                (gateway, int(two.base_url.rsplit(":", 1)[1])),
            ]:
                assert not _probe(app_one, host, port), f"flow one reached {host}:{port}"
    finally:
        provisioner.close()
    label = f"nocrud.run={run_id}"
    assert docker_client.api.containers(all=True, filters={"label": label}) == []
    assert docker_client.api.networks(filters={"label": label}) == []
