"""Validation: bad input gives 400 with a message per field, and changes nothing."""

from __future__ import annotations

from typing import Any

from flows.builders import EDITOR, build_site
from nocrud import FlowContext, flow, unique, unique_mac

#: (collection, body, expected "fields" of the 400); site_id -1 stands for "a real site".
CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("/api/sites", {"contact": "Ada"}, {"name": "is required"}),
    ("/api/sites", {"name": "   "}, {"name": "must not be blank"}),
    ("/api/sites", {"name": "x" * 201}, {"name": "must be at most 200 characters"}),
    ("/api/sites", {"name": "Lab", "colour": "red"}, {"colour": "is not a known field"}),
    ("/api/sites", {"name": "Lab", "code": "MINE-1"}, {"code": "is read-only"}),
    (
        "/api/computers",
        {"name": "pc", "mac": "not-a-mac", "site_id": -1},
        {"mac": "must be a MAC address like 08:00:2b:01:02:03"},
    ),
    (
        "/api/computers",
        {"name": "pc", "mac": "08:00:2b:01:02:03", "site_id": 999999999},
        {"site_id": "refers to a site that does not exist"},
    ),
    (
        "/api/freezers",
        {"name": "cold", "site_id": -1, "temperature_c": -300},
        {"temperature_c": "must be between -200 and 20"},
    ),
    (
        "/api/containers",
        {"uuid": "not-a-uuid", "freezer_id": True},
        {
            "uuid": "must be a UUID like 123e4567-e89b-12d3-a456-426614174000",
            "freezer_id": "must be an integer",
        },
    ),
]


@flow(tags=["validation"])
def invalid_bodies_are_rejected_per_field(ctx: FlowContext) -> None:
    """Each invalid body gives 400 whose "fields" name exactly the bad fields; nothing is made."""
    ctx.login(*EDITOR)
    site = build_site(ctx)
    problems = []
    for collection, body, fields in CASES:
        sent = {k: site["id"] if v == -1 and k == "site_id" else v for k, v in body.items()}
        before = ctx.api.get(collection).data["total"]
        answer = ctx.api.post(collection, json=sent, expect=400).data
        if answer.get("fields") != fields:
            problems.append(
                f"POST {collection} {sent}: fields {answer.get('fields')}, not {fields}"
            )
        if ctx.api.get(collection).data["total"] != before:
            problems.append(f"POST {collection} {sent} was refused but created something")
    assert not problems, "\n".join(problems)


@flow(tags=["validation"])
def malformed_requests_are_rejected(ctx: FlowContext) -> None:
    """Bodies that are not JSON objects, and ids that are not numbers, give 400."""
    ctx.login(*EDITOR)
    not_json = ctx.api.post(
        "/api/sites", data=b"{name: oops", headers={"Content-Type": "application/json"}, expect=400
    ).data
    assert not_json["error"].startswith("request body is not valid JSON"), not_json
    array = ctx.api.post("/api/sites", json=[{"name": "Lab"}], expect=400).data
    assert array["error"] == "request body must be a JSON object, got an array"
    bad_id = ctx.api.get("/api/computers/abc", expect=400).data
    assert bad_id["fields"] == {"id": "must be a positive integer"}
    computer = {"name": unique("pc"), "mac": unique_mac(), "site_id": build_site(ctx)["id"]}
    made = ctx.api.post("/api/computers", json=computer | {"mac": computer["mac"].upper()}).data
    assert made["mac"] == computer["mac"], "MAC addresses come back in lowercase"
