"""``nocrud watch``: a front end that reruns flows on warm environments as files change.

:mod:`~nocrud.watch.changes` decides what a change means, :mod:`~nocrud.watch.loop` is the
long process over the workflow's own steps, :mod:`~nocrud.watch.report` prints a rerun.
"""

__all__: list[str] = []
