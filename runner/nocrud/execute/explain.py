"""What a bare ``assert`` in a flow was comparing, shown the way pytest users expect.

A flow that fails on ``assert site["contact"] == "Grace"`` raises an ``AssertionError``
with no message. Rather than rewriting the flow's bytecode as pytest does, nocrud reads
the failing statement back from the frame it failed in (``executing`` finds the
statement, the standard library's ``ast`` takes it apart) and evaluates its parts with
``pure_eval``, which computes only side-effect-free expressions (names, attributes,
subscripts, arithmetic on known values) and never calls the flow's functions again.
The result reads::

    assert site["contact"] == "Grace"
      'Ada' == 'Grace'
      where site["contact"] = 'Ada'

with a line diff for long strings, lists and dicts. Anything that cannot be worked out
is left out, so the explanation is never wrong, only sometimes shorter.
"""

from __future__ import annotations

import ast
import difflib
import pprint
import reprlib
from types import TracebackType
from typing import Any

__all__ = ["explain_assertion"]

_MAX_WHERE = 8
_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxdict = _repr.maxset = _repr.maxtuple = 20
_OPERATORS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def explain_assertion(exc: AssertionError) -> str:
    """The failing ``assert`` statement with its operands' values, or "" when unknown.

    Call it while the traceback is alive (in the ``except`` block, or with the
    exception kept): the values come from the frame the assertion failed in.
    """
    try:
        return _explain(exc.__traceback__)
    except Exception:  # noqa: BLE001 - an explanation is a courtesy: never let it fail a run
        return ""


def _explain(tb: TracebackType | None) -> str:
    if tb is None:
        return ""
    import executing
    import pure_eval

    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    statements = executing.Source.for_frame(frame).statements_at_line(tb.tb_lineno)
    statement = next((s for s in statements if isinstance(s, ast.Assert)), None)
    if statement is None:
        return ""
    evaluator = pure_eval.Evaluator.from_frame(frame)
    lines = [f"assert {ast.unparse(statement.test)}"]
    test = statement.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = _value(evaluator, test.left), _value(evaluator, test.comparators[0])
        if left is not _UNKNOWN and right is not _UNKNOWN:
            operator = _OPERATORS.get(type(test.ops[0]), "?")
            lines.append(f"  {_repr.repr(left)} {operator} {_repr.repr(right)}")
            if isinstance(test.ops[0], ast.Eq):
                lines.extend(f"  {line}" for line in _diff(left, right))
    lines.extend(f"  where {text}" for text in _where(evaluator, test))
    return "\n".join(lines) if len(lines) > 1 else ""


class _Unknown:
    pass


_UNKNOWN: Any = _Unknown()


def _value(evaluator: Any, node: ast.expr) -> Any:
    try:
        return evaluator[node]
    except Exception:  # noqa: BLE001 - pure_eval's CannotEval, or a value that fails to compute
        return _UNKNOWN


def _where(evaluator: Any, test: ast.expr) -> list[str]:
    """``expression = value`` for the names and lookups in the test, literals left out."""
    found: list[str] = []
    seen: set[str] = set()
    for node in ast.walk(test):
        if node is test or not isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            continue
        text = ast.unparse(node)
        if text in seen:
            continue
        seen.add(text)
        value = _value(evaluator, node)
        if value is _UNKNOWN or callable(value) or type(value).__name__ == "module":
            continue
        found.append(f"{text} = {_repr.repr(value)}")
        if len(found) == _MAX_WHERE:
            break
    return found


def _diff(left: Any, right: Any) -> list[str]:
    """A line diff of two long values (strings, lists, dicts); nothing for short ones."""
    if isinstance(left, str) and isinstance(right, str):
        a, b = left.splitlines(), right.splitlines()
    elif isinstance(left, list | dict | tuple | set) and type(left) is type(right):
        a = pprint.pformat(left, width=60, sort_dicts=True).splitlines()
        b = pprint.pformat(right, width=60, sort_dicts=True).splitlines()
    else:
        return []
    if len(a) < 2 and len(b) < 2:
        return []
    diff = list(difflib.unified_diff(a, b, "left", "right", lineterm="", n=1))
    return diff[2:42]  # the hunks, without the file headers; long diffs are cut
