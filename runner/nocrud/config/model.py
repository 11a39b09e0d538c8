"""The nocrud.yaml model: loading, validation and precedence of every setting.

This module owns the one typed, frozen :class:`Config` that the rest of nocrud
reads, and :func:`load_config`, the only place that decides where a value comes
from: model default < ``nocrud.yaml`` < environment < command line. Relative
paths in the file are resolved against the file's directory and checked to exist.
Every mistake, wherever it came from, ends up in one :class:`ConfigError` that
lists all of them, one line each, naming the source, the dotted key, the bad
value and the fix (the wording lives in :mod:`nocrud.config.errors`).

Environment variables, read from the mapping passed to :func:`load_config`
(``os.environ`` at call time, never at import time); an empty value counts as unset:

- ``NOCRUD_CONFIG``: the config file to load (a ``--config`` path wins over it).
- ``NOCRUD_PARALLEL`` -> ``run.parallel`` (integer >= 1).
- ``NOCRUD_STRATEGY`` -> ``run.strategy`` (image, pool, template, migrate or external).
- ``NOCRUD_KEEP_FAILED`` -> ``run.keep_failed`` (1/true/yes or 0/false/no).
- ``NOCRUD_KEEP_POOL`` -> ``run.keep_pool`` (an idle time such as 10m, or 0 for off).
- ``NOCRUD_TIMEOUT`` -> ``timeouts.flow`` (seconds).
- ``NOCRUD_APP_IMAGE`` -> ``app.image``; also clears ``app.build``.
- ``NOCRUD_DB_IMAGE`` -> ``database.image``.
- ``NOCRUD_EXTERNAL_URL`` -> ``database.external.url`` (the ``external`` strategy's server).
- ``NOCRUD_STORE_URL`` -> ``store.url``; ``NOCRUD_STORE_KEEP_RUNS`` -> ``store.keep_runs``;
  ``NOCRUD_STORE_KEEP_DAYS`` -> ``store.keep_days`` (the run store's history).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from nocrud.config.errors import ConfigError, describe_errors, problem, read_yaml
from nocrud.masking import MASK, mask_mapping, mask_text, mask_url

__all__ = [
    "CONFIG_FILENAME",
    "ENV_VARS",
    "MASK",
    "PLACEHOLDERS",
    "AppConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "ExternalConfig",
    "FlowsConfig",
    "RunConfig",
    "StoreConfig",
    "StrategyName",
    "TimeoutsConfig",
    "find_config",
    "load_config",
]

CONFIG_FILENAME: Final = "nocrud.yaml"

#: Environment variable -> the dotted key it sets (``NOCRUD_CONFIG`` picks the file instead).
ENV_VARS: Final[Mapping[str, str]] = {
    "NOCRUD_PARALLEL": "run.parallel",
    "NOCRUD_STRATEGY": "run.strategy",
    "NOCRUD_KEEP_FAILED": "run.keep_failed",
    "NOCRUD_KEEP_POOL": "run.keep_pool",
    "NOCRUD_TIMEOUT": "timeouts.flow",
    "NOCRUD_APP_IMAGE": "app.image",
    "NOCRUD_DB_IMAGE": "database.image",
    "NOCRUD_EXTERNAL_URL": "database.external.url",
    "NOCRUD_STORE_URL": "store.url",
    "NOCRUD_STORE_KEEP_RUNS": "store.keep_runs",
    "NOCRUD_STORE_KEEP_DAYS": "store.keep_days",
}

#: Placeholders allowed in app.env values, filled by :meth:`Config.render_app_env`.
PLACEHOLDERS: Final = frozenset(
    {"database_url", "db_host", "db_port", "db_name", "db_user", "db_password"}
)

#: How a flow's database is provisioned (one module each in nocrud.environment).
StrategyName = Literal["image", "pool", "template", "migrate", "external"]
#: Where a database's schema comes from: the migrate command, or a plain-SQL pg_dump file.
SourceName = Literal["migrate", "dump"]
#: Hosts that mean "this machine" to nocrud but "this container" to an app container.
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # noqa: S104

_CLI_ORIGIN = "command line"
#: Keys holding URLs that may carry a password, even when malformed.
_URLS: Final = frozenset({"store.url", "database.external.url"})


# --- field types --------------------------------------------------------------


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """``value`` made absolute against the config file's directory."""
    root = info.context.get("root") if isinstance(info.context, dict) else None
    return (Path(root or Path.cwd()) / value.expanduser()).resolve()


