"""WSGI entry point for gunicorn (``gunicorn djangoshop.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoshop.settings")
application = get_wsgi_application()
