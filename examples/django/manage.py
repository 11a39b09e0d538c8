#!/usr/bin/env python3
"""Django's command-line utility for the djangoshop example (migrate, runserver, shell)."""

import os
import sys


def main() -> None:
    """Run a Django management command with the example's settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoshop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
