"""The flow author's API: declaring flows, what they receive, building and selecting them.

A flow is a function taking a :class:`FlowContext` and failing by raising. The
modules here are what a flow author touches: :mod:`~nocrud.flows.context` (the
context), :mod:`~nocrud.flows.discovery` (``@flow``, ``param``, discovery),
:mod:`~nocrud.flows.crud` (declared CRUD flows), :mod:`~nocrud.flows.builders`
(prerequisites and unique values), :mod:`~nocrud.flows.selection` (``-f``,
``-k``, ``-m``) and :mod:`~nocrud.flows.scaffold` (``nocrud new``). Nothing here
imports Docker: the runner hands a flow its app's URL and its database address.
"""

from nocrud.flows.context import DEFAULT_LOGIN_PATH, FlowContext
from nocrud.flows.discovery import Flow, FlowDiscoveryError, declare, discover, flow, param
from nocrud.flows.selection import SelectionError, keyword_matcher, select, tag_matcher

__all__ = [
    "DEFAULT_LOGIN_PATH",
    "Flow",
    "FlowContext",
    "FlowDiscoveryError",
    "SelectionError",
    "declare",
    "discover",
    "flow",
    "keyword_matcher",
    "param",
    "select",
    "tag_matcher",
]
