"""The ASGI app, for uvicorn alone and gunicorn's uvicorn workers."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
