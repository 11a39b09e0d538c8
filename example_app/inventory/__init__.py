"""Lab inventory: a small Flask + PostgreSQL API that nocrud's flows are tested against.

Sites hold computers and freezers; freezers hold containers. :func:`create_app` is the
only entry point (gunicorn calls ``inventory:create_app()``); the schema comes from the
SQL files in ``migrations/``, applied by ``python3 -m inventory.migrate``.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from inventory import auth, crud, db, health, openapi, sites
from inventory.config import Settings
from inventory.errors import register_error_handlers
from inventory.resources import RESOURCES

__all__ = ["create_app"]


def create_app(database_url: str | None = None, *, settings: Settings | None = None) -> Flask:
    """Create the app. Nothing connects to the database until a request needs it.

    Args:
        database_url: libpq URL; overrides ``DATABASE_URL`` from the environment.
        settings: Complete settings; read from the environment when None.

    Returns:
        The Flask app.
    """
    settings = settings or Settings.from_env(database_url=database_url)
    app = Flask(__name__, static_folder=None)
    app.config[auth.TTL_CONFIG_KEY] = settings.token_ttl_seconds
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep column order in output
    db.init_app(
        app,
        db.Database(
            settings.database_url,
            max_idle=settings.pool_size,
            connect_timeout=settings.connect_timeout,
        ),
    )
    register_error_handlers(app)

    api = Blueprint("api", __name__, url_prefix="/api")
    for resource in RESOURCES:
        crud.register(api, resource)
    sites.register(api)
    app.register_blueprint(api)
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    return app
