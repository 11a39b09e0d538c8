"""How nocrud.yaml's problems, and its secrets, are shown to people.

This module owns :class:`ConfigError` (re-exported by :mod:`nocrud.config`) and
every message it carries: reading and parsing the file (YAML errors with line
and column), and turning each of pydantic's error entries (location, type,
input) into one line that names the source, the dotted key, the bad value and
the fix, so that no pydantic message format or traceback ever reaches the user.
It knows the wording for every key of the schema, suggests the key that was
probably meant ("did you mean 'parallel'?") and never prints a secret: what is
secret is decided by :mod:`nocrud.masking`, as everywhere else.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails, PydanticCustomError

from nocrud.errors import UsageError
from nocrud.masking import is_secret_name, mask_text

#: Error type of the messages config.py's own validators raise, already written
#: for people; their ``ctx["text"]`` is used as is.
PROBLEM = "nocrud"

_IDENTIFIER_FIX = "use 1 to 63 lowercase letters, digits or '_', not starting with a digit"
_COMMAND_FIX = (
    'use a list of strings such as ["python3", "-m", "app.migrate"], '
    "or one string (split like a shell would, but not run by one)"
)
_SECTION_FIX = "use a mapping: the section name, then indented `key: value` lines"

#: Dotted key (list positions written ``[]``, any key of a mapping ``*``) ->
#: (what the value should be, how to fix it).
_FIELDS: dict[str, tuple[str, str]] = {
    "project": (
        "project name",
        "use 1 to 40 lowercase letters, digits or '-', starting with a letter or digit",
    ),
    "app": ("app section", "use a mapping with either `build:` or `image:`"),
    "app.build": ("build directory", "use a directory path relative to nocrud.yaml"),
    "app.dockerfile": ("Dockerfile path", "use a file path relative to app.build"),
    "app.image": ("image name", "use an image reference such as myapp:1.2"),
    "app.command": ("command", _COMMAND_FIX),
    "app.port": ("port", "use a number from 1 to 65535"),
    "app.health_path": ("health path", "use a URL path starting with '/', such as /health"),
    "app.ready_when": ("readiness rule", ""),  # the choices come from the Literal type
    "app.env": ("env mapping", "use `NAME: value` lines"),
    "app.env.*": ("env value", "use a string; write true/false/yes/no/on/off in quotes"),
    "app.headers": ("headers mapping", 'use `Header-Name: value` lines, e.g. Accept: "*/*"'),
    "app.headers.*": ("header value", 'use a string, e.g. Accept: "*/*"'),
    "database": ("database section", _SECTION_FIX),
    "database.image": ("image name", "use an image reference such as nocrud/postgres:15"),
    "database.name": ("database name", _IDENTIFIER_FIX),
    "database.user": ("database user", _IDENTIFIER_FIX),
    "database.password": ("password", "use a string"),
    "database.migrate": ("command", _COMMAND_FIX),
    "database.seed": ("command", _COMMAND_FIX),
    "database.migrations": ("list of paths", "use a list of files or directories"),
    "database.seed_sql": ("SQL file path", "use a .sql file path relative to nocrud.yaml"),
    "database.source": ("schema source", ""),  # the choices come from the Literal type
    "database.dump": (
        "SQL dump path",
        "use a plain-SQL file from `pg_dump --no-owner --no-privileges`, relative to nocrud.yaml",
    ),
    "database.external": ("external server section", "use a mapping with `url:`"),
    "database.external.url": (
        "PostgreSQL URL",
        "use postgresql://USER:PASSWORD@HOST:PORT/DBNAME (env NOCRUD_EXTERNAL_URL)",
    ),
    "database.external.app_host": (
        "HOST:PORT",
        "write the server's address as app containers reach it, e.g. pg.internal:5432",
    ),
    "database.external.network": ("Docker network name", "use the name of an existing network"),
    "flows": ("flows section", _SECTION_FIX),
    "flows.path": ("flows directory", "use a package directory relative to nocrud.yaml"),
    "run": ("run section", _SECTION_FIX),
    "run.parallel": ("worker count", "use an integer >= 1, or null for one per CPU"),
    "run.strategy": ("strategy", ""),  # the choices come from the Literal type
    "run.keep_failed": ("true/false value", "use true or false"),
    "run.warm": ("number of warm environments", "use an integer >= 0 (0: none ahead)"),
    "run.pool_max_uses": ("flows per pool pair", "use an integer >= 1"),
    "run.pool_app_reload": ("restart or a signal name", "use restart, or e.g. HUP"),
    "run.keep_pool": (
        "idle time",
        "use e.g. 10m, 90s or 1h (0 or false: off; env NOCRUD_KEEP_POOL)",
    ),
    "run.keep_pool_max": ("number of kept pairs", "use an integer >= 1"),
    "store": ("store section", _SECTION_FIX),
    "store.url": (
        "database URL",
        "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB (env NOCRUD_STORE_URL)",
    ),
    "store.keep_runs": ("number of runs", "use an integer >= 1 (env NOCRUD_STORE_KEEP_RUNS)"),
    "store.keep_days": (
        "number of days",
        "use a number greater than 0, e.g. 30 (env NOCRUD_STORE_KEEP_DAYS)",
    ),
    "timeouts": ("timeouts section", _SECTION_FIX),
    "timeouts.*": ("timeout", "use a number of seconds greater than 0"),
}

#: Error type -> what was expected, for values the table above does not cover.
_EXPECTED: dict[str, str] = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "number_type": "expected a number, not true/false",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping (`key: value` lines)",
    "model_type": "expected a mapping (`key: value` lines)",
    "path_type": "expected a path",
}


class ConfigError(UsageError):
    """Everything wrong with the configuration; ``str()`` lists each problem on its own line."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems: tuple[str, ...] = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


