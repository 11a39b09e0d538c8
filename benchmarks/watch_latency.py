"""Benchmark: from saving a flow file to ``nocrud watch`` printing its result, with warm pairs.

Starts ``nocrud watch`` (pool strategy, ``-j 1``) on the bundled example app with a
flows package of its own (one file, one flow that makes two requests), waits for the
first run's summary line (the pair is then warm), then saves the flow file N times, a
few seconds apart as a developer would (so each pair's reset in the background is
done), and times each save until the ``watch:`` summary line of its rerun. Every
other save makes the flow fail, so failed reruns (which replace the pair in the
background) are timed too. Ends with SIGINT: the watch must exit 130 and leave no
container or network of its project. Prints every latency, the p50 and the target
(under 1 s). Usage::

    v/bin/python benchmarks/watch_latency.py -n 7
    v/bin/python benchmarks/watch_latency.py -n 3 --gap 3     # the e2e test's reduced size
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.0
SUMMARY = "watch:"

FLOW = '''from nocrud import flow


@flow
def probe(ctx):
    """Health answers, a site can be made (edit {n})."""
    ctx.api.get("/health").expect(200)
    assert {n} % 2 == 0, "edit {n} fails on purpose"
'''


def nocrud_command() -> list[str]:
    """The installed console script next to this interpreter, run by this interpreter."""
    script = Path(sys.executable).parent / "nocrud"
    if not script.is_file():
        sys.exit(f"no nocrud console script at {script}: install the package (pip install -e .)")
    return [sys.executable, str(script)]


def project_in(workdir: Path, project: str) -> Path:
    """A nocrud.yaml for example_app with a one-file flows package, in ``workdir``."""
    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    flows = workdir / "watchflows"
    flows.mkdir()
    (flows / "__init__.py").write_text("")
    (flows / "probe.py").write_text(FLOW.format(n=0))
    data["flows"]["path"] = str(flows)
    config = workdir / "nocrud.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def follow(stream: IO[str], lines: queue.Queue[tuple[float, str]], log: list[str]) -> None:
    for line in stream:
        log.append(line)
        lines.put((time.monotonic(), line))


def wait_for_summary(lines: queue.Queue[tuple[float, str]], timeout: float) -> tuple[float, str]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {SUMMARY!r} line within {timeout:.0f} s")
        stamp, line = lines.get(timeout=left)
        if line.startswith(SUMMARY):
            return stamp, line.rstrip()


def leftovers(project: str, pid: int) -> list[str]:
    """The project's containers and networks that process ``pid`` owns (``nocrud.owner``).

    By owner, not by project alone: other runs of the same project may be going on.
    """
    label = f"label=nocrud.project={project}"
    owner = '{{.ID}} {{.Label "nocrud.owner"}}'
    found = []
    for kind, listing in (("container", ["ps", "-a"]), ("network", ["network", "ls"])):
        listed = subprocess.run(
            ["docker", *listing, "-f", label, "--format", owner],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        found += [f"{kind} {line.split()[0]}" for line in listed if f":{pid}:" in line]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--edits", type=int, default=7, help="Saves timed (default 7).")
    parser.add_argument(
        "--gap", type=float, default=4.0, help="Seconds between a result and the next save."
    )
    parser.add_argument("--timeout", type=float, default=300, help="Seconds to wait per step.")
    parser.add_argument(
        "--project",
        default="example",
        help="Project name (default: the bundled example's, so its images are reused).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Print the watch's output.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nocrud-watch-bench-") as scratch:
        workdir = Path(scratch)
        config = project_in(workdir, args.project)
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        env.pop("NOCRUD_CONFIG", None)
        proc = subprocess.Popen(
            [*nocrud_command(), "-c", str(config), "watch", "-j", "1"],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[tuple[float, str]] = queue.Queue()
        log: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=follow, args=(proc.stdout, lines, log), daemon=True).start()
        latencies: list[tuple[float, str]] = []
        try:
            _, first = wait_for_summary(lines, args.timeout)
            print(f"first run: {first}", flush=True)
            for n in range(1, args.edits + 1):
                time.sleep(args.gap)
                saved = time.monotonic()
                (workdir / "watchflows" / "probe.py").write_text(FLOW.format(n=n))
                stamp, line = wait_for_summary(lines, args.timeout)
                latencies.append((stamp - saved, line))
                print(f"save {n}: {stamp - saved:.3f} s  {line}", flush=True)
        except (TimeoutError, queue.Empty):
            proc.kill()
            sys.exit("".join(log[-60:]) + "\nthe watch stopped answering")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        left = leftovers(args.project, proc.pid)
        if args.verbose:
            print("".join(log))
        passed = [s for s, line in latencies if "failed" not in line]
        failed = [s for s, line in latencies if "failed" in line]
        print()
        print(f"{'':<28}{'p50':>8}{'min':>8}{'max':>8}")
        for name, values in (("save to result, all", [s for s, _ in latencies]),
                             ("  reruns that passed", passed),
                             ("  reruns that failed", failed)):  # fmt: skip
            if values:
                print(
                    f"{name:<28}{statistics.median(values):>7.3f}s{min(values):>7.3f}s"
                    f"{max(values):>7.3f}s"
                )
        p50 = statistics.median(s for s, _ in latencies)
        verdict = "met" if p50 < TARGET else "NOT met"
        print(
            f"target: under {TARGET:.1f} s from save to result with warm pairs: {verdict} "
            f"(p50 {p50:.3f} s of {len(latencies)} saves)"
        )
        print(f"exit code after SIGINT: {code}; left behind: {left or 'nothing'}")
        if code != 130 or left:
            sys.exit(1)


if __name__ == "__main__":
    main()
