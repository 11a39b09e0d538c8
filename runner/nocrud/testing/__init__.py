"""nocrud for pytest suites: the ``nocrud`` pytest plugin and what its fixtures hold.

:mod:`nocrud.testing.plugin` is the pytest11 entry point (options, marker, fixtures,
failure sections; nothing heavy imported until a test asks for a fixture);
:mod:`nocrud.testing.session` runs ``nocrud up``'s steps once per process and hands each
test its own environment; :mod:`nocrud.testing.evidence` shapes a failing test's report.
"""

from __future__ import annotations

__all__: list[str] = []
