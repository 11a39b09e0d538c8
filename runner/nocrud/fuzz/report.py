"""What a fuzz run reports: one block per failure, a curl script per failure, JUnit and JSON.

Readers of values only (:class:`FuzzReport`, :class:`~nocrud.fuzz.model.Finding`): no
Schemathesis, no Docker. Every header, body and log line goes through
:mod:`nocrud.masking`, like the rest of nocrud's reports. JUnit and JSON hold one test
case per operation and check, so a CI test view shows which check failed where, and a
check that passed on an operation is visible as passed.
"""

from __future__ import annotations

import base64
import json
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.masking import MASK, is_secret_header, mask_header, mask_text

__all__ = [
    "FuzzReport",
    "curl_script",
    "failure_block",
    "summary_lines",
    "test_cases",
    "write_json",
    "write_junit",
]

#: App log lines a failure block shows.
LOG_LINES = 20
#: Response characters a failure block shows.
BODY_SHOWN = 400


@dataclass(frozen=True)
class FuzzReport:
    """A finished fuzz run, as values.

    Attributes:
        run_id: The run's id (the store's, the Docker labels').
        project: ``project:`` of nocrud.yaml.
        seed: The seed that reproduces the run (``--seed``).
        operations: Every operation fuzzed, in document order.
        checks: The checks that ran.
        findings: Distinct failures (one per operation and check), classified.
        examples: Requests sent while exploring (replays not counted).
        units: Environments the exploration used.
        wall_time: Seconds, exploration and replays.
        errors: Units whose environment broke, with why (not the app's fault).
        skipped: Operations Schemathesis could not draw cases for, with why.
        interrupted: Ctrl-C or SIGTERM stopped the run.
    """

    run_id: str
    project: str
    seed: int
    operations: tuple[str, ...]
    checks: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    examples: int = 0
    units: int = 0
    wall_time: float = 0.0
    errors: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failures(self) -> tuple[Finding, ...]:
        """Findings that fail the run: those a brand-new environment reproduced."""
        return tuple(f for f in self.findings if f.verdict is not Verdict.NOT_REPRODUCED)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors and not self.interrupted


def _shown_headers(exchange: Exchange) -> list[tuple[str, str]]:
    return [(k, mask_header(k, v)) for k, v in exchange.headers]


def _body_text(body: bytes) -> str:
    return mask_text(body.decode("utf-8", "replace"))


def _request_line(exchange: Exchange) -> str:
    body = f" {_body_text(exchange.body)[:BODY_SHOWN]}" if exchange.body else ""
    return f"{exchange.method} {mask_text(exchange.path)}{body} -> {exchange.status}"


def failure_block(finding: Finding, *, index: int, seed: int) -> str:
    """The block the terminal prints for one failure (and JUnit and JSON carry)."""
    verdict = finding.verdict.value if finding.verdict else "not replayed"
    lines = [
        f"FAIL {index}: {finding.operation}: {finding.check} ({verdict})",
        *(f"  {line}" for line in mask_text(finding.message).splitlines()),
    ]
    if finding.verdict is Verdict.REPRODUCIBLE:
        lines.append(
            f"  reproduced in a brand-new environment by {len(finding.minimal)} request(s) "
            f"from a clean database ({finding.attempts} replay(s)):"
        )
    elif finding.verdict is Verdict.ORDER_DEPENDENT:
        lines.append(
            "  passes alone in a brand-new environment; fails after the request(s) that ran "
            f"before it ({finding.attempts} replay(s)). The sequence that reproduces it:"
        )
    else:
        lines.append(
            "  not reproduced in a brand-new environment, not even with everything that ran "
            "before it: the sequence that led to it:"
        )
    shown = finding.minimal or finding.history
    for step, exchange in enumerate(shown, 1):
        lines.append(f"    {step}. {_request_line(exchange)}")
    failing = finding.failing
    if failing.response_body:
        lines.append(f"  response: {mask_text(failing.response_body)[:BODY_SHOWN]}")
    lines.append(f"  replay: see the curl script (seed {seed}, unit {finding.unit!r})")
    if finding.kept:
        lines.extend(f"  {line}" for line in finding.kept.splitlines())
    if finding.app_logs:
        lines.append("  app log (last lines):")
        lines.extend(
            f"    {mask_text(line)}" for line in finding.app_logs.splitlines()[-LOG_LINES:]
        )
    return "\n".join(lines)


