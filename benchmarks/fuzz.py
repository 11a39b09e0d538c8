"""Benchmark: `nocrud fuzz` (pool, -j N, every failure replayed) against Schemathesis run the
usual way (every case on one shared app and database), side by side in one run.

Both sides draw the same cases from the same seed with the same Schemathesis engine
(:mod:`nocrud.fuzz.engine`) and run the same checks; only where the cases run differs.
The shared side sends every batch, on N threads, to one app and one database that live
for the whole run (as ``schemathesis run URL`` does against a staging server), and
reports what failed there. Each of its failures is then looked up in nocrud's verdicts:
a failure that a clean database does not reproduce (not found by nocrud, or found and not
reproduced) is false or flaky. Printed: wall time, requests, examples/s and failures for
each side. Usage::

    v/bin/python benchmarks/fuzz.py --seed 1 -j 4 --max-examples 10 --sequences 10

(``--example`` defaults to examples/django with its admin user; ``--project`` names the
copy's images, removed at the end unless ``--keep-images``.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NOCRUD = str(Path(sys.executable).parent / "nocrud")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=REPO / "examples" / "django")
    parser.add_argument("--project", default="fuzzbench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-j", "--parallel", type=int, default=4)
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--auth", default="admin:admin-password", help="'' for none")
    parser.add_argument("--login-path", default="/api/auth/token/")
    parser.add_argument("-o", "--operation", action="append", default=[])
    parser.add_argument("--keep-images", action="store_true")
    return parser.parse_args(argv)


def copy_example(args: argparse.Namespace, root: Path) -> Path:
    target = root / "app"
    shutil.copytree(args.example, target, ignore=shutil.ignore_patterns(".nocrud", "__pycache__"))
    config = target / "nocrud.yaml"
    data = yaml.safe_load(config.read_text())
    data["project"] = args.project
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def fuzz_options(args: argparse.Namespace) -> list[str]:
    options = ["--seed", str(args.seed), "--max-examples", str(args.max_examples)]
    options += ["--sequences", str(args.sequences)]
    if args.auth:
        options += ["--auth", args.auth, "--login-path", args.login_path]
    for operation in args.operation:
        options += ["-o", operation]
    return options


def run_nocrud(args: argparse.Namespace, app: Path) -> dict[str, Any]:
    """`nocrud fuzz` under pool at -j N; its JSON report and wall time."""
    report = app / "nocrud-fuzz.json"
    # Images first, untimed: the shared side starts from built images too.
    subprocess.run([NOCRUD, "build"], cwd=app, capture_output=True, check=True, timeout=1800)
    started = time.monotonic()
    proc = subprocess.run(
        [
            NOCRUD,
            "fuzz",
            "-j",
            str(args.parallel),
            "--strategy",
            "pool",
            "--no-record",
            *fuzz_options(args),
            "--json",
            str(report),
        ],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1) or not report.is_file():
        raise SystemExit(f"nocrud fuzz failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(report.read_text())
    data["wall"] = wall
    return data


def run_shared(args: argparse.Namespace, app: Path) -> dict[str, Any]:
    """The same cases on one app and one database for the whole run, on N threads."""
    from rich.console import Console

    from nocrud import prepare
    from nocrud.analysis.coverage import capture_openapi, load_openapi
    from nocrud.config import load_config
    from nocrud.fuzz.engine import Target, load_schema
    from nocrud.fuzz.plan import DEFAULT_CHECKS, FuzzOptions, plan_units
    from nocrud.http.client import ApiClient
    from nocrud.http.logins import bearer_login

    config = load_config(app / "nocrud.yaml", overrides={"run.strategy": "image"})
    console = Console(stderr=True)
    with (
        prepare.environments(config, console, say=console.print) as prepared,
        prepared.provisioner.acquire("shared") as target,
    ):
        with tempfile.TemporaryDirectory() as scratch:
            capture_openapi(target.base_url, Path(scratch), config.app.openapi)
            document = load_openapi(Path(scratch) / "openapi.json")
        options = FuzzOptions(
            seed=args.seed,
            max_examples=args.max_examples,
            sequences=args.sequences,
            operations=args.operation,
        )
        schema = load_schema(document, options.operations, DEFAULT_CHECKS)
        fixed = {"Authorization": "set-by-nocrud-login"} if args.auth else None
        draws = schema.draw(options.max_examples, options.seed, negative=True, fixed=fixed)
        units = plan_units({k: len(v) for k, v in draws.items()}, options)
        user, _, password = args.auth.partition(":")

        def one(unit: Any) -> tuple[int, list[Any]]:
            with ApiClient(target.base_url) as client:
                if args.auth:
                    bearer_login(client, args.login_path, username=user, password=password)
                shared = Target(target.base_url, client.session, client.auth)
                if unit.kind == "stateless":
                    cases = [draws[(unit.operation, unit.mode)][i] for i in unit.cases]
                    outcome = schema.run_stateless(unit, cases, shared)
                else:
                    outcome = schema.run_stateful(unit, shared, steps=options.steps)
            return len(outcome.exchanges), outcome.findings

        started = time.monotonic()
        with ThreadPoolExecutor(args.parallel) as pool:
            done = list(pool.map(one, units))
        wall = time.monotonic() - started
    keys = sorted({(f.operation, f.check) for _, found in done for f in found})
    return {"wall": wall, "examples": sum(n for n, _ in done), "failures": keys}


def table(nocrud: dict[str, Any], shared: dict[str, Any], args: argparse.Namespace) -> str:
    cases = nocrud["test_cases"]
    verdicts = {
        (c["operation"], c["check"]): c["finding"]["verdict"] for c in cases if c["finding"]
    }
    confirmed = {k for k, v in verdicts.items() if v in ("reproducible", "order-dependent")}
    shared_keys = {tuple(k) for k in shared["failures"]}
    false_or_flaky = sorted(shared_keys - confirmed)
    rows = [
        ("", "wall s", "requests", "examples/s", "failures", "confirmed", "false/flaky"),
        (
            f"nocrud fuzz, pool -j {args.parallel}",
            f"{nocrud['wall']:.1f}",
            str(nocrud["examples"]),
            f"{nocrud['examples'] / nocrud['wall']:.1f}",
            str(len(verdicts)),
            str(len(confirmed)),
            str(len(verdicts) - len(confirmed)) + " (reported as not reproduced)",
        ),
        (
            f"shared app+DB, -j {args.parallel}",
            f"{shared['wall']:.1f}",
            str(shared["examples"]),
            f"{shared['examples'] / shared['wall']:.1f}",
            str(len(shared_keys)),
            str(len(shared_keys & confirmed)),
            str(len(false_or_flaky)),
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    order = sum(1 for v in verdicts.values() if v == "order-dependent")
    lines.append(
        f"nocrud: {order} of its failures are order-dependent (sequence shown); "
        "wall time includes the replays, requests count exploration only"
    )
    lines.extend(f"shared only (false or flaky): {op}: {check}" for op, check in false_or_flaky)
    lines.extend(
        f"nocrud only (the shared run missed it): {op}: {check}"
        for op, check in sorted(confirmed - shared_keys)
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="nocrud-fuzzbench-") as scratch:
        app = copy_example(args, Path(scratch))
        try:
            nocrud = run_nocrud(args, app)
            shared = run_shared(args, app)
        finally:
            if not args.keep_images:
                subprocess.run(
                    [NOCRUD, "clean", "--all", "--images"],
                    cwd=app,
                    capture_output=True,
                    check=False,
                    timeout=600,
                )
        print(
            f"seed {args.seed}, {args.max_examples} examples per operation and mode, "
            f"{args.sequences} sequences, {args.example.name}"
        )
        print(table(nocrud, shared, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
