"""The fifth step of the data path: one flow, in its own environment, into a FlowResult.

:mod:`~nocrud.execute.executor` asks the provisioner for the flow's environment,
runs the flow on a thread of its own under a timeout, classifies the outcome
(FAILED or ERROR) and keeps the evidence.
"""

from nocrud.execute.executor import FlowExecutor

__all__ = ["FlowExecutor"]
