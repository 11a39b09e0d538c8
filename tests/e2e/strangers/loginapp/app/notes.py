"""A notes API with the login shapes of FastAPI's OAuth2 password flow, without FastAPI:
the OpenAPI document declares an ``oauth2`` security scheme whose password flow's
``tokenUrl`` is ``/auth/token``, which takes a form and answers ``access_token``. An
anonymous write is redirected (302) to an external single sign-on page, as apps behind
a login wall do.
"""

import os
import secrets

import psycopg2
from flask import Flask, jsonify, redirect, request

app = Flask(__name__)
USERS = {"alice": "wonderland-42"}
TOKENS = {}
SSO = "https://sso.example.invalid/login"


def run(sql, args=()):
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/openapi.json")
def openapi():
    flows = {"password": {"tokenUrl": "auth/token", "scopes": {}}}
    schemes = {"OAuth2PasswordBearer": {"type": "oauth2", "flows": flows}}
    return jsonify(
        openapi="3.1.0",
        info={"title": "notes", "version": "1"},
        paths={"/api/notes": {"get": {}, "post": {}}},
        components={"securitySchemes": schemes},
    )


@app.post("/auth/token")
def token():
    if request.form.get("grant_type") != "password":
        return jsonify(detail="grant_type must be password"), 422
    user = request.form.get("username")
    if USERS.get(user) != request.form.get("password"):
        return jsonify(detail="Incorrect username or password"), 400
    issued = secrets.token_hex(16)
    TOKENS[issued] = user
    return jsonify(access_token=issued, token_type="bearer")


def current_user():
    scheme, _, issued = request.headers.get("Authorization", "").partition(" ")
    return TOKENS.get(issued) if scheme == "Bearer" else None


@app.route("/api/notes", methods=["GET", "POST"])
def notes():
    user = current_user()
    if user is None:
        return redirect(f"{SSO}?next={request.path}", code=302)
    if request.method == "POST":
        (row,) = run(
            "INSERT INTO note (owner, body) VALUES (%s, %s) RETURNING id",
            (user, request.get_json()["body"]),
        )
        return jsonify(id=row[0], body=request.get_json()["body"]), 201
    rows = run("SELECT id, body FROM note WHERE owner = %s ORDER BY id", (user,))
    return jsonify([{"id": i, "body": b} for i, b in rows])
