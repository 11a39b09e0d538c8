"""What a set of changed files means for ``nocrud watch``: rerun flows, rebuild, or nothing.

:class:`Watched` is the part of a project ``watch`` follows, read from the config once:
the flows package, the app's build context (with its ``.dockerignore``, judged as the
app image's content hash judges it: :mod:`nocrud.images.context`), the Dockerfile, the
files ``app.add_to_context`` brings, and what the database image is built from
(``database.migrations``, ``seed_sql``, ``dump``). :func:`classify` turns one batch of
changed paths into a :class:`Plan`. Both are pure (paths in, a value out), so every rule
is unit-tested without Docker or a watcher.

The rules, first match wins for each path:

1. a file of the database image's inputs: rebuild the database image (and recycle pairs);
2. a ``.py`` file in the flows package: rerun the flows defined in it, once the package
   is imported again (:func:`to_rerun`); a module that defines no flow (a helper,
   ``__init__``) reruns the whole selection;
3. a file of the app's build context that the build would send (not ignored by
   ``.dockerignore``, not ``.nocrud/``, ``__pycache__`` or ``.git``), the Dockerfile, an
   ``add_to_context`` file: rebuild the app image (Docker's layer cache) and recycle pairs;
4. anything else (an ignored file, an editor's swap file, bytecode): nothing.

The flows package wins over the build context when one holds the other: a flow edit
must not cost an image build.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nocrud.images.context import STATE_DIR, dockerignore_patterns, ignored

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.flows import Flow

__all__ = ["Plan", "Watched", "classify", "origin_file", "to_rerun"]

#: Path parts that never count: bytecode, VCS metadata, nocrud's own state.
_NEVER = frozenset({"__pycache__", ".git", STATE_DIR})


@dataclass(frozen=True)
class Watched:
    """The paths ``watch`` follows and what each kind of change there means.

    Attributes:
        flows: The flows package directory.
        build: The app's build context (None: the app runs a given ``app.image``).
        ignore: The build context's ``.dockerignore`` patterns.
        app_files: Files outside the build context that the app image is built from
            (a Dockerfile that lives elsewhere, ``app.add_to_context`` sources).
        database: Files and directories the database image is built from.
    """

    flows: Path
    build: Path | None = None
    ignore: tuple[str, ...] = ()
    app_files: tuple[Path, ...] = ()
    database: tuple[Path, ...] = ()

    @classmethod
    def of(cls, config: Config) -> Watched:
        """What ``config``'s project is built and tested from."""
        build = config.app.build
        app_files: list[Path] = []
        if build is not None:
            app_files.append(config.app.dockerfile)
            app_files.extend(config.app.add_to_context.values())
        database = [*config.database.migrations]
        database.extend(p for p in (config.database.seed_sql, config.database.dump) if p)
        return cls(
            flows=config.flows.path.resolve(),
            build=build.resolve() if build is not None else None,
            ignore=tuple(dockerignore_patterns(build)) if build is not None else (),
            app_files=tuple(p.resolve() for p in app_files),
            database=tuple(p.resolve() for p in database),
        )

    def roots(self) -> list[Path]:
        """The directories and files to hand the watcher (none inside another)."""
        candidates = [self.flows, *self.database, *self.app_files]
        if self.build is not None:
            candidates.append(self.build)
        roots: list[Path] = []
        for path in sorted(set(candidates), key=lambda p: (len(p.parts), str(p))):
            if not any(path.is_relative_to(root) for root in roots):
                roots.append(path)
        return roots


@dataclass(frozen=True)
class Plan:
    """What one batch of changes asks for.

    Attributes:
        flow_files: Modules of the flows package that changed (see :func:`to_rerun`).
        app: Rebuild the app image (then the database image, whose key has the app's id).
        database: Rebuild the database image.
        reasons: One short line per path that counted, for the screen.
    """

    flow_files: frozenset[Path] = frozenset()
    app: bool = False
    database: bool = False
    reasons: tuple[str, ...] = field(default=())

    @property
    def rebuild(self) -> bool:
        """An image must be rebuilt and the pairs recycled."""
        return self.app or self.database

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.flow_files or self.rebuild)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def classify(changed: Iterable[Path], watched: Watched) -> Plan:
    """What the changed paths mean (see the module's rules).

    Args:
        changed: Paths the watcher reported (added, modified or deleted).
        watched: What the project is built and tested from.
    """
    files: set[Path] = set()
    app = database = False
    reasons: list[str] = []
    for raw in sorted(set(changed)):
        path = raw.resolve()
        if _NEVER & set(path.parts):
            continue
        if any(_inside(path, item) for item in watched.database):
            database = True
            reasons.append(f"{path.name}: database image")
        elif _inside(path, watched.flows):
            if path.suffix == ".py":
                files.add(path)
                reasons.append(f"{path.name}: flows")
        elif path in watched.app_files or (
            watched.build is not None and _sent_to_build(path, watched.build, watched.ignore)
        ):
            app = True
            reasons.append(f"{path.name}: app image")
    return Plan(flow_files=frozenset(files), app=app, database=database, reasons=tuple(reasons))


def origin_file(flow: Flow) -> Path | None:
    """The file that defines ``flow`` (from its ``path:line`` origin), or None."""
    where, sep, line = flow.origin.rpartition(":")
    if not sep or not line.isdigit() or not where:
        return None
    return Path(where).resolve()


def to_rerun(plan: Plan, selected: Sequence[Flow], discovered: Sequence[Flow]) -> list[Flow]:
    """The flows of ``selected`` that ``plan`` reruns (both lists found after the change).

    A rebuild reruns every selected flow; a changed flow file, the selected flows it
    defines now (a deleted file's flows are gone, and so is their rerun); a changed module
    of the package that defines no flow at all (a helper, ``__init__.py``), every selected
    flow, since which flows use it is not known.
    """
    if plan.rebuild:
        return list(selected)
    defining = {origin_file(flow) for flow in discovered}
    if any(path.exists() and path not in defining for path in plan.flow_files):
        return list(selected)
    return [flow for flow in selected if origin_file(flow) in plan.flow_files]


def _sent_to_build(path: Path, build: Path, patterns: tuple[str, ...]) -> bool:
    """``path`` is a file of the build context that ``docker build`` would be sent."""
    if not path.is_relative_to(build) or path == build:
        return False
    rel = PurePosixPath(path.relative_to(build).as_posix())
    if rel.name == ".dockerignore":
        return True  # it decides what is sent: the image's content hash reads it
    return not ignored(rel, list(patterns))
