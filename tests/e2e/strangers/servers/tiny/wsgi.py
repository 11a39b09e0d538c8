"""The WSGI app, for gunicorn's sync and gthread workers."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
