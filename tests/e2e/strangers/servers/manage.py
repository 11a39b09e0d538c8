#!/usr/bin/env python3
"""Django's command line for the tiny app (``python3 manage.py runserver 0.0.0.0:8000``)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tiny.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
