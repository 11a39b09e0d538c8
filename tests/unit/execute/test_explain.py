"""A bare ``assert`` in a flow explains itself: the statement, the operands, a diff.

The flows under test live in a module written to a temporary directory and imported
as nocrud imports flows: pytest rewrites the asserts of test modules, not of those.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from nocrud.execute import FlowExecutor
from nocrud.execute.explain import explain_assertion
from nocrud.flows import Flow
from nocrud.results import Status
from tests.unit.execute.test_executor import FakeProvisioner

FLOWS = """
def compares_a_field(ctx=None):
    site = {"contact": "Ada", "name": "north"}
    assert site["contact"] == "Grace"


def compares_long_values(ctx=None):
    got = {"a": 1, "b": [1, 2, 3], "c": "x" * 30, "d": {"deep": True}}
    want = {"a": 1, "b": [1, 2, 4], "c": "x" * 30, "d": {"deep": True}}
    assert got == want


calls = []


def count():
    calls.append(1)
    return len(calls)


def compares_a_call(ctx=None):
    assert count() == 5


def has_a_message(ctx=None):
    status = 404
    assert status == 200, "the site should exist"
"""


@pytest.fixture
def flows(tmp_path: Path) -> ModuleType:
    path = tmp_path / "explained_flows.py"
    path.write_text(textwrap.dedent(FLOWS))
    spec = importlib.util.spec_from_file_location("explained_flows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def explained(check: Callable[[], None]) -> str:
    with pytest.raises(AssertionError) as caught:
        check()
    return explain_assertion(caught.value)


def test_a_comparison_shows_both_operands_and_where_they_came_from(flows: ModuleType) -> None:
    assert explained(flows.compares_a_field).splitlines() == [
        "assert site['contact'] == 'Grace'",
        "  'Ada' == 'Grace'",
        "  where site['contact'] = 'Ada'",
        "  where site = {'contact': 'Ada', 'name': 'north'}",
    ]


def test_long_values_get_a_line_diff(flows: ModuleType) -> None:
    text = explained(flows.compares_long_values)
    assert "  - 'b': [1, 2, 3]," in text.splitlines()
    assert "  + 'b': [1, 2, 4]," in text.splitlines()


def test_calls_are_never_evaluated_again(flows: ModuleType) -> None:
    assert explained(flows.compares_a_call) == ""  # nothing to show without calling it again
    assert flows.calls == [1]  # only the assert itself called it


def test_an_assert_with_a_message_is_left_as_written(flows: ModuleType) -> None:
    result = FlowExecutor(FakeProvisioner(), flow_timeout=5)(Flow("msg", flows.has_a_message), 0)
    assert result.status is Status.FAILED
    assert result.message == "the site should exist"


def test_a_flow_failing_on_a_bare_assert_reports_the_operands(flows: ModuleType) -> None:
    flow = Flow("bare", flows.compares_a_field)
    result = FlowExecutor(FakeProvisioner(), flow_timeout=5)(flow, 0)
    assert result.status is Status.FAILED
    assert result.message.startswith("assert site['contact'] == 'Grace'\n  'Ada' == 'Grace'")
