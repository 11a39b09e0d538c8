"""A weather API of Django REST framework's shape, without Django: every path ends in a
slash, lists are pages of {"count", "next", "previous", "results"}, readings are created
with PUT at an id the client chooses, stations are posted with a client-chosen code and
answer "created" as text. No health endpoint, no OpenAPI document.
"""

import os

import psycopg2
import psycopg2.extras
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
app.url_map.strict_slashes = True
PAGE = 2
REQUIRED = ("name",)
TABLES = {
    "sensors": ("id", ("name", "unit")),
    "readings": ("id", ("sensor", "celsius")),
    "stations": ("code", ("name",)),
}


@app.before_request
def slash_or_404():
    if not request.path.endswith("/"):
        abort(404)


def run(sql, args=()):
    with (
        psycopg2.connect(os.environ["DATABASE_URL"]) as conn,
        conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur,
    ):
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def fetch(table, key):
    pk, fields = TABLES[table]
    rows = run(f"SELECT {pk}, {', '.join(fields)} FROM {table} WHERE {pk}::text = %s", (key,))
    if not rows:
        abort(404)
    # Readings are keyed by UUID: answered as the text the client chose.
    return {k: str(v) if k == pk and table == "readings" else v for k, v in rows[0].items()}


@app.get("/<table>/")
def page(table):
    if table not in TABLES:
        abort(404)
    pk, fields = TABLES[table]
    number = int(request.args.get("page", "1"))
    count = run(f"SELECT count(*) AS n FROM {table}")[0]["n"]
    rows = run(
        f"SELECT {pk}::text AS {pk}, {', '.join(fields)} FROM {table}"
        f" ORDER BY {pk} LIMIT %s OFFSET %s",
        (PAGE, (number - 1) * PAGE),
    )
    if table == "sensors":
        rows = [{**row, "id": int(row["id"])} for row in rows]
    base = request.base_url
    return jsonify(
        count=count,
        next=f"{base}?page={number + 1}" if number * PAGE < count else None,
        previous=f"{base}?page={number - 1}" if number > 1 else None,
        results=rows,
    )


@app.post("/sensors/")
def new_sensor():
    body = request.get_json()
    row = run(
        "INSERT INTO sensors (name, unit) VALUES (%s, %s) RETURNING id, name, unit",
        (body["name"], body.get("unit")),
    )[0]
    return jsonify(row), 201


@app.post("/stations/")
def new_station():
    body = request.get_json()
    run("INSERT INTO stations (code, name) VALUES (%s, %s)", (body["code"], body["name"]))
    return "created", 201, {"Content-Type": "text/plain"}


@app.put("/readings/<key>/")
def put_reading(key):
    body = request.get_json()
    known = run("SELECT 1 AS x FROM readings WHERE id::text = %s", (key,))
    run(
        "INSERT INTO readings (id, sensor, celsius) VALUES (%s, %s, %s) ON CONFLICT (id)"
        " DO UPDATE SET sensor = EXCLUDED.sensor, celsius = EXCLUDED.celsius",
        (key, body["sensor"], body["celsius"]),
    )
    return "", 200 if known else 201


@app.get("/<table>/<key>/")
def get_one(table, key):
    if table not in TABLES:
        abort(404)
    return jsonify(fetch(table, key))


@app.route("/<table>/<key>/", methods=["PUT", "PATCH"])
def change(table, key):
    if table not in TABLES or table == "readings":
        abort(405)
    pk, fields = TABLES[table]
    current = fetch(table, key)
    body = request.get_json()
    if request.method == "PUT":
        # As Django REST framework does: PUT needs the fields that cannot be null.
        missing = [f for f in fields if f not in body and f in REQUIRED]
        if missing:
            return jsonify({f: ["This field is required."] for f in missing}), 400
    new = {f: body.get(f, current[f]) for f in fields}
    run(
        f"UPDATE {table} SET {', '.join(f'{f} = %s' for f in fields)} WHERE {pk}::text = %s",
        (*new.values(), key),
    )
    return jsonify(fetch(table, key))


@app.delete("/<table>/<key>/")
def remove(table, key):
    if table not in TABLES:
        abort(404)
    pk, _ = TABLES[table]
    fetch(table, key)
    run(f"DELETE FROM {table} WHERE {pk}::text = %s", (key,))
    return "", 204
