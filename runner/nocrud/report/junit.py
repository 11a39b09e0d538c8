"""The ``--junit`` report: a run as JUnit XML, for GitLab, GitHub and Jenkins test views.

The shape follows what pytest writes, which those parsers all accept: one
``<testsuites>`` holding one ``<testsuite name="nocrud">``, one ``<testcase>`` per
flow. A FAILED flow carries ``<failure>``, an ERROR one ``<error>``, a SKIPPED one
``<skipped>``; CRUD steps and timings become ``<properties>`` and readable lines
in ``<system-out>``; the app's logs of a failed flow go to ``<system-err>``.
Text is stripped of what XML 1.0 cannot hold (ANSI colour sequences, control
characters), since one bad byte in an app log would make the whole file unreadable,
and masked by :mod:`nocrud.masking`, like the terminal's and the JSON file's.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from nocrud.masking import mask_text
from nocrud.results import FlowResult, RunResult, Status, StepResult

__all__ = ["write_junit"]

# Characters XML 1.0 allows: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# ANSI escape sequences (colours in app logs): removed whole, not just their ESC byte.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# The last line of a Python traceback: ``package.Error: message`` or ``Error``.
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::|$)")


def write_junit(run: RunResult, path: Path) -> None:
    """Write ``run`` to ``path`` as JUnit XML, creating parent directories.

    Args:
        run: The run to write.
        path: Where to write it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites", _counts(run))
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": "nocrud",
            **_counts(run),
            "timestamp": _timestamp(run.started_at),
            # Not in RunResult: a run read back from JSON gets the current host.
            "hostname": _clean(socket.gethostname()),
        },
    )
    props = {
        "run_id": run.run_id,
        "project": run.project,
        "parallel": str(run.parallel),
        "interrupted": str(run.interrupted).lower(),
        "nocrud_version": run.nocrud_version,
    }
    if run.stopped:
        props["stopped"] = run.stopped
    if run.shard:
        props["shard"] = run.shard
    if run.plan is not None:
        props |= {
            "plan": run.plan.fingerprint,
            "plan.shards": str(run.plan.total),
            "plan.durations": " ".join(run.plan.durations),
            "plan.flows": " ".join(run.plan.flows),
        }
    _properties(suite, props)
    for flow in run.flows:
        _testcase(suite, run.project, flow)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _timestamp(epoch: float) -> str:
    """ISO 8601 in local time with its offset, as pytest writes it."""
    return datetime.fromtimestamp(epoch, UTC).astimezone().isoformat(timespec="seconds")


def _counts(run: RunResult) -> dict[str, str]:
    return {
        "tests": str(len(run.flows)),
        "failures": str(run.count(Status.FAILED)),
        "errors": str(run.count(Status.ERROR)),
        "skipped": str(run.count(Status.SKIPPED)),
        "time": f"{run.wall_time:.3f}",
    }


def _testcase(suite: ET.Element, project: str, flow: FlowResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": _clean(f"nocrud.{project}"),
            "name": _clean(flow.name),
            "time": f"{flow.timings.total:.3f}",
        },
    )
    props = {f"step.{s.name}": s.status.value for s in flow.steps}
    props |= {f"timing.{phase}": f"{secs:.3f}" for phase, secs in flow.timings.to_dict().items()}
    props |= {"kind": flow.kind, "worker": str(flow.worker)}
    if flow.host:
        props |= {"host": flow.host, "attempt": str(flow.attempt)}
    if flow.retried:
        props["retried"] = flow.retried
    _properties(case, props)

    if flow.status in (Status.FAILED, Status.ERROR):
        tag = "failure" if flow.status is Status.FAILED else "error"
        default_type = "AssertionError" if flow.status is Status.FAILED else "Error"
        outcome = ET.SubElement(
            case,
            tag,
            {"message": _clean(flow.message), "type": _exception_type(flow) or default_type},
        )
        outcome.text = _clean(_full_text(flow))
    elif flow.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", {"message": _clean(flow.message)})

    out = "".join(_step_line(s) for s in flow.steps)
    if flow.output:
        out += ("\n" if out else "") + flow.output
    if out:
        ET.SubElement(case, "system-out").text = _clean(out)
    if flow.app_logs and not flow.status.ok:
        ET.SubElement(case, "system-err").text = _clean(flow.app_logs)


def _full_text(flow: FlowResult) -> str:
    """The failure's whole text, as the terminal and the JSON file have it.

    CI test views show this body, not the ``message`` attribute: a message the
    traceback does not end with (an explained ``assert``, the kept environment's
    addresses) goes above the traceback rather than missing there.
    """
    if not flow.traceback:
        return flow.message
    if flow.message.strip() in flow.traceback:
        return flow.traceback
    return f"{flow.message.rstrip()}\n\n{flow.traceback}"


def _step_line(step: StepResult) -> str:
    line = f"step {step.name}: {step.status.value} ({step.duration:.3f} s)"
    return f"{line}: {step.message}\n" if step.message else f"{line}\n"


def _properties(parent: ET.Element, props: dict[str, str]) -> None:
    element = ET.SubElement(parent, "properties")
    for name, value in props.items():
        ET.SubElement(element, "property", {"name": _clean(name), "value": _clean(value)})


def _exception_type(flow: FlowResult) -> str | None:
    """The exception class named on the traceback's last line, if there is one."""
    lines = flow.traceback.strip().splitlines()
    match = _EXCEPTION_LINE.match(lines[-1]) if lines else None
    return match.group(1) if match else None


def _clean(text: str) -> str:
    """``text`` without ANSI sequences and the characters XML 1.0 forbids, secrets masked."""
    # Masked after the escapes go: a colour code inside a URL would hide it from the rules.
    return mask_text(_NOT_XML.sub("", _ANSI.sub("", text)))
