"""Reporters of a run: the terminal, JUnit XML and the JSON results file.

Every reporter reads only the values in :mod:`nocrud.results`; none reaches back
into Docker or the scheduler, so a run read back from JSON reports the same way.
"""

from nocrud.report.json_report import read_json, write_json
from nocrud.report.junit import write_junit
from nocrud.report.terminal import TerminalReporter, format_steps, format_totals

__all__ = [
    "TerminalReporter",
    "format_steps",
    "format_totals",
    "read_json",
    "write_json",
    "write_junit",
]
