"""The ```python run blocks of docs/flows.md (and of README.md, once it has them) work.

Each block starts with a ``# flows/<module>.py`` comment naming the file it would live
in. The blocks are written into a ``flows`` package in a temporary directory, which is
then imported and discovered exactly as ``nocrud up`` does, so an example that no
longer imports, declares a CRUD flow wrongly or clashes with another example's name
fails here. tests/e2e/test_flows_e2e.py runs the same flows against example_app.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nocrud.flows import discover
from nocrud.flows.crud import CrudFlow

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "docs" / "flows.md", REPO / "README.md"]
_BLOCK = re.compile(r"^```python run\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADER = re.compile(r"# flows/(?P<path>[\w/]+\.py)\n")


def runnable_blocks(document: Path) -> list[tuple[str, str]]:
    """(path inside the flows package, source) of every runnable block."""
    blocks = []
    for number, match in enumerate(_BLOCK.finditer(document.read_text()), start=1):
        source = match.group(1)
        header = _HEADER.match(source)
        assert header, f"{document.name} block {number} does not start with '# flows/<module>.py'"
        blocks.append((header.group("path"), source))
    return blocks


def write_flows_package(directory: Path, blocks: list[tuple[str, str]]) -> Path:
    """The blocks as a ``flows`` package under ``directory``; returns the package."""
    package = directory / "flows"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Flows from the documentation."""\n')
    for path, source in blocks:
        target = package / path
        assert not target.exists(), f"two blocks claim flows/{path}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    return package


@pytest.fixture
def own_flows_modules() -> Iterator[None]:
    """Let this test import its own ``flows`` package; put the repository's back afterwards."""
    saved = {k: v for k, v in sys.modules.items() if k == "flows" or k.startswith("flows.")}
    for name in saved:
        del sys.modules[name]
    path = list(sys.path)
    yield
    for name in [k for k in sys.modules if k == "flows" or k.startswith("flows.")]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path[:] = path


def documents_with_examples() -> list[Path]:
    return [d for d in DOCUMENTS if d.is_file() and runnable_blocks(d)]


def test_the_flows_guide_has_runnable_examples() -> None:
    blocks = runnable_blocks(REPO / "docs" / "flows.md")
    assert len(blocks) >= 8
    assert any("crud(" in source for _, source in blocks)
    assert any("params=" in source for _, source in blocks)


@pytest.mark.parametrize("document", documents_with_examples(), ids=lambda d: d.name)
def test_examples_import_and_are_discovered(
    document: Path, tmp_path: Path, own_flows_modules: None
) -> None:
    blocks = runnable_blocks(document)
    package = write_flows_package(tmp_path, blocks)
    flows = {f.name: f for f in discover(package)}
    declared = sum(src.count("@flow") + src.count(" = crud(") for _, src in blocks)
    assert len(flows) >= declared, sorted(flows)
    for name, found in flows.items():
        assert found.summary, f"{name} has no docstring line for `nocrud list`"
        assert str(package) in found.origin
    crud_flows = [f for f in flows.values() if f.kind == "crud"]
    assert crud_flows and all(isinstance(f.func, CrudFlow) for f in crud_flows)
    if document.name == "flows.md":
        builders = sys.modules["flows.builders"]
        assert callable(builders.build_site)


@pytest.mark.parametrize(
    ("path", "source"),
    [block for document in documents_with_examples() for block in runnable_blocks(document)],
    ids=lambda value: value if value.endswith(".py") else "",
)
def test_each_example_compiles(path: str, source: str) -> None:
    compile(source, f"flows/{path}", "exec")
