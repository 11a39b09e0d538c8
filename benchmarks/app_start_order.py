"""Benchmark: what starting the app before its database is ready was worth (issue 21 item 1).

Until issue 21 the ``image`` strategy started the app container right after the
database's, so the app's own connection retries overlapped PostgreSQL's start-up, and set
the environment's passwords afterwards: an app that connects once at start lost that
race. Now the app's container is created while PostgreSQL starts and started once the
roles have their passwords. This starts ``--samples`` pairs of the bundled example app
each way, alternately (so a busy machine slows both alike), one at a time, and prints
the p50 and minimum of the time until a pair is ready (database and app) and the
difference: what the overlap was worth per flow. The old order is re-enacted here, not
kept in nocrud. Needs Docker. Usage::

    v/bin/python benchmarks/app_start_order.py --samples 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from nocrud.docker import cleanup
from nocrud.docker.resources import DaemonGate
from nocrud.environment import Run
from nocrud.environment.bridge import SharedBridge
from nocrud.environment.pair import Pair
from nocrud.prepare import prepare_docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The benchmark beside this one:
from environments import project_config, quiet_build, remove_images


class OverlappedPair(Pair):
    """The order before issue 21: the app started before the passwords were set."""

    def start(self) -> None:
        network = self._join_network()
        self._db.network = network
        self._db.start()
        self._app.options["network_mode"] = f"container:{self._db.obj.id}"
        self._app.start()  # before the database is ready: the overlap
        super_start_rest(self)


def super_start_rest(pair: Pair) -> None:
    """What Pair.start does after starting the database, minus starting the app."""
    from nocrud.docker.postgres import PORT, DatabaseAddress

    db_host, db_port = pair._address(PORT)
    app_host, app_port = pair._address(pair.run.config.app.port)
    dbc = pair.run.config.database
    pair._database = DatabaseAddress(
        host=db_host, port=db_port, dbname=dbc.name, user=dbc.user, password=pair._password
    )
    pair._base_url = f"http://{app_host}:{app_port}"
    pair._wait_for_database()
    pair._wait_for_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--project", default=f"startorder{os.getpid()}")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"overlapped (before)": [], "after passwords (now)": []}
    with tempfile.TemporaryDirectory(prefix="nocrud-startorder-") as tmp:
        config, _package = project_config(Path(tmp), args.project, 1, 1, 0)
        engine = prepare_docker(config, Console(stderr=True, highlight=False))
        try:
            images = quiet_build(engine, config)
            run_id = cleanup.new_run_id()
            run = Run(config=config, run_id=run_id, engine=engine, images=images, say=print)
            labels = cleanup.run_labels(run_id, config.project, role="bench")
            gate = DaemonGate(2)
            bridge = SharedBridge(run, labels, gate)
            bridge.lease()
            numbers = iter(range(1, 10_000))
            kinds: dict[str, type[Pair]] = {
                "overlapped (before)": OverlappedPair,
                "after passwords (now)": Pair,
            }
            try:
                for i in range(args.samples):
                    order = list(kinds.items())
                    for label, kind in order if i % 2 == 0 else order[::-1]:
                        name = cleanup.object_name(run_id, next(numbers), "order")
                        pair = kind(run, name, labels, gate=gate, bridge=bridge)
                        started = time.perf_counter()
                        try:
                            pair.start()
                            times[label].append(time.perf_counter() - started)
                        finally:
                            pair.teardown()
            finally:
                bridge.release()
                bridge.close()
        finally:
            remove_images(engine, config.project)
            engine.close()
    print(f"pair start to ready, example app, {args.samples} samples each, alternating")
    for label, samples in times.items():
        print(f"  {label:22} p50 {statistics.median(samples):6.3f} s   min {min(samples):6.3f} s")
    before, now = (statistics.median(s) for s in times.values())
    lowest = min(times["after passwords (now)"]) - min(times["overlapped (before)"])
    print(
        f"  the overlap was worth {now - before:.3f} s per pair at p50 "
        f"({100 * (now - before) / before:+.0f}% to a pair's start without it), "
        f"{lowest:.3f} s at min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
