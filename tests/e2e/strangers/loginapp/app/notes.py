"""A notes API with the login shapes of FastAPI's OAuth2 password flow, without FastAPI:
the OpenAPI document declares an ``oauth2`` security scheme whose password flow's
``tokenUrl`` is ``/auth/token``, which takes a form and answers ``access_token``. An
anonymous write is redirected (302) to an external single sign-on page, as apps behind
a login wall do.

Tags are the OpenAPI shapes of Django REST framework apps documented by drf_yasg
(issue 21, items 6, 11, 13): a Swagger 2.0 document at ``/swagger/?format=openapi``
that answers 406 to ``Accept: application/json``, creates that answer 200, an id the
client may choose sent as ``tag_id`` and answered as ``id``, and 400 for a tag that is
not there.
"""

import json
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
        paths={"/api/notes": {"get": {}, "post": {}}, "/health": {"get": {}}},
        components={"securitySchemes": schemes},
    )


TAG_BODY = [{"name": "data", "in": "body", "schema": {"$ref": "#/definitions/Tag"}}]
SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "tags", "version": "v1"},
    "basePath": "/",
    "paths": {
        "/api/tags/": {
            "get": {"responses": {"200": {"description": ""}}},
            "post": {"parameters": TAG_BODY, "responses": {"200": {"description": ""}}},
        },
        "/api/tags/{id}/": {
            "parameters": [{"name": "id", "in": "path", "required": True, "type": "integer"}],
            "get": {"responses": {"200": {"description": ""}, "400": {"description": ""}}},
            "put": {"parameters": TAG_BODY, "responses": {"200": {"description": ""}}},
            "delete": {"responses": {"204": {"description": ""}}},
        },
    },
    "definitions": {
        "Tag": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "id": {"type": "integer", "readOnly": True},
                "name": {"type": "string", "maxLength": 40},
                "color": {"type": "string", "example": "teal"},
            },
        }
    },
}


@app.get("/swagger/")
def swagger():
    # drf_yasg renders application/openapi+json only: a bare application/json is refused.
    accepted = [
        part.split(";")[0].strip() for part in request.headers.get("Accept", "*/*").split(",")
    ]
    if not {"*/*", "application/*", "application/openapi+json"} & set(accepted):
        return jsonify(detail="Could not satisfy the request Accept header."), 406
    return app.response_class(json.dumps(SWAGGER), mimetype="application/openapi+json")


def tag_row(tag_id):
    rows = run("SELECT id, name, color FROM tag WHERE id = %s", (tag_id,))
    return {"id": rows[0][0], "name": rows[0][1], "color": rows[0][2]} if rows else None


@app.route("/api/tags/", methods=["GET", "POST"])
def tags():
    if request.method == "POST":
        body = request.get_json()
        chosen = body.get("tag_id")
        (row,) = run(
            "INSERT INTO tag (id, name, color) VALUES (COALESCE(%s, nextval('tag_ids')), %s, %s)"
            " RETURNING id",
            (chosen, body["name"], body.get("color", "grey")),
        )
        return jsonify(tag_row(row[0]))  # 200, as FastAPI's and many DRF views answer
    rows = run("SELECT id, name, color FROM tag ORDER BY id")
    return jsonify([{"id": i, "name": n, "color": c} for i, n, c in rows])


@app.route("/api/tags/<int:tag_id>/", methods=["GET", "PUT", "DELETE"])
def tag(tag_id):
    if tag_row(tag_id) is None:
        return jsonify(detail="tag does not exist"), 400  # their own "not found"
    if request.method == "PUT":
        body = request.get_json()
        run(
            "UPDATE tag SET name = %s, color = %s WHERE id = %s",
            (body["name"], body.get("color", "grey"), tag_id),
        )
    elif request.method == "DELETE":
        run("DELETE FROM tag WHERE id = %s", (tag_id,))
        return "", 204
    return jsonify(tag_row(tag_id))


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
