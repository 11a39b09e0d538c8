"""The ``nocrud`` command line: a thin layer of click over :mod:`nocrud.workflow`."""

from nocrud.cli.main import main

__all__ = ["main"]
