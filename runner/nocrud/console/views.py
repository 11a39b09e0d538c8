"""What the console's pages show beyond raw rows: failures, comparisons, charts, ANSI logs.

Pure functions over the store's rows, so each is unit-tested without a server:
:func:`parse_failure` finds the request and response in an ``UnexpectedStatus``
message and writes the ``curl`` line that repeats it; :func:`compare` tells new
failures, fixed flows and slower ones from the previous run; :func:`runs_chart` and
:func:`trend_chart` draw small inline SVGs; :func:`ansi_to_html` renders colours.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from nocrud.masking import mask_text

__all__ = [
    "Comparison",
    "Failure",
    "ansi_to_html",
    "compare",
    "duration",
    "flow_total",
    "is_flaky",
    "parse_failure",
    "runs_chart",
    "trend_chart",
]

#: A flow is "slower" when it took this much longer than in the previous run...
SLOWER_RATIO: Final = 1.5
#: ...and at least this many seconds more (so 0.1 s -> 0.2 s is not news).
SLOWER_SECONDS: Final = 1.0

_REQUEST_LINE = re.compile(
    r"^(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?P<url>\S+) -> (?P<status>.+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Failure:
    """The failing request of a flow, as its message tells it (bodies masked)."""

    method: str
    url: str
    status: str
    request_headers: tuple[str, ...] = ()
    request_body: str = ""
    response_body: str = ""

    @property
    def path(self) -> str:
        return re.sub(r"^[a-z]+://[^/]+", "", self.url) or "/"

    def curl(self) -> str:
        """A ``curl`` line that repeats the request against ``$APP`` (a kept environment)."""
        parts = ["curl", "-i", "-X", self.method, f'"$APP"{shlex.quote(self.path)}']
        for header in self.request_headers:
            parts += ["-H", shlex.quote(header)]
        if self.request_body:
            if not any(h.lower().startswith("content-type") for h in self.request_headers):
                parts += ["-H", shlex.quote("Content-Type: application/json")]
            parts += ["--data", shlex.quote(self.request_body)]
        return " ".join(parts)


def parse_failure(message: str) -> Failure | None:
    """The request and response of an unexpected-status message; None for other failures."""
    found = _REQUEST_LINE.search(message)
    if found is None:
        return None
    headers: list[str] = []
    sections: dict[str, list[str]] = {}
    current = ""
    for line in message[found.end() :].splitlines():
        if line.startswith("request headers:"):
            current = "headers"
        elif line.startswith("request body:"):
            current = "request"
        elif line.startswith("response body"):
            current = "response"
            if "(empty)" in line:
                current = ""
        elif line.startswith("  ") and current:
            if current == "headers":
                headers.append(line.strip())
            else:
                sections.setdefault(current, []).append(line[2:])
        elif not line.startswith("  "):
            current = ""
    return Failure(
        method=found["method"],
        url=found["url"],
        status=found["status"],
        request_headers=tuple(mask_text(h) for h in headers),
        request_body=mask_text("\n".join(sections.get("request", []))),
        response_body=mask_text("\n".join(sections.get("response", []))),
    )


def flow_total(flow: Mapping[str, Any]) -> float:
    return float(flow["provision"]) + float(flow["run"]) + float(flow["teardown"])


def duration(seconds: float | None) -> str:
    """``1.23 s``, ``2m 05s``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


@dataclass(frozen=True)
class Comparison:
    """This run against the previous run of the same project."""

    previous_id: str
    new_failures: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    slower: list[tuple[str, float, float]] = field(default_factory=list)


_BAD: Final = frozenset({"failed", "error"})


def compare(
    previous_id: str, now: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]]
) -> Comparison:
    """New failures, fixed flows, and flows slower by both :data:`SLOWER_RATIO` and
    :data:`SLOWER_SECONDS`."""
    old = {f["name"]: f for f in before}
    result = Comparison(previous_id)
    for flow in now:
        earlier = old.get(flow["name"])
        if earlier is None:
            continue
        if flow["status"] in _BAD and earlier["status"] not in _BAD:
            result.new_failures.append(flow["name"])
        elif flow["status"] == "passed" and earlier["status"] in _BAD:
            result.fixed.append(flow["name"])
        if flow["status"] == "passed" and earlier["status"] == "passed":
            a, b = flow_total(earlier), flow_total(flow)
            if b > a * SLOWER_RATIO and b - a >= SLOWER_SECONDS:
                result.slower.append((flow["name"], a, b))
    return result


def is_flaky(history: Sequence[Mapping[str, Any]]) -> bool:
    """True when the flow's status changed between runs of one commit."""
    by_commit: dict[str, set[str]] = {}
    for entry in history:
        if entry["commit"] and entry["status"] in ("passed", "failed", "error"):
            by_commit.setdefault(entry["commit"], set()).add(
                "ok" if entry["status"] == "passed" else "bad"
            )
    return any(len(statuses) > 1 for statuses in by_commit.values())


_COLOURS: Final = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#ef6c00",
    "cancelled": "#757575",
    "interrupted": "#6a1b9a",
}


def runs_chart(runs: Sequence[Mapping[str, Any]], width: int = 640, height: int = 120) -> str:
    """Bars of recent runs' durations (coloured by status) and a line of their pass rate."""
    done = [r for r in reversed(runs) if r.get("wall_time")]
    if not done:
        return ""
    longest = max(float(r["wall_time"]) for r in done) or 1.0
    step = width / len(done)
    bars, points = [], []
    for i, run in enumerate(done):
        h = max(2.0, float(run["wall_time"]) / longest * (height - 20))
        x = i * step
        colour = _COLOURS.get(str(run["status"]), "#9e9e9e")
        title = html.escape(f"{run['id']}: {run['status']}, {duration(run['wall_time'])}")
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{height - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{title}</title></rect>'
        )
        total = int(run["total"]) or 1
        rate = int(run["passed"]) / total
        points.append(f"{x + step / 2:.1f},{(1 - rate) * (height - 20) + 10:.1f}")
    line = f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="durations and pass rate of recent runs">{"".join(bars)}{line}</svg>'
    )


def trend_chart(history: Sequence[Mapping[str, Any]], width: int = 480, height: int = 80) -> str:
    """A flow's duration over its recent results, oldest first."""
    entries = list(reversed(history))
    if len(entries) < 2:
        return ""
    values = [flow_total(e) for e in entries]
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 5 - v / top * (height - 10):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="duration trend">'
        f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="2"/></svg>'
    )


_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ANSI_CLASSES: Final = {
    **{str(30 + i): f"fg{i}" for i in range(8)},
    **{str(90 + i): f"fg{i} bright" for i in range(8)},
    "1": "bold",
    "2": "dim",
    "3": "italic",
    "4": "underline",
}


def ansi_to_html(text: str) -> str:
    """Escape ``text`` for HTML and turn its ANSI colour codes into ``<span class>``."""
    out: list[str] = []
    open_spans = 0
    position = 0
    for match in _SGR.finditer(text):
        out.append(html.escape(_OTHER_ESCAPES.sub("", text[position : match.start()])))
        position = match.end()
        codes = [c for c in match.group(1).split(";") if c] or ["0"]
        for code in codes:
            if code in ("0", "39", "22"):
                out.append("</span>" * open_spans)
                open_spans = 0
            elif code in _ANSI_CLASSES:
                out.append(f'<span class="{_ANSI_CLASSES[code]}">')
                open_spans += 1
    out.append(html.escape(_OTHER_ESCAPES.sub("", text[position:])))
    out.append("</span>" * open_spans)
    return "".join(out)
