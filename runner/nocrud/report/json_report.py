"""The ``--json`` results file: one run's :class:`~nocrud.results.RunResult` as JSON.

The document is exactly :meth:`RunResult.to_dict`, written with sorted keys and a
two-space indent so two runs diff cleanly, and read back through
:meth:`RunResult.from_dict`, which checks the schema version. Dashboards and
``nocrud perf`` read runs through :func:`read_json`. Every text in it (messages,
tracebacks, output, app logs) is masked by :mod:`nocrud.masking` on the way out, as
the terminal and JUnit reports mask it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from nocrud.masking import mask_mapping
from nocrud.results import RunResult

__all__ = ["read_json", "write_json"]


def write_json(run: RunResult, path: Path) -> None:
    """Write ``run`` to ``path`` as JSON, creating parent directories.

    The file is replaced atomically, so a reader never sees half a document.

    Args:
        run: The run to write.
        path: Where to write it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # ASCII-only output: flow output and app logs may hold undecodable bytes
    # (lone surrogates), which escaped JSON still carries and reads back.
    # The document's own keys name no secret, so masking touches only the texts in it.
    text = json.dumps(mask_mapping(run.to_dict()), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; a report is read by CI's artifact upload, a
        # dashboard or another user, so it gets the mode any new file gets (the umask's).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """This process's umask, read without changing it (Linux), else set-and-restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_json(path: Path) -> RunResult:
    """Read a run written by :func:`write_json`.

    Args:
        path: A results file.

    Returns:
        The run it holds.

    Raises:
        OSError: The file cannot be read.
        ValueError: The file is not a nocrud results file, or one of a schema
            version this nocrud cannot read.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}): is it a nocrud --json file?") from exc
    if not isinstance(data, dict):
        # One exception type for every kind of bad file, so callers catch one.
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a JSON object, found {type(data).__name__}"
        )
    try:
        return RunResult.from_dict(data)
    except KeyError as exc:
        raise ValueError(f"{path}: not a nocrud results file: missing key {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
