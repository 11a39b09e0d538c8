"""``nocrud list``'s layout: nothing cut at 80 columns, nothing padded without a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from nocrud.cli.project import print_flows

ROWS = [
    (
        "flows.test_sites.test_create_site_then_list_instruments_of_it[with-unicode-name]",
        "crud",
        "sites,smoke",
        "Create a site, then list its instruments and check that the new one is empty.",
    ),
    ("flows.test_health.test_health", "flow", "", "The app answers its health check."),
]


def printed(*, terminal: bool, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    print_flows(console, ROWS)
    return out.getvalue()


def test_a_narrow_terminal_gets_each_flow_whole_not_a_cut_table() -> None:
    text = printed(terminal=True, width=80)
    flat = " ".join(text.split())
    for name, kind, _tags, summary in ROWS:
        assert name in flat.replace(" ", "")  # folded maybe, but whole
        assert f" {kind}" in flat
        assert " ".join(summary.split()) in flat  # the description is not dropped
    assert "sites,smoke" in flat
    assert all(len(line) <= 80 for line in text.splitlines())


def test_a_wide_terminal_gets_the_table() -> None:
    text = printed(terminal=True, width=250)
    assert text.splitlines()[0].split() == ["flow", "kind", "tags", "description"]
    assert len(text.splitlines()) == 3


def test_without_a_terminal_lines_are_as_wide_as_their_content() -> None:
    text = printed(terminal=False, width=80)
    lines = text.splitlines()
    assert len(lines) == 3  # header and one line a flow: never folded at column 80
    assert all(line == line.rstrip() for line in lines)
    assert len(lines[2]) < len(lines[1])  # the short row is not padded to the long one
