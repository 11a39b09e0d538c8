"""A small sites API, as found in someone else's repository."""

import os

import psycopg2
import psycopg2.extras
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
FIELDS = ("name", "contact", "country")


def connect():
    return psycopg2.connect(
        os.environ["DATABASE_URL"], cursor_factory=psycopg2.extras.RealDictCursor
    )


def one(site_id):
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, contact, country FROM site WHERE id = %s", (site_id,))
        row = cur.fetchone()
    if row is None:
        abort(404)
    return row


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/sites")
def list_sites():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, contact, country FROM site ORDER BY id")
        return jsonify({"items": cur.fetchall()})


@app.post("/sites")
def create_site():
    body = request.get_json()
    with connect() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO site (name, contact, country) VALUES (%s, %s, %s)"
            " RETURNING id, name, contact, country",
            tuple(body.get(f) for f in FIELDS),
        )
        return jsonify(cur.fetchone()), 201


@app.get("/sites/<int:site_id>")
def get_site(site_id):
    return jsonify(one(site_id))


@app.put("/sites/<int:site_id>")
def update_site(site_id):
    body = request.get_json()
    one(site_id)
    with connect() as conn, conn.cursor() as cur:
        # The bug the flows find: contact is never written.
        cur.execute(
            "UPDATE site SET name = %s, country = %s WHERE id = %s",
            (body.get("name"), body.get("country"), site_id),
        )
    return jsonify(one(site_id))


@app.delete("/sites/<int:site_id>")
def delete_site(site_id):
    one(site_id)
    with connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM site WHERE id = %s", (site_id,))
    return "", 204