def _require(value: Path, path: Path, kind: str) -> None:
    if not path.exists():
        raise problem(f"'{value}' does not exist (looked for {path}): create it or fix the path")
    if kind == "directory" and not path.is_dir():
        raise problem(f"'{value}' is not a directory ({path}): point it at a directory")
    if kind == "file" and not path.is_file():
        raise problem(f"'{value}' is not a file ({path}): point it at a file")


def _existing(kind: str) -> AfterValidator:
    def check(value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        _require(value, path, kind)
        return path

    return AfterValidator(check)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # YAML's yes/no/true/false are bools, and bool is an int
        raise PydanticCustomError("number_type", "not a number")  # worded per key on output
    return value


def _split_command(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise problem(f"{value!r} cannot be split into arguments ({exc}): fix the quotes") from None


def _check_placeholders(value: str) -> str:
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value)]
    except ValueError:
        raise problem(
            f"{value!r} has an unmatched '{{' or '}}': write {{{{ or }}}} for a literal brace"
        ) from None
    for name, spec, conversion in fields:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            known = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            raise problem(f"{value!r} uses unknown placeholder {{{name}}}: use one of {known}")
    return value


#: ``run.keep_pool: true`` keeps the pool this long after the last run that used it.
KEEP_POOL_DEFAULT_IDLE = 600.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h)?")
_SECONDS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def _idle_time(value: Any) -> Any:
    """An idle time in seconds: ``10m``, ``90s``, ``1h``, a number of seconds; off or on."""
    if isinstance(value, bool):
        return KEEP_POOL_DEFAULT_IDLE if value else 0.0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "0", "off", "false", "no"):
            return 0.0
        if text in ("on", "true", "yes"):
            return KEEP_POOL_DEFAULT_IDLE
        match = _DURATION.fullmatch(text)
        if match is None:
            raise problem(
                f"{value!r} is not an idle time: use e.g. 10m, 90s or 1h (0 or false: off)"
            )
        return float(match.group(1)) * _SECONDS[match.group(2)]
    return value


def _app_reload(value: Any) -> Any:
    """``restart``, or a signal name written the way ``kill -s`` takes it (``HUP``, ``SIGHUP``)."""
    if not isinstance(value, str):
        return value
    if value == "restart":
        return value
    name = value.upper().removeprefix("SIG")
    if f"SIG{name}" not in signal.Signals.__members__ or name in ("KILL", "STOP"):
        raise problem(
            f"{value!r} is neither 'restart' nor a signal the app can handle: use restart "
            "(any app), or the signal that makes its server fork new workers, e.g. HUP for "
            "gunicorn --preload"
        )
    return name


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _context_path(value: str) -> str:
    """A path inside the build context: relative, without ``..``, written with ``/``."""
    parts = value.split("/")
    if value.startswith("/") or not value.strip("/") or ".." in parts or "\\" in value:
        raise problem(
            f"{value!r} is not a path inside the build context: write a relative path "
            "without '..', e.g. wheels or config/app.toml"
        )
    return "/".join(part for part in parts if part not in ("", "."))


_Directory = Annotated[Path, _existing("directory")]
_File = Annotated[Path, _existing("file")]
_AnyPath = Annotated[Path, _existing("any")]
_Command = Annotated[tuple[str, ...], BeforeValidator(_split_command), Field(min_length=1)]
_Identifier = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
_ImageRef = Annotated[str, Field(pattern=r"^\S+$")]
_Seconds = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
_EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
_EnvValue = Annotated[str, AfterValidator(_check_placeholders)]
_ContextPath = Annotated[str, AfterValidator(_context_path)]
#: An HTTP header name (RFC 9110's token characters).
_HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]


def _section() -> Any:
    # Validated like a section written as `name: {}`, so its path defaults get
    # the same resolution and checks as values from the file.
    return Field(default_factory=dict, validate_default=True)


# --- the model ----------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, data: Any) -> Any:
        # `run:` with every key commented out is YAML null; it means "all defaults".
        return _none_as_empty(data)


#: When an app counts as ready: ``healthy`` (GET app.health_path answers 2xx), ``answers``
#: (any answer below 500 there: apps without a health endpoint), ``listening`` (any HTTP
#: answer at all).
ReadyWhen = Literal["healthy", "answers", "listening"]


