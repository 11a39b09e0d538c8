"""The commands that read the project without Docker: ``nocrud list`` and ``nocrud config``.

They load nocrud.yaml and, for ``list``, import the flows package; nothing here
imports Docker, testcontainers, psycopg2 or requests (the flows may, for themselves).
"""

from __future__ import annotations

import json

import click

from nocrud.cli._guard import Command
from nocrud.cli._options import Selection, console, load, selection_options

__all__ = ["config_command", "list_command"]


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
    from rich.markup import escape
    from rich.table import Table

    from nocrud.report.terminal import plural, print_wide

    out = console()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("flow", "kind", "tags", "description"):
        table.add_column(column, no_wrap=column != "description")
    for item in flows:  # escaped: a parametrised flow's "[id]" is not rich markup
        tags = ",".join(sorted(item.tags))
        table.add_row(escape(item.name), item.kind, escape(tags), escape(item.summary))
    # Without a terminal (CI logs, pipes) at the width of the content: never one word a line.
    print_wide(out, table)
    out.print(plural(len(flows), "flow"))


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