def curl_script(finding: Finding) -> str:
    """A shell script that sends the finding's reproducing requests to a fresh environment.

    Secret headers are not written out: the script reads them from the environment
    (``AUTHORIZATION=... ./fail-1.sh URL``).
    """
    lines = [
        "#!/bin/sh",
        f"# {finding.operation}: {finding.check} ({finding.verdict or 'not replayed'})",
        "# Usage: sh THIS_FILE BASE_URL   (a fresh environment: `nocrud fuzz --keep-failed`",
        "# prints one for each reproduced failure; run this against a new one)",
        "set -eu",
        'BASE="${1:?give the base URL of a fresh environment}"',
    ]
    for step, exchange in enumerate(finding.minimal or finding.history, 1):
        parts = ["curl", "-sS", "-o", "/dev/stderr", "-w", "'%{http_code}\\n'"]
        parts += ["-X", exchange.method, f'"$BASE"{shlex.quote(exchange.path)}']
        for name, value in exchange.headers:
            if is_secret_header(name) or mask_header(name, value) != value:
                variable = "".join(c if c.isalnum() else "_" for c in name.upper())
                parts += ["-H", f'"{name}: ${{{variable}:?set {variable}}}"']
            else:
                parts += ["-H", shlex.quote(f"{name}: {value}")]
        lines.append(f"# {step}. expected {exchange.status}")
        if exchange.body:
            encoded = base64.b64encode(exchange.body).decode()
            lines.append(f"echo {encoded} | base64 -d | {' '.join(parts)} --data-binary @-")
        else:
            lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def test_cases(report: FuzzReport) -> list[dict[str, Any]]:
    """One test case per operation and check: passed, or failed with its finding."""
    by_key = {f.key: f for f in report.findings}
    cases = []
    for operation in report.operations:
        for check in report.checks:
            finding = by_key.get((operation, check))
            status = "passed"
            if finding is not None:
                status = "flaky" if finding.verdict is Verdict.NOT_REPRODUCED else "failed"
            cases.append(
                {"operation": operation, "check": check, "status": status, "finding": finding}
            )
    # A finding of a check not asked for (Schemathesis may add one) still shows.
    known = {(c["operation"], c["check"]) for c in cases}
    for finding in report.findings:
        if finding.key not in known:
            status = "flaky" if finding.verdict is Verdict.NOT_REPRODUCED else "failed"
            cases.append(
                {
                    "operation": finding.operation,
                    "check": finding.check,
                    "status": status,
                    "finding": finding,
                }
            )
    return cases


def summary_lines(report: FuzzReport) -> list[str]:
    """The closing lines: counts, verdicts and the seed."""
    verdicts = {v: sum(1 for f in report.findings if f.verdict is v) for v in Verdict}
    rate = report.examples / report.wall_time if report.wall_time else 0.0
    lines = [
        f"fuzz: {len(report.operations)} operation(s), {report.examples} request(s) in "
        f"{report.units} environment(s), {report.wall_time:.1f} s ({rate:.1f} examples/s)",
        f"{len(report.failures)} failure(s): {verdicts[Verdict.REPRODUCIBLE]} reproducible, "
        f"{verdicts[Verdict.ORDER_DEPENDENT]} order-dependent; "
        f"{verdicts[Verdict.NOT_REPRODUCED]} not reproduced (flaky, not failing the run)",
    ]
    lines.extend(f"error: {error}" for error in report.errors)
    lines.extend(f"skipped {op}: {why}" for op, why in report.skipped.items())
    lines.append(f"seed: {report.seed} (run again with --seed {report.seed})")
    return lines


def write_json(report: FuzzReport, path: Path) -> None:
    """The run as JSON: metadata, one entry per operation and check, every finding."""
    document = {
        "kind": "fuzz",
        "run_id": report.run_id,
        "project": report.project,
        "seed": report.seed,
        "examples": report.examples,
        "units": report.units,
        "wall_time": round(report.wall_time, 3),
        "ok": report.ok,
        "errors": list(report.errors),
        "skipped": report.skipped,
        "test_cases": [
            {
                **{k: v for k, v in case.items() if k != "finding"},
                "finding": _masked(case["finding"].to_dict()) if case["finding"] else None,
            }
            for case in test_cases(report)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False))


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("minimal", "history"):
        for exchange in data[key]:
            exchange["headers"] = [
                [k, MASK if is_secret_header(k) else mask_header(k, v)]
                for k, v in exchange["headers"]
            ]
            exchange["body"] = mask_text(exchange["body"])
            exchange["response_body"] = mask_text(exchange["response_body"])
    data["message"] = mask_text(data["message"])
    data["app_logs"] = mask_text(data["app_logs"])
    return data


def write_junit(report: FuzzReport, path: Path) -> None:
    """The run as JUnit XML: one ``<testcase>`` per operation and check."""
    cases = test_cases(report)
    failed = sum(1 for c in cases if c["status"] == "failed")
    suite_attrs = {
        "name": "nocrud fuzz",
        "tests": str(len(cases) + len(report.errors)),
        "failures": str(failed),
        "errors": str(len(report.errors)),
        "skipped": "0",
        "time": f"{report.wall_time:.3f}",
    }
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "seed", "value": str(report.seed)})
    for index, case in enumerate(cases, 1):
        element = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"{report.project}.fuzz.{case['operation']}", "name": case["check"]},
        )
        finding: Finding | None = case["finding"]
        if finding is None:
            continue
        text = failure_block(finding, index=index, seed=report.seed)
        if case["status"] == "failed":
            ET.SubElement(
                element, "failure", {"message": f"{finding.check} ({finding.verdict})"}
            ).text = _xml_safe(text)
        else:
            ET.SubElement(element, "system-out").text = _xml_safe(text)
    for error in report.errors:
        element = ET.SubElement(
            suite, "testcase", {"classname": f"{report.project}.fuzz", "name": "environment"}
        )
        ET.SubElement(element, "error", {"message": _xml_safe(error)[:200]}).text = _xml_safe(error)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _xml_safe(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def write_scripts(report: FuzzReport, directory: Path) -> list[Path]:
    """One curl script per failure, ``fail-N.sh``, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("fail-*.sh"):
        old.unlink()
    written = []
    for index, finding in enumerate(report.findings, 1):
        target = directory / f"fail-{index}.sh"
        target.write_text(curl_script(finding))
        written.append(target)
    return written


def findings_in_order(findings: Sequence[Finding]) -> list[Finding]:
    """Findings sorted as the report shows them: by operation, then check."""
    return sorted(findings, key=lambda f: (f.operation, f.check))