class AppConfig(_Section):
    """The application under test: how to get its image and how to run it.

    Paths are absolute; ``dockerfile`` is ``build / dockerfile`` when ``build`` is
    set (left as written otherwise). Exactly one of ``build`` and ``image`` is set.
    ``command`` is an argument tuple (a string in the file is split with shlex).
    ``env`` values may hold placeholders; see :meth:`Config.render_app_env`.
    """

    build: _Directory | None = None
    dockerfile: Path = Field(default=Path("Dockerfile"), validate_default=True)
    image: _ImageRef | None = None
    command: _Command | None = None
    port: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=65535)] = 8000
    health_path: Annotated[str, Field(pattern=r"^/\S*$")] = "/health"
    ready_when: ReadyWhen = "healthy"
    #: Where the app's OpenAPI document is, for ``nocrud coverage`` and ``nocrud new``: a path
    #: the app serves (``/api/schema/``), an http(s) URL, or a file (relative to nocrud.yaml).
    #: Unset, a run tries the usual paths (``/openapi.json``, ...) on the first app.
    openapi: Annotated[str, Field(pattern=r"^\S+$")] | None = None
    env: Annotated[dict[_EnvName, _EnvValue], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    #: Headers sent with every request nocrud makes to the app (flows' clients, the OpenAPI
    #: fetch), over the client's defaults: ``Accept: "*/*"`` for an app that answers 406 to
    #: ``Accept: application/json`` (drf_yasg's schema views).
    headers: Annotated[dict[_HeaderName, str], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    #: ``docker build --build-arg NAME=value``; part of the app image's cache key.
    build_args: Annotated[dict[_EnvName, str], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    #: Files or directories from outside ``build`` added to its build context without
    #: moving it: ``path inside the context: path relative to nocrud.yaml`` (a wheelhouse
    #: for an offline build, vendored code, a config file). Part of the cache key.
    add_to_context: Annotated[dict[_ContextPath, _AnyPath], BeforeValidator(_none_as_empty)] = (
        Field(default_factory=dict)
    )

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile_in_build(cls, value: Path, info: ValidationInfo) -> Path:
        """Resolve against ``build``; left as written when there is nothing to build."""
        build: Path | None = info.data.get("build")
        if build is None:
            return value
        path = (build / value).resolve()
        _require(value, path, "file")
        return path

    @model_validator(mode="after")
    def _build_or_image(self) -> AppConfig:
        if (self.build is None) == (self.image is None):
            which = "both are set" if self.build else "neither is set"
            raise problem(
                f"{which}: set exactly one of app.build (a directory to build the app "
                "image from) or app.image (an existing image)"
            )
        if self.image is not None and (self.build_args or self.add_to_context):
            key = "build_args" if self.build_args else "add_to_context"
            raise problem(
                f"app.{key} is set but app.image names an existing image, which nocrud does "
                f"not build: remove app.{key}, or set app.build instead of app.image"
            )
        return self


def _check_server_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise problem(
            f"{mask_url(value)!r} is not a PostgreSQL URL: write "
            "postgresql://USER:PASSWORD@HOST:PORT/DBNAME (a role that may create databases)"
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise problem(f"{mask_url(value)!r} has a bad port: use a number") from None
    return value


class ExternalConfig(_Section):
    """The PostgreSQL server the ``external`` strategy uses, which the user runs.

    ``url`` is how this process reaches it (a role that may create databases);
    ``app_host`` (``HOST:PORT``) is how app containers reach it when that differs
    (a server on this machine's loopback, a service on a Docker network), and
    ``network`` an existing Docker network the app containers join to reach it.
    """

    url: Annotated[str | None, AfterValidator(_check_server_url)] = None
    app_host: Annotated[str, Field(pattern=r"^[^\s:/]+:\d{1,5}$")] | None = None
    network: Annotated[str, Field(pattern=r"^\S+$")] | None = None


class DatabaseConfig(_Section):
    """The PostgreSQL database each flow gets, and how its schema is made.

    ``migrate`` and ``seed`` are argument tuples or None; ``migrations``,
    ``seed_sql`` and ``dump`` are absolute paths that exist. ``source`` says
    whether the schema comes from the migrate command or the dump; left unset,
    it is ``dump`` when a dump is given, else ``migrate`` (see :attr:`schema_source`).
    """

    image: _ImageRef = "nocrud/postgres:15"
    #: A PostgreSQL major nocrud builds itself, offline too (15: Debian bookworm's, 17:
    #: trixie's): ``image`` becomes ``nocrud/postgres:<version>``. Any other major: ``image``.
    version: Literal[15, 17] | None = None
    name: _Identifier = "nocrud"
    user: _Identifier = "nocrud"
    password: SecretStr = SecretStr("nocrud")
    migrate: _Command | None = None
    migrations: Annotated[tuple[_AnyPath, ...], BeforeValidator(_one_or_many)] = ()
    seed_sql: _File | None = None
    seed: _Command | None = None
    source: SourceName | None = None
    dump: _File | None = None
    external: ExternalConfig = _section()

    @model_validator(mode="after")
    def _version_or_image(self) -> DatabaseConfig:
        if self.version is None:
            return self
        wanted = f"nocrud/postgres:{self.version}"
        if "image" in self.model_fields_set and self.image != wanted:
            raise problem(
                f"database.version {self.version} and database.image {self.image!r} disagree: "
                f"set only one (version {self.version} means {wanted}; image names any "
                "PostgreSQL image, e.g. postgres:13 where a registry is reachable)"
            )
        object.__setattr__(self, "image", wanted)  # frozen model: filled in once, here
        return self

    @model_validator(mode="after")
    def _source_and_dump(self) -> DatabaseConfig:
        if self.source == "dump" and self.dump is None:
            raise problem(
                "database.source is 'dump' but database.dump is not set: set database.dump "
                "to a plain-SQL file from `pg_dump --no-owner --no-privileges`, or use "
                "database.source: migrate"
            )
        if self.source == "migrate" and self.dump is not None:
            raise problem(
                "database.dump is set but database.source is 'migrate': remove database.dump, "
                "or set database.source: dump to load it instead of running database.migrate"
            )
        return self

    @property
    def schema_source(self) -> SourceName:
        """``dump`` when the schema is loaded from :attr:`dump`, else ``migrate``."""
        if self.source is not None:
            return self.source
        return "dump" if self.dump is not None else "migrate"


class FlowsConfig(_Section):
    """Where the flows live."""

    path: _Directory = Field(default=Path("flows"), validate_default=True)


class RunConfig(_Section):
    """How a run is scheduled."""

    parallel: Annotated[int, BeforeValidator(_not_bool), Field(ge=1)] | None = None
    strategy: StrategyName = "image"
    keep_failed: bool = False
    #: Environments kept ready ahead of demand (fresh pairs for image, reset pairs for pool).
    warm: Annotated[int, BeforeValidator(_not_bool), Field(ge=0)] = 0
    #: Flows a pool pair serves before it is rebuilt (the pool strategy).
    pool_max_uses: Annotated[int, BeforeValidator(_not_bool), Field(ge=1)] = 100
    #: How a pool pair's app process is renewed between flows: ``restart`` its container,
    #: or send this signal (``HUP``) to a server that then forks new workers from a master
    #: that never served a request (gunicorn with --preload).
    pool_app_reload: Annotated[str, BeforeValidator(_app_reload)] = "restart"
    #: The pool strategy: keep the pool's pairs after the run, for the next run (``up``, the
    #: pytest plugin, ``watch``) to take them reset, for this many seconds after the last
    #: run that used them ends (0: off, the pairs go with the run).
    keep_pool: Annotated[float, BeforeValidator(_idle_time), Field(ge=0)] = 0.0
    #: Most pairs a kept pool holds between runs (each costs memory while it waits).
    keep_pool_max: Annotated[int, BeforeValidator(_not_bool), Field(ge=1)] = 4


def _shown_url(value: str) -> str:
    """``value`` as an error may show it: masked, and a malformed one's userinfo hidden too."""
    masked = mask_url(value)
    if masked != value or "@" not in value:
        return masked
    return f"{MASK}@{value.rpartition('@')[2]}"  # too malformed to parse: hide all before '@'


def _check_store_url(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, sep, rest = value.partition("://")
    if (
        not sep
        or not rest
        or not scheme.replace("+", "").replace("_", "").isalnum()
        or any(c.isspace() for c in value)
    ):
        raise problem(
            f"{_shown_url(value)!r} is not a database URL: write sqlite:///PATH (relative to "
            "nocrud.yaml, or sqlite:////ABSOLUTE/PATH) or postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    return value


class StoreConfig(_Section):
    """The run store: where every run's history is recorded, and how much of it is kept.

    ``url`` is a SQLAlchemy URL; unset, the history is SQLite in ``.nocrud/history.db``
    next to nocrud.yaml (see :attr:`Config.store_url`, which also resolves a relative
    SQLite path against the file's directory). Retention deletes finished runs beyond
    the newest ``keep_runs`` and those older than ``keep_days``.
    """

    url: Annotated[str | None, AfterValidator(_check_store_url)] = None
    keep_runs: Annotated[int, BeforeValidator(_not_bool), Field(ge=1)] = 1000
    keep_days: Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)] = 90.0


class TimeoutsConfig(_Section):
    """Limits, in seconds."""

    db_ready: _Seconds = 30.0
    app_ready: _Seconds = 60.0
    flow: _Seconds = 300.0
    build: _Seconds = 900.0


class Config(_Section):
    """The whole of nocrud.yaml after precedence, validation and path resolution."""

    project: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    app: AppConfig
    database: DatabaseConfig = _section()
    flows: FlowsConfig = _section()
    run: RunConfig = _section()
    timeouts: TimeoutsConfig = _section()
    store: StoreConfig = _section()

    _source: Path = PrivateAttr(default_factory=lambda: Path.cwd() / CONFIG_FILENAME)

    @model_validator(mode="after")
    def _strategy_settings(self) -> Config:
        external = self.database.external
        if self.run.strategy != "external":
            return self
        if external.url is None:
            raise problem(
                "run.strategy is 'external' but database.external.url is not set: set it (or "
                "NOCRUD_EXTERNAL_URL) to postgresql://USER:PASSWORD@HOST:PORT/DBNAME of a "
                "server you run, as a role that may create databases"
            )
        host = urlsplit(external.url).hostname or ""
        if host in _LOOPBACK and external.app_host is None:
            raise problem(
                f"database.external.url points at {host}, which inside an app container is "
                "the container itself: set database.external.app_host to HOST:PORT as "
                "containers reach the server (e.g. host.docker.internal:5432, or a service "
                "name on database.external.network)"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Remember the file this was loaded from (passed in the validation context)."""
        if isinstance(context, dict) and "source" in context:
            self._source = context["source"]

    @property
    def source(self) -> Path:
        """The config file, absolute."""
        return self._source

    @property
    def root(self) -> Path:
        """The directory of the config file; relative paths in it start here."""
        return self._source.parent

    @property
    def app_image_repo(self) -> str:
        """Repository of the app image nocrud builds, e.g. ``nocrud/example-app``."""
        return f"nocrud/{self.project}-app"

    @property
    def db_image_repo(self) -> str:
        """Repository of the pre-migrated database image, e.g. ``nocrud/example-db``."""
        return f"nocrud/{self.project}-db"

    @property
    def parallel(self) -> int:
        """How many flows run at once: ``run.parallel``, or one per CPU when unset."""
        return self.run.parallel or os.cpu_count() or 1

    @property
    def store_url(self) -> str:
        """The run store's URL, with the default and relative SQLite paths filled in.

        ``store.url`` (a relative SQLite path made absolute against nocrud.yaml's
        directory, as every relative path in the file is), else SQLite in
        ``.nocrud/history.db`` beside the file.
        """
        url = self.store.url
        if url is None:
            return f"sqlite:///{self.root / '.nocrud' / 'history.db'}"
        scheme, _, rest = url.partition("://")
        if not scheme.startswith("sqlite") or not rest.startswith("/") or rest == "/:memory:":
            return url
        written = rest[1:]  # sqlite:///history.db is relative, sqlite:////srv/h.db absolute
        path = Path(written).expanduser()
        return f"{scheme}:///{path if path.is_absolute() else self.root / path}"

    def render_app_env(
        self,
        db_host: str,
        db_port: int,
        *,
        name: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> dict[str, str]:
        """The app container's environment, placeholders filled for one database.

        Args:
            db_host: Host name (or address) under which the app reaches the database.
            db_port: Port of the database at that host.
            name: The flow's own database name, when not ``database.name``.
            user: The flow's own role, when not ``database.user``.
            password: The environment's own password, when not ``database.password``.

        Returns:
            ``app.env`` with ``{database_url}``, ``{db_host}``, ``{db_port}``,
            ``{db_name}``, ``{db_user}`` and ``{db_password}`` replaced.
        """
        db = self.database
        name = db.name if name is None else name
        user = db.user if user is None else user
        password = db.password.get_secret_value() if password is None else password
        host = f"[{db_host}]" if ":" in db_host else db_host  # an IPv6 address
        values = {
            "database_url": (
                f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
                f"@{host}:{db_port}/{name}"
            ),
            "db_host": db_host,
            "db_port": str(db_port),
            "db_name": name,
            "db_user": user,
            "db_password": password,
        }
        return {name: value.format_map(values) for name, value in self.app.env.items()}

    def to_display_dict(self) -> dict[str, Any]:
        """The configuration as plain data for ``nocrud config``, with secrets masked.

        Masked by :mod:`nocrud.masking`, as every report and request log is:
        ``database.password``, app.env values with a secret name (``DB_PASSWD``,
        ``API_TOKEN``, ``PRIVATE_KEY``, not ``sort_key``), and URL passwords, lone
        userinfo and secret parameters in any value.
        """
        masked: dict[str, Any] = mask_mapping(self.model_dump(mode="json"))
        return masked


# --- loading ------------------------------------------------------------------


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load, merge and validate the configuration.

    Precedence, lowest first: the model's defaults, the file, the environment,
    ``overrides``. A layer that sets ``app.image`` (and not ``app.build``) clears
    ``app.build``. Relative paths, from any layer, start at the file's directory.

    Args:
        path: The config file (or a directory holding ``nocrud.yaml``), as given
            with ``--config``. None: ``$NOCRUD_CONFIG``, else the nearest
            ``nocrud.yaml`` in the working directory or its parents.
        env: Environment variables; ``os.environ`` when None.
        overrides: Values from the command line by dotted key,
            e.g. ``{"run.parallel": 8, "timeouts.flow": 30}``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Listing every problem found, one per line.
    """
    environ = os.environ if env is None else env
    source = _locate(path, environ)
    where = _display(source)
    layers = _Layers(read_yaml(source, where), file_origin=where)  # defaults < file
    layers.apply(  # < environment
        (key, value.strip(), f"{var}={_shown_url(value) if key in _URLS else mask_text(value)}")
        for var, key in ENV_VARS.items()
        if (value := environ.get(var, "")).strip()
    )
    layers.apply((key, value, _CLI_ORIGIN) for key, value in (overrides or {}).items())  # < CLI
    try:
        return Config.model_validate(layers.data, context={"root": source.parent, "source": source})
    except ValidationError as exc:
        raise ConfigError(*describe_errors(exc.errors(), Config, layers.origin_of)) from None


def find_config(start: Path) -> Path | None:
    """The nearest ``nocrud.yaml`` in ``start`` or one of its parents, like git finds ``.git``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


class _Layers:
    """The raw mapping as layers are applied, and which layer set each dotted key."""

    def __init__(self, data: dict[str, Any], file_origin: str) -> None:
        self.data = data
        self._file_origin = file_origin
        self._origins: dict[str, str] = {}

    def apply(self, values: Iterable[tuple[str, Any, str]]) -> None:
        layer = {key: (value, origin) for key, value, origin in values}
        image = layer.get("app.image")
        if image is not None and image[0] is not None and "app.build" not in layer:
            layer["app.build"] = (None, image[1])
        for key, (value, origin) in layer.items():
            self._set(key, value, origin)

    def _set(self, dotted: str, value: Any, origin: str) -> None:
        *parents, leaf = dotted.split(".")
        node = self.data
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                return  # the file's own error about this section is the one to report
            node = child
        node[leaf] = value
        self._origins[dotted] = origin

    def origin_of(self, dotted: str) -> str:
        """Where the value at ``dotted`` (or its closest set parent) came from."""
        key = dotted
        while key:
            if key in self._origins:
                return self._origins[key]
            key = key.rpartition(".")[0]
        return self._file_origin


def _locate(path: Path | None, environ: Mapping[str, str]) -> Path:
    if path is not None:
        given, origin = Path(path), f"--config {path}"
    elif environ.get("NOCRUD_CONFIG", "").strip():
        given, origin = Path(environ["NOCRUD_CONFIG"].strip()), "NOCRUD_CONFIG"
    else:
        found = find_config(Path.cwd())
        if found is None:
            raise ConfigError(
                f"no {CONFIG_FILENAME} found in {Path.cwd()} or its parents: "
                "create one (see docs/config.md) or pass --config PATH"
            )
        return found
    given = given.expanduser()
    if given.is_dir():
        given /= CONFIG_FILENAME
    if not given.is_file():
        raise ConfigError(f"{origin}: no such file: {given.absolute()}: check the path")
    return given.resolve()


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
