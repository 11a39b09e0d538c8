"""Benchmark: the same flows on Docker and on Podman, side by side in one run.

For each strategy asked for, ``nocrud up`` runs the bundled example's flows (or those
``-k`` selects) on the Docker daemon (``DOCKER_HOST`` as set, or the default socket) and
then on a Podman API service this script starts on a socket of its own, alternating
engines round by round so both see the same machine load. Images are built into each
engine's store first (not timed). Prints each run's wall time, the median per engine
and strategy, and Podman's speed-up over Docker; removes its images and stops its
service at the end. Usage::

    v/bin/python benchmarks/engines.py --strategies image pool -j 4 --rounds 3
    v/bin/python benchmarks/engines.py -k isolation_01 --rounds 1   # reduced size
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import yaml

REPO = Path(__file__).resolve().parent.parent
NOCRUD = str(Path(sys.executable).parent / "nocrud")


@contextmanager
def podman_service(directory: Path) -> Iterator[str]:
    """A Podman API service on ``directory/podman.sock``; stopped on exit."""
    if shutil.which("podman") is None:
        raise SystemExit("podman is not installed (Debian: apt-get install podman)")
    url = f"unix://{directory / 'podman.sock'}"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (directory / "podman.sock").exists():
            if time.monotonic() > deadline or service.poll() is not None:
                raise SystemExit("the Podman service did not start")
            time.sleep(0.1)
        yield url
    finally:
        service.terminate()
        service.wait(timeout=15)


def write_config(directory: Path, project: str) -> None:
    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    data["flows"]["path"] = str(REPO / "flows")
    (directory / "nocrud.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def nocrud(directory: Path, host: str | None, *args: str, strategy: str = "image") -> float:
    """Run ``nocrud ARGS`` against ``host``; return its wall time. Fails loudly."""
    env = {**os.environ, "NO_COLOR": "1", "NOCRUD_STRATEGY": strategy}
    env.pop("DOCKER_HOST", None)
    if host:
        env["DOCKER_HOST"] = host
    started = time.monotonic()
    done = subprocess.run(
        [NOCRUD, *args], cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"nocrud {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return took


def remove_images(host: str | None, project: str) -> None:
    client = docker.DockerClient(base_url=host) if host else docker.from_env()
    try:
        for image in client.images.list():
            for tag in image.tags:
                if f"nocrud/{project}-" in tag:
                    client.images.remove(tag, force=True)
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=["image", "pool"])
    parser.add_argument("-j", "--parallel", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-k", dest="select", default="", help="only these flows (nocrud -k)")
    args = parser.parse_args()

    project = f"bench{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="nocrud-engines-"))
    write_config(work, project)
    docker_host = os.environ.get("DOCKER_HOST") or None
    up = ["up", "-j", str(args.parallel), "--no-record"]
    if args.select:
        up += ["-k", args.select]
    times: dict[tuple[str, str], list[float]] = {}
    try:
        with podman_service(work) as podman_host:
            engines = {"docker": docker_host, "podman": podman_host}
            for host in engines.values():
                nocrud(work, host, "build")
            for round_ in range(args.rounds):
                for strategy in args.strategies:
                    for name, host in engines.items():
                        took = nocrud(work, host, *up, strategy=strategy)
                        times.setdefault((name, strategy), []).append(took)
                        print(f"round {round_ + 1}  {strategy:8}  {name:6}  {took:6.1f} s")
            for host in engines.values():
                remove_images(host, project)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmedian wall time of `nocrud {' '.join(up)}`, {args.rounds} round(s):")
    for strategy in args.strategies:
        on_docker = statistics.median(times["docker", strategy])
        on_podman = statistics.median(times["podman", strategy])
        print(
            f"{strategy:8}  docker {on_docker:6.1f} s   podman {on_podman:6.1f} s   "
            f"podman/docker speed-up {on_docker / on_podman:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
