"""``nocrud fuzz``: property-based API testing; every failure replayed in a clean environment.

Schemathesis generates the requests (stateless cases per operation, stateful sequences
through the document's links); nocrud decides where they run and what a failure means.
The modules follow the data path: :mod:`~nocrud.fuzz.plan` cuts the budget into units
(a batch of cases, or a batch of sequences) that each run in their own environment;
:mod:`~nocrud.fuzz.engine` runs one unit against one app with Schemathesis and records
every exchange; :mod:`~nocrud.fuzz.replay` replays each failure alone in a brand-new
environment and classifies it; :mod:`~nocrud.fuzz.report` shapes the findings into
blocks, curl scripts, JUnit and JSON; :mod:`~nocrud.fuzz.runner` drives it all through
the same workflow functions as ``nocrud up``.
"""

from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.fuzz.plan import FuzzOptions, Unit

__all__ = ["Exchange", "Finding", "FuzzOptions", "Unit", "Verdict"]
