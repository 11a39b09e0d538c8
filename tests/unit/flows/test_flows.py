"""Discovery and selection of flows: packages written to tmp dirs, imported for real.

Each test writes a flows package under its own unique name, so imports from one
test never leak into another through ``sys.modules``.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nocrud.flows import (
    Flow,
    FlowDiscoveryError,
    SelectionError,
    discover,
    flow,
    param,
    select,
)


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Any]:
    """Write modules into a fresh flows package: ``package({"a.py": source})``."""
    name = f"flows_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")

    def write(modules: dict[str, str]) -> Path:
        for filename, source in modules.items():
            target = root / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source))
        return root

    yield write
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


MIXED = """
    from nocrud.flows.crud import crud
    from nocrud.flows import flow

    @flow(tags=["smoke"])
    def health(ctx):
        '''The app answers.

        More text.
        '''

    site_crud = crud("site_crud", "/api/sites", create={"name": "x"}, tags=["sites"])
    crud("freezer_crud", "/api/freezers", create={"name": "y"}, doc="Freezers, not assigned.")

    @flow(name="viewer_is_refused", tags=["auth", "slow"])
    def _refused(ctx):
        pass
"""


def test_discovers_functions_and_crud_declarations_in_definition_order(package: Any) -> None:
    flows = discover(package({"a.py": MIXED}))
    assert [(f.name, f.kind) for f in flows] == [
        ("health", "flow"),
        ("site_crud", "crud"),
        ("freezer_crud", "crud"),
        ("viewer_is_refused", "flow"),
    ]
    health, site, freezer, _ = flows
    assert health.summary == "The app answers."
    assert site.summary == "Create, read, update, list and delete at /api/sites."
    assert freezer.summary == "Freezers, not assigned."
    assert site.tags == frozenset({"sites"})
    assert site.origin.endswith("a.py:12")
    assert health.origin.endswith("a.py:5")
    assert discover(package({})) == flows  # idempotent: marks live on the objects


def test_flows_imported_from_another_module_count_once_where_defined(package: Any) -> None:
    root = package(
        {
            "a.py": MIXED,
            "b.py": "from .a import health, site_crud\nfrom nocrud.flows import flow\n",
            "sub/__init__.py": "",
            "sub/c.py": "from nocrud.flows import flow\n\n@flow\ndef deep(ctx):\n    pass\n",
        }
    )
    names = [f.name for f in discover(root)]
    assert names.count("health") == 1 and names.count("site_crud") == 1
    assert "deep" in names


def test_fresh_is_carried_to_the_flow_and_to_each_parametrised_run(package: Any) -> None:
    source = """
        from nocrud.flows import flow

        @flow(fresh=True)
        def writes_files(ctx):
            pass

        @flow(fresh=True, params=[1, 2])
        def twice(ctx, n):
            pass

        @flow
        def plain(ctx):
            pass
    """
    flows = {f.name: f.fresh for f in discover(package({"a.py": source}))}
    assert flows == {"writes_files": True, "twice[1]": True, "twice[2]": True, "plain": False}


def test_duplicate_names_name_both_places(package: Any) -> None:
    root = package(
        {
            "a.py": "from nocrud.flows import flow\n\n@flow\ndef same(ctx):\n    pass\n",
            "b.py": "from nocrud.flows.crud import crud\n\ncrud('same', '/x', create={})\n",
        }
    )
    with pytest.raises(FlowDiscoveryError) as info:
        discover(root)
    message = str(info.value)
    assert "two flows are named 'same'" in message
    assert "a.py:3" in message and "b.py:3" in message


def test_a_package_that_fails_to_import_is_reported_with_its_traceback(package: Any) -> None:
    root = package(
        {
            "good.py": "from nocrud.flows import flow\n\n@flow\ndef fine(ctx):\n    pass\n",
            "broken.py": "import json\n\ndef helper():\n    return undefined_name\n\nhelper()\n",
        }
    )
    with pytest.raises(FlowDiscoveryError) as info:
        discover(root)
    message = str(info.value)
    assert f"importing the flows in {root} failed" in message
    assert "Traceback" in message
    assert 'broken.py", line 4, in helper' in message
    assert "NameError: name 'undefined_name' is not defined" in message


def test_a_syntax_error_shows_file_and_line(package: Any) -> None:
    root = package({"bad.py": "from nocrud.flows import flow\n\n@flow\ndef x(ctx)\n    pass\n"})
    with pytest.raises(FlowDiscoveryError, match=r"bad\.py\", line 4"):
        discover(root)


def test_reload_runs_the_saved_code_and_forgets_removed_flows(
    package: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nocrud watch`` after an edit: same-size, same-second saves included (no stale .pyc)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the first import writes its .pyc
    root = package(
        {
            "a.py": "from nocrud import flow\n\n@flow\ndef one(ctx):\n    return 1\n",
            "b.py": "from nocrud import flow\n\n@flow\ndef gone(ctx):\n    pass\n",
        }
    )
    assert [f.name for f in discover(root)] == ["one", "gone"]
    assert list((root / "__pycache__").glob("a.*.pyc"))
    (root / "a.py").write_text("from nocrud import flow\n\n@flow\ndef one(ctx):\n    return 2\n")
    (root / "b.py").unlink()
    (root / "c.py").write_text("from nocrud import flow\n\n@flow\ndef new(ctx):\n    pass\n")

    flows = {f.name: f for f in discover(root, reload=True)}

    assert sorted(flows) == ["new", "one"]
    assert flows["one"].func(None) == 2
    assert discover(root)[0].func(None) == 2, "without reload the imported modules are kept"


def test_not_a_package_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FlowDiscoveryError, match=r"add an __init__\.py"):
        discover(tmp_path)
    with pytest.raises(FlowDiscoveryError, match="not a directory"):
        discover(tmp_path / "missing")


# -- parametrised flows ---------------------------------------------------------------


PARAMS = """
    from nocrud.flows import flow, param

    SEEN = []

    @flow(params=["admin", "editor"], tags=["auth"])
    def can_write(ctx, role):
        '''Writers may write.'''
        SEEN.append((ctx, role))

    @flow(params={"viewer": ("viewer", 403), "anonymous": (None, 401)})
    def refused(ctx, case):
        SEEN.append((ctx, case))

    @flow(params=[param({"limit": 0}, id="zero"), {"limit": -1}, 3.5, None])
    def bad_pages(ctx, query):
        SEEN.append((ctx, query))

    @flow(params=[1, 2], ids=lambda n: f"n{n:02d}")
    def numbered(ctx, n):
        SEEN.append((ctx, n))
