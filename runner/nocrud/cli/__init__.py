"""The ``nocrud`` command line: a thin layer of click over :mod:`nocrud.workflow`.

:mod:`~nocrud.cli.main` holds the group, which imports each command's module on demand.
"""

from nocrud.cli.main import main

__all__ = ["main"]
