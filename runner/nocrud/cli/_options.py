"""What the commands share besides the guard: the config, the console and flow selection.

:func:`load` reads nocrud.yaml as ``--config`` (or ``NOCRUD_CONFIG``, or the nearest
file) names it, with the command line's values on top; :func:`selection_options`
gives ``up`` and ``list`` the same ``-f``/``-k``/``-m``/``--crud`` options, handed to
the command as one :class:`Selection`. Heavy modules (pydantic, rich, the flows) are
imported by the functions that need them, so ``nocrud --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

if TYPE_CHECKING:
    from rich.console import Console

    from nocrud.config import Config
    from nocrud.flows import Flow

__all__ = ["Selection", "console", "load", "selection_options"]

F = TypeVar("F", bound=Callable[..., Any])


def console() -> Console:
    """The console commands print to: colour on a terminal, never with NO_COLOR."""
    from rich.console import Console

    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def load(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Config:
    """The configuration of ``-c``/``--config`` (or the default place), ``overrides`` on top.

    Args:
        ctx: Any command's context; ``--config`` lives on the root's ``obj``.
        overrides: Command-line values by dotted key; None values were not given.

    Raises:
        ConfigError: Every problem, one per line (the guard prints them, exit 2).
    """
    from nocrud.config import load_config

    obj = ctx.find_root().obj or {}
    path: Path | None = obj.get("config_path")
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    return load_config(path, overrides=given)


@dataclass(frozen=True)
class Selection:
    """Which flows a command works on: ``-f``, ``-k``, ``-m`` and ``--crud``."""

    names: tuple[str, ...] = ()
    keyword: str | None = None
    tags: str | None = None
    kinds: tuple[str, ...] = ()

    def apply(self, flows: Sequence[Flow]) -> list[Flow]:
        """The selected flows, in discovery order.

        Raises:
            SelectionError: A name matches no flow, or an expression does not parse.
        """
        from nocrud.flows import select

        return select(
            flows, names=self.names, keyword=self.keyword, tags=self.tags, kinds=self.kinds
        )


_SELECTION_OPTIONS = (
    click.option(
        "-f",
        "--flow",
        "names",
        multiple=True,
        metavar="NAME",
        help="Only this flow (repeatable; a parametrised flow's name selects all its runs).",
    ),
    click.option(
        "-k",
        "keyword",
        metavar="EXPR",
        default=None,
        help="Only flows whose name or tags match, e.g. -k 'site and not delete'.",
    ),
    click.option(
        "-m",
        "tags",
        metavar="EXPR",
        default=None,
        help="Only flows whose tags match, e.g. -m 'auth'.",
    ),
    click.option("--crud", "crud_only", is_flag=True, help="Only declared CRUD flows."),
)


def selection_options(func: F) -> F:
    """Add ``-f``, ``-k``, ``-m`` and ``--crud`` to a command; it receives ``selection=``."""

    @functools.wraps(func)
    def with_selection(
        *args: Any,
        names: tuple[str, ...],
        keyword: str | None,
        tags: str | None,
        crud_only: bool,
        **kwargs: Any,
    ) -> Any:
        kinds = ("crud",) if crud_only else ()
        chosen = Selection(names=tuple(names), keyword=keyword, tags=tags, kinds=kinds)
        return func(*args, selection=chosen, **kwargs)

    decorated: Any = with_selection
    for option in reversed(_SELECTION_OPTIONS):
        decorated = option(decorated)
    return cast("F", decorated)
