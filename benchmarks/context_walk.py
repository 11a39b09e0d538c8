"""Benchmark: listing an app's build context that holds a big, ignored virtualenv.

Makes a context of a few source files beside ``venv/`` with ``--files`` files (the
case met in the wild: 18,000 files, venvs included) and ``.dockerignore`` listing
``venv/``, then lists the context N times each, alternately, two ways: walking every
file and filtering (as nocrud did before issue 21) and
:func:`nocrud.images.context.context_files`, which prunes ignored directories before
walking them. Prints the p50 and minimum of both in milliseconds and their ratio. No
Docker needed. Usage::

    v/bin/python benchmarks/context_walk.py --files 18000 -n 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from nocrud.images.context import context_files, dockerignore_patterns, ignored


def _make(root: Path, files: int) -> None:
    (root / "src").mkdir()
    for i in range(20):
        (root / "src" / f"m{i}.c").write_text(f"int f{i};\n")
    (root / ".dockerignore").write_text("venv/\n")
    for i in range(files):
        package = root / "venv" / "lib" / f"pkg{i // 100}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{i}.py").write_text("")


def _walk_all(root: Path) -> list[Path]:
    """Before: every file walked, then filtered."""
    patterns = dockerignore_patterns(root)
    return [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not ignored(PurePosixPath(p.relative_to(root).as_posix()), patterns)
    ]


def _pruned(root: Path) -> list[Path]:
    return list(context_files(root, dockerignore_patterns(root)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=18000, help="files in the ignored venv")
    parser.add_argument("-n", type=int, default=5, help="samples of each way")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make(root, args.files)
        ways: dict[str, Callable[[Path], list[Path]]] = {"walk all": _walk_all, "pruned": _pruned}
        found = {name: sorted(way(root)) for name, way in ways.items()}
        if found["walk all"] != found["pruned"]:
            raise SystemExit("the two ways list different files")
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.n):
            for name, way in ways.items():
                start = time.perf_counter()
                way(root)
                times[name].append((time.perf_counter() - start) * 1000)
    print(f"context: 21 files kept, {args.files} in an ignored venv/; {args.n} samples each")
    for name, samples in times.items():
        print(f"  {name:9} p50 {statistics.median(samples):9.1f} ms   min {min(samples):9.1f} ms")
    ratio = statistics.median(times["walk all"]) / statistics.median(times["pruned"])
    print(f"  walk all / pruned (p50): {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