"""


def test_parametrised_flows_become_one_flow_per_value(package: Any) -> None:
    root = package({"p.py": PARAMS})
    flows = discover(root)
    assert [f.name for f in flows] == [
        "can_write[admin]",
        "can_write[editor]",
        "refused[viewer]",
        "refused[anonymous]",
        "bad_pages[zero]",
        "bad_pages[1]",
        "bad_pages[3.5]",
        "bad_pages[None]",
        "numbered[n01]",
        "numbered[n02]",
    ]
    assert flows[0].summary == "Writers may write."
    assert flows[0].tags == frozenset({"auth"})
    for item in flows:
        item.func(item.name)  # a fake context: the name, to see which run got which value
    seen = sys.modules[f"{root.name}.p"].SEEN
    assert seen[:3] == [
        ("can_write[admin]", "admin"),
        ("can_write[editor]", "editor"),
        ("refused[viewer]", ("viewer", 403)),
    ]
    assert ("bad_pages[1]", {"limit": -1}) in seen


def test_bad_params_fail_at_import_with_the_flow_named() -> None:
    with pytest.raises(ValueError, match="'empty': params= is empty"):
        flow(name="empty", params=[])(lambda ctx, v: None)
    with pytest.raises(ValueError, match=r"'twice': params share the ids \['1'\]"):
        flow(name="twice", params=[1, "1"])(lambda ctx, v: None)
    with pytest.raises(ValueError, match="2 params but 1 ids"):
        flow(name="short", params=[1, 2], ids=["a"])(lambda ctx, v: None)
    assert param(5, id="five").id == "five"


# -- selection --------------------------------------------------------------------------


def _flows() -> list[Flow]:
    def noop(ctx: Any) -> None:
        return None

    return [
        Flow("site_crud", noop, kind="crud", tags=frozenset({"sites"})),
        Flow("freezer_crud", noop, kind="crud", tags=frozenset({"freezers", "rules"})),
        Flow("viewer_is_refused", noop, tags=frozenset({"auth"})),
        Flow("pages[1]", noop, tags=frozenset({"pagination", "slow"})),
        Flow("pages[2]", noop, tags=frozenset({"pagination", "slow"})),
    ]


def names(flows: list[Flow]) -> list[str]:
    return [f.name for f in flows]


def test_select_by_tag_expression_matches_whole_tags() -> None:
    flows = _flows()
    assert names(select(flows, tags="auth")) == ["viewer_is_refused"]
    assert names(select(flows, tags="rules or auth")) == ["freezer_crud", "viewer_is_refused"]
    assert names(select(flows, tags="pagination and not slow")) == []
    assert names(select(flows, tags="not slow")) == names(flows)[:3]
    assert select(flows, tags="site") == []  # whole tags, unlike -k
    assert names(select(flows, tags="SITES")) == ["site_crud"]


def test_select_crud_kind_and_combinations_keep_order() -> None:
    flows = _flows()
    assert names(select(flows, kinds=["crud"])) == ["site_crud", "freezer_crud"]
    assert names(select(flows, kinds=["crud"], keyword="freezer")) == ["freezer_crud"]
    assert names(select(flows, kinds=["crud"], tags="auth")) == []
    assert names(select(flows, keyword="crud and not site")) == ["freezer_crud"]


def test_select_by_name_takes_a_parametrised_flow_whole_or_one_run() -> None:
    flows = _flows()
    assert names(select(flows, names=["pages"])) == ["pages[1]", "pages[2]"]
    assert names(select(flows, names=["pages[2]"])) == ["pages[2]"]
    with pytest.raises(SelectionError, match="did you mean 'site_crud'"):
        select(flows, names=["site_curd"])


@pytest.mark.parametrize(
    ("option", "expression"), [("tags", "auth and"), ("tags", "(auth"), ("keyword", "or")]
)
def test_bad_expressions_say_how_to_write_one(option: str, expression: str) -> None:
    flag = "-m" if option == "tags" else "-k"
    with pytest.raises(SelectionError, match=f"{flag} .* is not a valid expression"):
        select(_flows(), **{option: expression})


def test_empty_expression_is_refused() -> None:
    with pytest.raises(SelectionError, match="-m needs an expression"):
        select(_flows(), tags="  ")
