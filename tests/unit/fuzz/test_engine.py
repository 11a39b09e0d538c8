"""Schemathesis on one app (nocrud.fuzz.engine), with no Docker: a Flask app on 127.0.0.1.

The app stands for one environment: a unit's cases and sequences go to it, every
exchange is recorded, every failed check becomes a finding with its history.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from nocrud.fuzz.engine import FuzzSchema, Target, load_schema, send_exchanges
from nocrud.fuzz.plan import FuzzOptions, plan_units

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/tags": {
            "post": {
                "operationId": "createTag",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {"name": {"type": "string", "enum": ["a", "b"]}},
                            }
                        }
                    },
                },
                "responses": {"201": {"description": "ok"}, "400": {"description": "bad"}},
            }
        },
        "/settings": {
            "get": {
                "operationId": "settings",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            }
                        },
                    }
                },
            }
        },
    },
}


def app() -> Flask:
    flask = Flask("fake")
    names: set[str] = set()

    @flask.post("/tags")
    def tags() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or set(data) != {"name"} or data["name"] not in "ab":
            return jsonify({}), 400
        if data["name"] in names:
            return jsonify({}), 500  # the unique constraint, unhandled
        names.add(data["name"])
        return jsonify({}), 201

    @flask.get("/settings")
    def settings() -> Any:
        return jsonify({"size": "ten"})

    return flask


@pytest.fixture
def base_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def target(base_url: str) -> Iterator[Target]:
    with requests.Session() as session:
        yield Target(base_url=base_url, session=session)


def schema() -> FuzzSchema:
    return load_schema(DOCUMENT, (), ("not_a_server_error", "response_schema_conformance"))


def test_the_same_seed_draws_the_same_cases() -> None:
    first = schema().draw(8, seed=3, negative=True)
    again = schema().draw(8, seed=3, negative=True)
    assert list(first) == list(again)
    assert [c.body for c in first[("POST /tags", "positive")]] == [
        c.body for c in again[("POST /tags", "positive")]
    ]
    # /settings has nothing to negate: no negative cases, and no complaint.
    assert ("GET /settings", "negative") not in first


def test_stateless_unit_records_history_and_findings(target: Target) -> None:
    fuzz = schema()
    draws = fuzz.draw(6, seed=1, negative=False)
    units = plan_units({k: len(v) for k, v in draws.items()}, FuzzOptions(sequences=0))
    tags = next(u for u in units if u.operation == "POST /tags")
    cases = [draws[("POST /tags", "positive")][i] for i in tags.cases]
    outcome = fuzz.run_stateless(tags, cases, target)
    assert len(outcome.exchanges) == len(cases)
    errors = [f for f in outcome.findings if f.check == "not_a_server_error"]
    assert errors, "two tags of one name must meet the unique constraint"
    first = errors[0]
    assert first.failing.status == 500
    assert first.own == 1
    assert first.history == tuple(outcome.exchanges[: len(first.history)])


def test_schema_violation_and_replay_of_exchanges(base_url: str, target: Target) -> None:
    fuzz = schema()
    draws = fuzz.draw(2, seed=1, negative=False)
    [unit] = [
        u
        for u in plan_units({k: len(v) for k, v in draws.items()}, FuzzOptions(sequences=0))
        if u.operation == "GET /settings"
    ]
    outcome = fuzz.run_stateless(
        unit, [draws[("GET /settings", "positive")][i] for i in unit.cases], target
    )
    [finding] = {f.check: f for f in outcome.findings}.values()
    assert finding.check == "response_schema_conformance"
    assert fuzz.fails_again(finding.extra["case"], target, {"response_schema_conformance"})
    assert send_exchanges(finding.history, target) == [200] * len(finding.history)


def test_unknown_operation_filter_keeps_nothing() -> None:
    fuzz = load_schema(DOCUMENT, ("DELETE",), ("not_a_server_error",))
    assert fuzz.operations == []
    assert load_schema(DOCUMENT, ("createTag",), ("not_a_server_error",)).labels == ["POST /tags"]
