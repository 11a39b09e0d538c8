"""Choosing which flows run: ``-f`` names, ``-k`` and ``-m`` expressions, ``--crud``.

Expressions read like pytest's: words joined with ``and``, ``or``, ``not`` and
parentheses. In ``-k`` a word matches a substring of a flow's name or tags; in ``-m``
it matches a tag exactly. Every mistake is a :class:`SelectionError` saying what to
write instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from nocrud.errors import UsageError

if TYPE_CHECKING:
    from nocrud.flows.discovery import Flow


class SelectionError(UsageError):
    """A ``-f`` or ``-k`` selection does not make sense; the message says what to change."""


_WORD = re.compile(r"\(|\)|[^\s()]+")


def _expression(expression: str, option: str, example: str) -> tuple[Any, list[str]]:
    """Compile an and/or/not expression over words; returns the code and the words."""
    tokens = _WORD.findall(expression)
    if not tokens:
        raise SelectionError(f"{option} needs an expression, e.g. {option} {example}")
    words: list[str] = []
    parts: list[str] = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            parts.append(token)
        else:
            parts.append(f"_w[{len(words)}]")
            words.append(token.lower())
    try:
        code = compile(" ".join(parts), f"<{option}>", "eval")
    except SyntaxError:
        raise SelectionError(
            f"{option} {expression!r} is not a valid expression: use words joined with "
            f"and/or/not, e.g. {option} '{example} and not slow'"
        ) from None
    return code, words


def _evaluate(code: Any, values: list[bool]) -> bool:
    return bool(eval(code, {"__builtins__": {}}, {"_w": values}))  # noqa: S307 - built from our own tokens


def keyword_matcher(expression: str) -> Callable[[Flow], bool]:
    """Compile a ``-k`` expression like pytest's: words match name substrings, with and/or/not.

    Raises:
        SelectionError: The expression does not parse.
    """
    code, words = _expression(expression, "-k", "site")

    def matches(item: Flow) -> bool:
        haystack = " ".join([item.name.lower(), *sorted(t.lower() for t in item.tags)])
        return _evaluate(code, [w in haystack for w in words])

    return matches


def tag_matcher(expression: str) -> Callable[[Flow], bool]:
    """Compile a ``-m`` expression like pytest's: words are whole tags, with and/or/not.

    Raises:
        SelectionError: The expression does not parse.
    """
    code, words = _expression(expression, "-m", "auth")

    def matches(item: Flow) -> bool:
        tags = {t.lower() for t in item.tags}
        return _evaluate(code, [w in tags for w in words])

    return matches


def select(
    flows: Sequence[Flow],
    *,
    names: Sequence[str] = (),
    keyword: str | None = None,
    tags: str | None = None,
    kinds: Iterable[str] = (),
) -> list[Flow]:
    """Filter flows, keeping their order.

    Args:
        flows: What discovery found.
        names: ``-f``: exact names; a parametrised flow's name without ``[id]``
            selects all its runs.
        keyword: ``-k``: an expression over name substrings and tags.
        tags: ``-m``: an expression over whole tags.
        kinds: Only flows of these kinds (``--crud`` is ``{"crud"}``).

    Raises:
        SelectionError: A name matches no flow, or an expression does not parse.
    """
    chosen = list(flows)
    if names:
        known = {f.name for f in flows} | {f.name.split("[", 1)[0] for f in flows}
        unknown = [n for n in names if n not in known]
        if unknown:
            import difflib

            hints = [
                f"{n!r} (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(n, known, 1))
                else repr(n)
                for n in unknown
            ]
            raise SelectionError(
                f"no flow named {', '.join(hints)}: `nocrud list` shows the flows there are"
            )
        wanted = set(names)
        chosen = [f for f in chosen if f.name in wanted or f.name.split("[", 1)[0] in wanted]
    wanted_kinds = set(kinds)
    if wanted_kinds:
        chosen = [f for f in chosen if f.kind in wanted_kinds]
    if keyword:
        matcher = keyword_matcher(keyword)
        chosen = [f for f in chosen if matcher(f)]
    if tags:
        by_tag = tag_matcher(tags)
        chosen = [f for f in chosen if by_tag(f)]
    return chosen
