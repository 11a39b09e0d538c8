"""The commands that read the project without Docker: ``nocrud list`` and ``nocrud config``.

They load nocrud.yaml and, for ``list``, import the flows package; nothing here
imports Docker, testcontainers, psycopg2 or requests (the flows may, for themselves).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from nocrud.cli._guard import Command
from nocrud.cli._options import Selection, console, load, selection_options

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["config_command", "list_command", "print_flows"]


@click.command(name="list", cls=Command)
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the flows as JSON.")
@click.pass_context
def list_command(ctx: click.Context, *, selection: Selection, as_json: bool) -> None:
    """List the flows with their kind, tags and first docstring line.

    \b
    Examples:
      nocrud list
      nocrud list -k crud
      nocrud list -m auth --json
    """
    from nocrud.flows import discover

    config = load(ctx)
    flows = selection.apply(discover(config.flows.path))
    if as_json:
        shown = [
            {
                "name": f.name,
                "kind": f.kind,
                "tags": sorted(f.tags),
                "doc": f.summary,
                "origin": f.origin,
            }
            for f in flows
        ]
        click.echo(json.dumps(shown, indent=2))
        return
    from nocrud.report.terminal import plural

    out = console()
    rows = [(f.name, f.kind, ",".join(sorted(f.tags)), f.summary) for f in flows]
    print_flows(out, rows)
    out.print(plural(len(flows), "flow"))


def print_flows(out: Console, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """The flows as a table (name, kind, tags, description), or one block each if too wide.

    On a terminal too narrow for the table (80 columns and a long flow name), rich would
    cut the kind to a letter and drop the description without a word; each flow then
    gets its own lines instead, nothing cut. Without a terminal the table is as wide as
    its content (:func:`~nocrud.report.terminal.print_wide`), lines not padded.
    """
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    from nocrud.report.terminal import print_wide

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("flow", "kind", "tags", "description"):
        table.add_column(column, no_wrap=column != "description")
    for name, kind, tags, summary in rows:  # escaped: a flow's "[id]" is not rich markup
        table.add_row(escape(name), kind, escape(tags), escape(summary))
    needed = Measurement.get(out, out.options.update(width=10_000), table).maximum
    if not out.is_terminal or needed <= out.width:
        print_wide(out, table)
        return
    for name, kind, tags, summary in rows:
        head = f"{escape(name)}  [dim]{kind}[/]" + (f"  {escape(tags)}" if tags else "")
        out.print(head, overflow="fold")
        if summary:
            out.print(f"    {escape(summary)}", overflow="fold")


@click.command(name="config", cls=Command)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def config_command(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved configuration (defaults < file < environment < CLI), secrets masked.

    \b
    Examples:
      nocrud config
      NOCRUD_PARALLEL=4 nocrud config --json
    """
    config = load(ctx)
    data = config.to_display_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    import yaml

    click.echo(f"# resolved from {config.source}")
    click.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())
