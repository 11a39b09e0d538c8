"""The start-a-run request and its validation: the CLI's own rules, one message per field.

:class:`StartRequest` checks shapes (pydantic: types, ranges, lengths);
:func:`validate_start` then applies what ``nocrud up`` would: the strategy must be one
the environment offers, ``-k`` and ``-m`` must parse, every ``-f`` name must exist and
the selection must choose at least one flow (the same :mod:`nocrud.flows.selection`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nocrud.console.settings import ConsoleSettings
from nocrud.errors import NocrudError

__all__ = ["StartRequest", "field_errors", "validate_start"]

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class StartRequest(BaseModel):
    """What the start form (or a script) asks for; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    flows: list[_Name] = Field(default_factory=list, max_length=500, description="-f names")
    keyword: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        default="", description="-k expression"
    )
    tags: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        default="", description="-m expression"
    )
    crud: bool = Field(default=False, description="--crud: only declared CRUD flows")
    parallel: int = Field(default=2, ge=1, le=64, description="-j: flows at once")
    strategy: str = Field(default="image", max_length=64, description="run.strategy")

    def argv(self) -> list[str]:
        """The ``nocrud up`` options that make this selection."""
        args = ["-j", str(self.parallel)]
        for name in self.flows:
            args += ["-f", name]
        if self.keyword:
            args += ["-k", self.keyword]
        if self.tags:
            args += ["-m", self.tags]
        if self.crud:
            args.append("--crud")
        return args

    def shown(self) -> dict[str, Any]:
        return {"flows": self.flows, "keyword": self.keyword, "tags": self.tags, "crud": self.crud}


def field_errors(errors: list[Any]) -> dict[str, str]:
    """pydantic's errors as one message per field (``flows.2`` reads ``flows``)."""
    out: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        name = loc[0] if loc else "request"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = (
                f"unknown field {name!r}: the fields are {', '.join(StartRequest.model_fields)}"
            )
        out.setdefault(name, message)
    return out


def validate_start(request: StartRequest, settings: ConsoleSettings) -> dict[str, str]:
    """The CLI's checks of a selection, one message per field; empty when it may start."""
    from nocrud.flows import discover
    from nocrud.flows.selection import keyword_matcher, select, tag_matcher

    errors: dict[str, str] = {}
    if request.strategy not in settings.strategies:
        errors["strategy"] = (
            f"unknown strategy {request.strategy!r}: choose one of {', '.join(settings.strategies)}"
        )
    for name, compile_expression in (("keyword", keyword_matcher), ("tags", tag_matcher)):
        expression = getattr(request, name)
        if expression:
            try:
                compile_expression(expression)
            except NocrudError as exc:
                errors[name] = str(exc)
    if errors:
        return errors
    try:
        from nocrud.config import load_config

        config = load_config(settings.config_path)
        flows = discover(config.flows.path)
    except NocrudError as exc:
        return {"flows": f"cannot list the flows: {exc}"}
    try:
        chosen = select(
            flows,
            names=tuple(request.flows),
            keyword=request.keyword or None,
            tags=request.tags or None,
            kinds=("crud",) if request.crud else (),
        )
    except NocrudError as exc:
        return {"flows": str(exc)}
    if not chosen:
        return {"flows": "no flows selected: loosen -f/-k/-m/--crud (`nocrud list` shows them)"}
    return {}
