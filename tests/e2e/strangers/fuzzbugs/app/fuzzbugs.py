"""A small inventory API with four seeded bugs, for `nocrud fuzz` (tests/e2e/test_fuzz_e2e.py).

It validates its input and answers JSON everywhere, so the only failures a fuzzer should
report are the seeded ones:

1. ``GET /stats?per=0`` divides by zero: a 500 on one input.
2. ``GET /settings`` answers ``page_size`` as a string where the document says integer.
3. ``PATCH /items/{id}`` on an item that exists runs broken SQL: a 500 that only a
   create-then-update sequence reaches (random ids find no item and get a 404).
4. ``POST /tags`` with a name that already exists hits the unique constraint and answers
   500 instead of 409: alone it passes, after the same name it fails (order-dependent).
"""

import os
import re

import psycopg2
import psycopg2.extras
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

app = Flask(__name__)
NAME = re.compile(r"[a-z]{1,20}")
TAGS = ("red", "green", "blue")
BIGGEST = 2**62


def run(sql, args=()):
    with (
        psycopg2.connect(os.environ["DATABASE_URL"]) as conn,
        conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
    ):
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def problem(status, detail):
    return jsonify({"detail": detail}), status


@app.errorhandler(HTTPException)
def http_error(exc):
    return problem(exc.code, exc.description)


def body_object():
    data = request.get_json(silent=True) if request.mimetype == "application/json" else None
    return data if isinstance(data, dict) else None


def item_id(raw):
    if not raw.isdigit() or not 1 <= int(raw) <= BIGGEST:
        return None
    return int(raw)


def valid_quantity(value):
    return type(value) is int and 0 <= value <= 1000


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.post("/items")
def create_item():
    data = body_object()
    if (
        data is None
        or set(data) != {"name", "quantity"}
        or not isinstance(data["name"], str)
        or not NAME.fullmatch(data["name"])
        or not valid_quantity(data["quantity"])
    ):
        return problem(400, "expected {name: [a-z]{1,20}, quantity: 0..1000}")
    row = run(
        "INSERT INTO items (name, quantity) VALUES (%s, %s) RETURNING id, name, quantity",
        (data["name"], data["quantity"]),
    )[0]
    return jsonify(row), 201


@app.get("/items/<raw>")
def get_item(raw):
    key = item_id(raw)
    if key is None:
        return problem(400, "id must be a positive integer")
    rows = run("SELECT id, name, quantity FROM items WHERE id = %s", (key,))
    if not rows:
        return problem(404, "no such item")
    return jsonify(rows[0])


@app.patch("/items/<raw>")
def update_item(raw):
    key = item_id(raw)
    data = body_object()
    if key is None or data is None or set(data) != {"quantity"}:
        return problem(400, "expected {quantity: 0..1000}")
    if not valid_quantity(data["quantity"]):
        return problem(400, "expected {quantity: 0..1000}")
    if not run("SELECT id FROM items WHERE id = %s", (key,)):
        return problem(404, "no such item")
    # Seeded bug 3: the column is "quantity".
    run("UPDATE items SET quantty = %s WHERE id = %s", (data["quantity"], key))
    return jsonify(run("SELECT id, name, quantity FROM items WHERE id = %s", (key,))[0])


@app.post("/tags")
def create_tag():
    data = body_object()
    if data is None or set(data) != {"name"} or data["name"] not in TAGS:
        return problem(400, "expected {name: red|green|blue}")
    # Seeded bug 4: a second tag of the same name violates the unique constraint (a 500;
    # the document promises 409).
    row = run("INSERT INTO tags (name) VALUES (%s) RETURNING id, name", (data["name"],))[0]
    return jsonify(row), 201


@app.get("/stats")
def stats():
    raw = request.args.get("per", "")
    if set(request.args) - {"per"} or not raw.isdigit() or int(raw) > 100:
        return problem(400, "per must be an integer 0..100")
    total = run("SELECT COALESCE(SUM(quantity), 0) AS total FROM items")[0]["total"]
    # Seeded bug 1: per=0 divides by zero.
    return jsonify({"per_unit": total / int(raw)})


@app.get("/settings")
def settings():
    # Seeded bug 2: the document says integer.
    return jsonify({"page_size": "20"})


@app.get("/openapi.json")
def openapi():
    return jsonify(DOCUMENT)


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
ITEM = {
    "type": "object",
    "required": ["id", "name", "quantity"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "quantity": {"type": "integer"},
    },
}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
BAD = {"description": "invalid input", **_json(ERROR)}
MISSING = {"description": "no such item", **_json(ERROR)}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "fuzzbugs", "version": "1"},
    "paths": {
        "/items": {
            "post": {
                "operationId": "createItem",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "quantity"],
                            "properties": {
                                "name": {"type": "string", "pattern": "^[a-z]{1,20}$"},
                                "quantity": {"type": "integer", "minimum": 0, "maximum": 1000},
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {
                        "description": "created",
                        **_json(ITEM),
                        "links": {
                            "GetItem": {
                                "operationId": "getItem",
                                "parameters": {"id": "$response.body#/id"},
                            },
                            "UpdateItem": {
                                "operationId": "updateItem",
                                "parameters": {"id": "$response.body#/id"},
                            },
                        },
                    },
                    "400": BAD,
                },
            }
        },
        "/items/{id}": {
            "get": {
                "operationId": "getItem",
                "parameters": [ID],
                "responses": {
                    "200": {"description": "the item", **_json(ITEM)},
                    "400": BAD,
                    "404": MISSING,
                },
            },
            "patch": {
                "operationId": "updateItem",
                "parameters": [ID],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["quantity"],
                            "properties": {
                                "quantity": {"type": "integer", "minimum": 0, "maximum": 1000}
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "updated", **_json(ITEM)},
                    "400": BAD,
                    "404": MISSING,
                },
            },
        },
        "/tags": {
            "post": {
                "operationId": "createTag",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name"],
                            "properties": {"name": {"type": "string", "enum": list(TAGS)}},
                        }
                    ),
                },
                "responses": {
                    "201": {
                        "description": "created",
                        **_json(
                            {
                                "type": "object",
                                "required": ["id", "name"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "name": {"type": "string"},
                                },
                            }
                        ),
                    },
                    "400": BAD,
                    "409": {"description": "a tag of that name exists", **_json(ERROR)},
                },
            }
        },
        "/stats": {
            "get": {
                "operationId": "stats",
                "parameters": [
                    {
                        "name": "per",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 100},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "stock per unit",
                        **_json(
                            {
                                "type": "object",
                                "required": ["per_unit"],
                                "properties": {"per_unit": {"type": "number"}},
                            }
                        ),
                    },
                    "400": BAD,
                },
            }
        },
        "/settings": {
            "get": {
                "operationId": "settings",
                "responses": {
                    "200": {
                        "description": "the settings",
                        **_json(
                            {
                                "type": "object",
                                "required": ["page_size"],
                                "properties": {"page_size": {"type": "integer"}},
                            }
                        ),
                    }
                },
            }
        },
    },
}