def problem(text: str) -> PydanticCustomError:
    """An error for a validator to raise whose ``text`` already reads as a full message."""
    return PydanticCustomError(PROBLEM, "{text}", {"text": text})


def read_yaml(source: Path, where: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``source``, shown to people as ``where``.

    Raises:
        ConfigError: The file cannot be read, is not YAML, is empty or is not a mapping.
    """
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot be read ({exc.strerror}): check its permissions"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: is not UTF-8 text: save it as UTF-8") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"{where}:{at} invalid YAML ({what}): fix the syntax there") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML ({exc}): fix the syntax") from None
    if data is None:
        raise ConfigError(
            f"{where}: the file is empty: add at least `project:` and an `app:` section "
            "(see docs/config.md)"
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r})"
        raise ConfigError(
            f"{where}: the top level is {kind}, not a mapping: "
            "write `key: value` lines such as `project: myapp`"
        )
    return data


def describe_errors(
    errors: Sequence[ErrorDetails],
    model: type[BaseModel],
    origin_of: Callable[[str], str],
) -> list[str]:
    """Turn pydantic error entries into ``<origin>: <key>: <problem and fix>`` lines.

    Args:
        errors: ``ValidationError.errors()`` of validating ``model``.
        model: The top-level model, walked to suggest keys that exist.
        origin_of: Maps a dotted key to where its value came from, e.g.
            ``nocrud.yaml`` or ``NOCRUD_PARALLEL=abc``.

    Returns:
        One message per error, in pydantic's order.
    """
    lines = []
    for error in errors:
        loc = tuple(error["loc"])
        key = _dotted(loc) or "(top level)"
        lines.append(f"{origin_of(key)}: {key}: {_describe(error, loc, model)}")
    return lines


def _describe(  # noqa: PLR0911 - one early return per kind of error reads as a table
    error: ErrorDetails, loc: tuple[str | int, ...], model: type[BaseModel]
) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == PROBLEM:
        return str(ctx["text"])
    if kind == "extra_forbidden":
        return _unknown_key(loc, model)
    if kind == "invalid_key":
        return f"{_show(error['input'])} is not a valid key: keys are names, write it in quotes"
    if loc and loc[-1] == "[key]" and loc[:2] == ("app", "headers"):
        return (
            f"{_show(error['input'])} is not an HTTP header name: use letters, digits and "
            "'-' (no spaces or ':'), e.g. Accept or X-Api-Version"
        )
    if loc and loc[-1] == "[key]":
        return (
            f"{_show(error['input'])} is not a valid variable name: "
            "use letters, digits and '_', not starting with a digit"
        )
    noun, fix = _lookup(loc)
    if kind == "missing":
        parent = f"under `{_dotted(loc[:-1])}:`" if len(loc) > 1 else "at the top level"
        return f"is required: add `{loc[-1]}:` {parent}; {fix}"
    shown = "(hidden)" if _is_secret(loc) else _show(error.get("input"))
    if kind == "literal_error":
        choices = [str(choice) for choice in _literal_choices(_annotation(model, loc))]
        hint = _did_you_mean(str(error.get("input")), choices)
        return f"{shown} is not a valid {noun or 'choice'}: use one of {', '.join(choices)}{hint}"
    if noun:
        return f"{shown} is not a valid {noun}: {fix}"
    return f"{shown} is not valid here: {_EXPECTED.get(kind, 'see docs/config.md')}"


def _literal_choices(annotation: Any) -> list[Any]:
    """The values of a ``Literal``, also inside an optional one (``Literal[...] | None``)."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [c for arg in typing.get_args(annotation) for c in _literal_choices(arg)]


def _unknown_key(loc: tuple[str | int, ...], model: type[BaseModel]) -> str:
    leaf = str(loc[-1])
    names = _field_names(model, loc[:-1])
    hint = _did_you_mean(leaf, names)
    if hint:
        return f"unknown key{hint}"
    elsewhere = [key for key in _all_keys(model) if key.rsplit(".", 1)[-1] == leaf]
    if elsewhere:
        return f"unknown key here: it belongs at {elsewhere[0]}"
    return f"unknown key: remove it (keys allowed here: {', '.join(names)})"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def _lookup(loc: tuple[str | int, ...]) -> tuple[str, str]:
    key = _pattern(loc)
    if key in _FIELDS:
        return _FIELDS[key]
    parent = key.rpartition(".")[0]
    return _FIELDS.get(f"{parent}.*", ("", "see docs/config.md"))


def _pattern(loc: tuple[str | int, ...]) -> str:
    return "".join("[]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _dotted(loc: tuple[str | int, ...]) -> str:
    return "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc if part != "[key]"
    ).lstrip(".")


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    key = _pattern(loc)
    return key == "database.password" or (
        key.startswith("app.env.") and is_secret_name(str(loc[-1]))
    )


def _annotation(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type annotation of the field at ``loc``, or None when there is no such field."""
    current: Any = model
    annotation: Any = None
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        annotation = current = field.annotation
    return annotation


def _field_names(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    section = _annotation(model, loc) if loc else model
    if isinstance(section, type) and issubclass(section, BaseModel):
        return list(section.model_fields)
    return []


def _all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys.extend(_all_keys(field.annotation, f"{prefix}{name}."))
    return keys


def _show(value: Any) -> str:
    """A value as the user would have written it in YAML, cut short when long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    text = mask_text(text)  # a bad value may still hold a URL with a password
    return text if len(text) <= 60 else text[:57] + "..."
