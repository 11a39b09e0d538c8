"""What ``nocrud bench`` shows and writes: a table, Markdown, JSON and a PNG chart.

All of it reads :class:`~nocrud.bench.measure.Figures` values; nothing here talks
to Docker. The chart needs matplotlib (a dependency of nocrud), drawn with the Agg
backend so it works without a display.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nocrud.bench.measure import Figures

__all__ = ["COLUMNS", "markdown", "table", "write_chart", "write_json", "write_markdown"]

#: (heading, Figures attribute, format) of every column, in order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("strategy", "strategy", "{}"),
    ("flows", "flows", "{}"),
    ("passed", "passed", "{}"),
    ("wall s", "wall", "{:.1f}"),
    ("prepare s", "prepare", "{:.1f}"),
    ("provision p50 s", "provision_p50", "{:.2f}"),
    ("provision p95 s", "provision_p95", "{:.2f}"),
    ("teardown p50 s", "teardown_p50", "{:.2f}"),
    ("flows/min", "flows_per_minute", "{:.1f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.1f}"),
    ("docker ops/flow", "docker_ops_per_flow", "{:.1f}"),
    ("left", "left_behind", "{}"),
)


def _rows(figures: Sequence[Figures]) -> list[list[str]]:
    return [[fmt.format(getattr(f, attr)) for _, attr, fmt in COLUMNS] for f in figures]


def table(figures: Sequence[Figures]) -> str:
    """A plain-text table, one row per strategy, aligned for a terminal or a CI log."""
    heads = [head for head, _, _ in COLUMNS]
    rows = _rows(figures)
    widths = [max(len(c) for c in column) for column in zip(heads, *rows, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(heads, widths, strict=True))
        )
    ]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def ratios(figures: Sequence[Figures]) -> list[str]:
    """The comparisons a team asks for, as sentences (wall time, slower / faster).

    With the ``shared`` baseline measured, one more line gives every other strategy's
    wall time as a multiple of it: what isolation costs over one environment for all.
    """
    by = {f.strategy: f for f in figures}
    pairs = [("migrate", "image"), ("compose", "image"), ("image", "template"), ("image", "pool")]
    lines = [
        f"{slow} / {fast} wall time: {by[slow].wall / by[fast].wall:.2f}x"
        for slow, fast in pairs
        if slow in by and fast in by and by[fast].wall > 0
    ]
    shared = by.get("shared")
    others = [f for f in figures if f.strategy != "shared"]
    if shared is not None and shared.wall > 0 and others:
        multiples = ", ".join(f"{f.strategy} {f.wall / shared.wall:.2f}x" for f in others)
        lines.append(f"wall time as a multiple of shared (one environment, no reset): {multiples}")
    return lines


def markdown(figures: Sequence[Figures], context: dict[str, Any]) -> str:
    """The table as Markdown, with what was measured and how."""
    heads = [head for head, _, _ in COLUMNS]
    lines = [
        f"# nocrud bench: {context.get('flows')} flows, -j {context.get('parallel')}",
        "",
        f"Project `{context.get('project')}` ({context.get('config')}), "
        f"{context.get('date')}, {context.get('cpus')} CPUs.",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(heads))) + "|",
        *("| " + " | ".join(row) + " |" for row in _rows(figures)),
        "",
        *(f"- {line}" for line in ratios(figures)),
        "",
    ]
    return "\n".join(lines)


def write_markdown(figures: Sequence[Figures], context: dict[str, Any], path: Path) -> None:
    path.write_text(markdown(figures, context))


def write_json(figures: Sequence[Figures], context: dict[str, Any], path: Path) -> None:
    path.write_text(
        json.dumps({"context": context, "strategies": [f.to_dict() for f in figures]}, indent=2)
        + "\n"
    )


def write_chart(figures: Sequence[Figures], context: dict[str, Any], path: Path) -> None:
    """Two panels: wall time per strategy, and per-flow provisioning p50/p95 and teardown p50."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f.strategy for f in figures]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bars = left.bar(names, [f.wall for f in figures], color="#4c72b0")
    left.bar_label(bars, fmt="%.1f s")
    left.set_ylabel("wall time (s)")
    left.set_title(f"{context.get('flows')} flows, -j {context.get('parallel')}")
    width = 0.27
    xs = range(len(figures))
    for offset, attr, label, colour in (
        (-width, "provision_p50", "provision p50", "#55a868"),
        (0.0, "provision_p95", "provision p95", "#c44e52"),
        (width, "teardown_p50", "teardown p50", "#8172b2"),
    ):
        right.bar(
            [x + offset for x in xs],
            [getattr(f, attr) for f in figures],
            width,
            label=label,
            color=colour,
        )
    right.set_xticks(list(xs), names)
    right.set_ylabel("seconds per flow")
    right.set_title("per flow")
    right.legend()
    fig.suptitle(f"nocrud bench: {context.get('project')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
