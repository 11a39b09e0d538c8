"""The ``nocrud`` command group: a thin layer of click over :mod:`nocrud.workflow`.

Each command parses its options, loads the config (default < file < env < CLI),
calls one workflow function and exits with the code the outcome maps to (see
:data:`nocrud.errors.EXIT_CODES`); the guard in :mod:`nocrud.cli._guard` turns
known mistakes into one message saying what to do, never a traceback.

The commands live in modules per group (:mod:`~nocrud.cli.run`: up, build, clean;
:mod:`~nocrud.cli.project`: list, config; :mod:`~nocrud.cli.authoring`: coverage,
perf, new; :mod:`~nocrud.cli.doctor`) and :class:`LazyGroup` imports a module only
when one of its commands runs or shows its own help: ``nocrud --help`` reads the
one-line summaries in :data:`COMMANDS` and imports nothing but click.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from nocrud.cli._guard import EXIT_CODES_HELP, Group

__all__ = ["COMMANDS", "LazyCommand", "LazyGroup", "main"]


@dataclass(frozen=True)
class LazyCommand:
    """A command known by name before its module is imported.

    Attributes:
        target: ``module:attribute`` of the click command.
        summary: The first line of its help, shown by ``nocrud --help`` (a unit test
            checks it against the command's docstring).
    """

    target: str
    summary: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


#: Every command of ``nocrud``, in the order ``nocrud --help`` lists them.
COMMANDS: Mapping[str, LazyCommand] = {
    "up": LazyCommand(
        "nocrud.cli.run:up",
        "Build what changed, then run the flows in parallel, each in its own environment.",
    ),
    "build": LazyCommand(
        "nocrud.cli.run:build",
        "Build the app image and the pre-migrated database image, only where something changed.",
    ),
    "list": LazyCommand(
        "nocrud.cli.project:list_command",
        "List the flows with their kind, tags and first docstring line.",
    ),
    "config": LazyCommand(
        "nocrud.cli.project:config_command",
        "Print the resolved configuration (defaults < file < environment < CLI), secrets masked.",
    ),
    "coverage": LazyCommand(
        "nocrud.cli.authoring:coverage",
        "Show which of the app's OpenAPI operations the last run's flows exercised.",
    ),
    "perf": LazyCommand(
        "nocrud.cli.authoring:perf",
        "Compare the last run's request timings (from `nocrud up --perf`) with the baseline.",
    ),
    "new": LazyCommand(
        "nocrud.cli.authoring:new",
        "Write a new flow file into the flows package (never overwrites one).",
    ),
    "doctor": LazyCommand(
        "nocrud.cli.doctor:doctor_command",
        "Check that this machine can run flows, and say how to fix what is missing.",
    ),
    "clean": LazyCommand(
        "nocrud.cli.run:clean",
        "Remove what nocrud left: killed runs' objects and environments kept with --keep-failed.",
    ),
    "pool": LazyCommand(
        "nocrud.cli.pool:pool",
        "Show or remove the pairs kept between runs (run.keep_pool, `nocrud up --keep-pool`).",
    ),
    "serve": LazyCommand(
        "nocrud.cli.serve:serve",
        "Serve the web console: run history, live progress, start, cancel and rerun.",
    ),
    "bench": LazyCommand(
        "nocrud.cli.bench:bench",
        "Run the same flows under each provisioning strategy and compare what each costs.",
    ),
    "worker": LazyCommand(
        "nocrud.cli.worker:worker",
        "Run flows sent by `nocrud up --broker` on this host's Docker, as a Celery worker.",
    ),
    "images": LazyCommand(
        "nocrud.cli.images:images",
        "Move the project's images between Docker hosts without a registry (save / load).",
    ),
    "report": LazyCommand(
        "nocrud.cli.report:report",
        "Work with results files: join the shards of a CI run into one report.",
    ),
    "fuzz": LazyCommand(
        "nocrud.cli.fuzz:fuzz",
        "Fuzz the app from its OpenAPI document; replay every failure in a brand-new environment.",
    ),
    "watch": LazyCommand(
        "nocrud.cli.watch:watch",
        "Rerun flows on warm environments whenever a flow file, the app or a migration changes.",
    ),
}


class LazyGroup(Group):
    """A group that imports a command's module only when that command is needed."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their summaries (in full, wrapped), importing none of them."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                summary = self.lazy[name].summary
            else:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                summary = command.get_short_help_str(limit=formatter.width)
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from nocrud import __version__

    click.echo(f"nocrud, version {__version__}")
    ctx.exit()


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Path to nocrud.yaml (default: ./nocrud.yaml or the nearest parent's; env NOCRUD_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Run API test flows, each against its own PostgreSQL and its own app instance, in Docker.

    \b
    Quick start on the bundled example:
      nocrud build        # build the app image and the pre-migrated database image
      nocrud up -j 8      # run every flow, 8 at a time, each in its own environment
      nocrud list         # show the flows
      nocrud clean        # remove anything nocrud left behind
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


if __name__ == "__main__":  # pragma: no cover
    main()
