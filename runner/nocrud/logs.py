"""App log text as people read it: a run of lines that repeat said once, with a count.

An app's access log under nocrud's readiness polls is forty ``GET /health 404`` lines that
differ only in their time stamps; a crash loop prints one traceback line again and again.
:func:`collapse_repeats` keeps the first line of each such run and says how many there
were. It is used wherever app logs are shown to a person (the terminal report, the
messages of an environment that did not start); the JSON report keeps every line.
"""

from __future__ import annotations

import re

__all__ = ["collapse_repeats"]

#: Time stamps as access logs and loggers write them: ``04/Dec/2026:14:42:06 +0000``,
#: ``2026-12-04T14:42:06.123Z``, ``2026-12-04 14:42:06,123``, a bare ``14:42:06``.
_STAMP = re.compile(
    r"\d{1,4}[-/](?:\d{1,2}|[A-Za-z]{3})[-/]\d{2,4}[ T:]\d\d:\d\d:\d\d(?:[.,]\d+)?"
    r"(?: ?(?:[+-]\d\d:?\d\d|Z))?"
    r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"
)


def collapse_repeats(text: str, *, least: int = 3) -> str:
    """``text`` with each run of ``least`` or more lines that differ only in their time
    stamps written as its first line and ``(N times)``.

    Shorter runs are left as they are: two lines are easier to read than a count.
    """
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        shape = _STAMP.sub("<time>", lines[index])
        end = index + 1
        while end < len(lines) and _STAMP.sub("<time>", lines[end]) == shape:
            end += 1
        count = end - index
        if count >= least:
            out.append(f"{lines[index]}  ({count} times)")
        else:
            out.extend(lines[index:end])
        index = end
    return "\n".join(out) + ("\n" if text.endswith("\n") and out else "")
