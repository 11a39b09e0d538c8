"""Benchmark: benchmarks/environments.py on a Docker daemon whose storage driver is overlay2.

The development machines' daemon stores images on fuse-overlayfs: every file a container
reads passes through a process of its own, which makes each container cost more CPU
than on most Docker hosts, whose driver is overlay2 (in the kernel). This starts a
Docker-in-Docker daemon with overlay2 (its /var/lib/docker on a volume, as
docs/ci/dind.md starts one; it shares this machine's cores), copies the project's images
into it, and runs the environments benchmark with the given arguments in that daemon's
network namespace (``nsenter -n``), where the ports its containers publish on 127.0.0.1
are. The daemon CPU it reports is the nested daemon's. Everything it started is removed
at the end. Usage::

    v/bin/python benchmarks/overlay2.py -- --parallel 4 --warm 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from nocrud.docker.reaper import REAPER_IMAGE
from nocrud.docker.resources import image_id
from nocrud.prepare import prepare_docker
from nocrud.worker.images import export_images, import_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environments import project_config, quiet_build, remove_images  # the benchmark beside
from workers import build_dind_image, start_dind  # its DinD daemon


def nested_dockerd(container: object) -> int:
    """The host pid of the DinD container's dockerd."""
    top = container.top()  # type: ignore[attr-defined]
    pid, command = top["Titles"].index("PID"), top["Titles"].index("CMD")
    for process in top["Processes"]:
        if process[command].split()[0].endswith("dockerd"):
            return int(process[pid])
    raise RuntimeError(f"no dockerd in the DinD container: {top['Processes']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", default=f"overlay{os.getpid()}", help="project name of the images built"
    )
    parser.add_argument(
        "environments", nargs="*", help="arguments of benchmarks/environments.py (after --)"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True, highlight=False)
    labels = {"nocrud.e2e": args.project}
    with (
        tempfile.TemporaryDirectory(prefix="nocrud-overlay2-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        config, _package = project_config(Path(tmp), args.project, 0, 1, 0)
        engine = prepare_docker(config, console)
        stack.callback(engine.close)
        stack.callback(remove_images, engine, args.project)
        client = engine.client
        if build_dind_image(client):
            console.print("built the DinD image")
        images = quiet_build(engine, config)
        refs = [images.app, images.db, config.database.image]
        if image_id(client, REAPER_IMAGE):
            refs.append(REAPER_IMAGE)
        archive = Path(tmp) / "images.tar"
        export_images(client, refs, archive)
        name = f"nocrud-overlay2-{args.project}"
        network = client.networks.create(name, labels=labels)
        stack.callback(network.remove)
        container, _port, nested = start_dind(client, stack, name, labels, network.name)
        driver = nested.info().get("Driver")
        import_images(nested, archive)
        console.print(f"DinD daemon ready, storage driver {driver}, {len(refs)} images loaded")
        command = [
            "nsenter", "-t", str(container.attrs["State"]["Pid"]), "-n", "--",
            sys.executable, str(Path(__file__).resolve().parent / "environments.py"),
            *args.environments,
            "--project", args.project, "--keep-images",
            "--dockerd-pid", str(nested_dockerd(container)),
        ]  # fmt: skip
        env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:2375"}
        proc = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
        sys.stderr.write(proc.stderr)
        print(f"on a Docker-in-Docker daemon, storage driver {driver}, sharing this host's cores")
        sys.stdout.write(proc.stdout)
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
