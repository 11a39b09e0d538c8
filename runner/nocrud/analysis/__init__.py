"""What a finished run says beyond pass and fail: endpoint coverage and request timings.

:mod:`~nocrud.analysis.coverage` compares the requests flows made with the app's
OpenAPI document; :mod:`~nocrud.analysis.perf` keeps per-endpoint timings and
compares them with a baseline. Both read :class:`~nocrud.results.RunResult`
values, never Docker.
"""
