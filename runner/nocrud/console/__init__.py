"""``nocrud serve``: a web console over the run store.

Pages and a JSON API (FastAPI, Jinja2, a little plain JavaScript) for the runs the store
holds: history with filters and a chart, a run's failures with their request, response,
app logs and a ``curl`` line, live progress over server-sent events, a flow's history
with a flaky mark, and a form that starts, cancels and reruns runs. A run it starts is
a ``nocrud up`` process reporting back to it (:mod:`nocrud.console.launcher`), so the
console imports nothing of Docker or the runner (an import-linter contract says so).
Its modules import FastAPI: import :func:`create_app` from :mod:`nocrud.console.app`.
"""

from __future__ import annotations

__all__: list[str] = []
