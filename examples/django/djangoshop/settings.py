"""Settings of the djangoshop example, read from environment variables.

The database is ``DATABASE_URL`` (``postgresql://user:password@host:port/name``, as
nocrud renders ``{database_url}``), or the ``DB_HOST``, ``DB_PORT``, ``DB_NAME``,
``DB_USER`` and ``DB_PASSWORD`` variables. A missing or malformed setting stops the app
at start-up with a message naming the variable. The code runs on Django 3.2 and DRF 3.14
(Debian bookworm, in the image) as well as on the current Django and DRF from PyPI (the
host's tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_INSECURE_KEY = "djangoshop-example-key-for-tests-only-set-DJANGO_SECRET_KEY-in-production"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use 1/true/yes or 0/false/no")


def database_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``default`` database from ``DATABASE_URL`` or the ``DB_*`` variables.

    Raises:
        ImproperlyConfigured: Neither is set, or the URL is not a PostgreSQL URL.
    """
    url = environ.get("DATABASE_URL", "").strip()
    options: dict[str, Any] = {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60}
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
            raise ImproperlyConfigured(
                "DATABASE_URL must look like postgresql://USER:PASSWORD@HOST:PORT/NAME "
                f"(got scheme {parts.scheme!r} and database {parts.path.strip('/')!r})"
            )
        return {
            **options,
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    if not environ.get("DB_NAME"):
        raise ImproperlyConfigured(
            "set DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/NAME) or DB_HOST, "
            "DB_PORT, DB_NAME, DB_USER and DB_PASSWORD"
        )
    return {
        **options,
        "NAME": environ["DB_NAME"],
        "USER": environ.get("DB_USER", ""),
        "PASSWORD": environ.get("DB_PASSWORD", ""),
        "HOST": environ.get("DB_HOST", ""),
        "PORT": environ.get("DB_PORT", ""),
    }


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _INSECURE_KEY
DEBUG = _flag("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "rest_framework.authtoken",
    "djangoshop.accounts",
    "djangoshop.catalog",
    "djangoshop.inventory",
    "djangoshop.orders",
    "djangoshop.audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "djangoshop.urls"
WSGI_APPLICATION = "djangoshop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {"default": database_from_environment(os.environ)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/api/auth/me/"
# The API is JSON only: no browsable API, so no static files to serve.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "djangoshop.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "djangoshop.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "djangoshop.api.ShopSchema",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}
