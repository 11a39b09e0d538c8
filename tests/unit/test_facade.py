"""``nocrud`` is the flow author's facade: its names, loaded on use, and the examples use it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nocrud

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(set(nocrud.__all__) - {"__version__"}))
def test_each_public_name_is_the_object_of_the_module_behind_it(name: str) -> None:
    value = getattr(nocrud, name)
    home = importlib.import_module(nocrud._HOMES[name])
    assert value is getattr(home, name)
    assert name in dir(nocrud)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'flows_api'"):
        _ = nocrud.flows_api
    with pytest.raises(ImportError):
        exec("from nocrud import flows_api", {})


def test_importing_nocrud_loads_nothing_behind_the_facade() -> None:
    code = (
        "import sys, nocrud\n"
        "print(sorted(m for m in sys.modules if m.startswith('nocrud.')"
        " or m in ('importlib.metadata', 'requests', 'pydantic', 'docker')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "[]"


def python_sources() -> list[tuple[str, str]]:
    """The example flows, and the python blocks of README.md and docs/flows.md."""
    sources = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(REPO.glob("flows/*.py"))]
    for document in (REPO / "README.md", REPO / "docs" / "flows.md"):
        blocks = re.findall(r"^ *```python[^\n]*\n(.*?)^ *```", document.read_text(), re.M | re.S)
        sources += [(f"{document.name} block {n}", b) for n, b in enumerate(blocks, start=1)]
    return sources


def test_the_examples_import_only_from_the_facade() -> None:
    deep = [
        f"{where}: {line.strip()}"
        for where, source in python_sources()
        for line in source.splitlines()
        if re.match(r"\s*(from|import) nocrud\.", line)
    ]
    assert deep == []
