"""Items API in the shape of FastAPI's full-stack template: OAuth2 password login, items per owner.

One uvicorn process serves it; SQLAlchemy talks to PostgreSQL at $DATABASE_URL; Alembic
makes the schema and the first superuser. Creates answer 200 (FastAPI's default).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import create_engine, text

SECRET = os.environ.get("SECRET_KEY", "change-me")
engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True, future=True)
app = FastAPI(title="items")
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/login/access-token")


def password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()


def sign(user_id: int) -> str:
    mac = hmac.new(SECRET.encode(), str(user_id).encode(), "sha256").hexdigest()
    return f"{user_id}.{mac}"


def current_user(token: str = Depends(oauth2)) -> dict:
    user_id, _, _ = token.partition(".")
    if not user_id.isdigit() or not hmac.compare_digest(sign(int(user_id)), token):
        raise HTTPException(status_code=401, detail="Could not validate credentials")
    with engine.connect() as conn:
        row = (
            conn.execute(
                text("SELECT id, email, is_superuser FROM users WHERE id = :id"),
                {"id": int(user_id)},
            )
            .mappings()
            .first()
        )
    if row is None:
        raise HTTPException(status_code=404, detail="User not found")
    return dict(row)


class ItemIn(BaseModel):
    title: str
    description: str | None = None


class UserIn(BaseModel):
    email: str
    password: str


@app.get("/api/v1/utils/health-check/")
def health() -> bool:
    return True


@app.post("/api/v1/login/access-token")
def login(form: OAuth2PasswordRequestForm = Depends()) -> dict:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text("SELECT id, salt, hashed_password FROM users WHERE email = :e"),
                {"e": form.username},
            )
            .mappings()
            .first()
        )
    if row is None or password_hash(form.password, row["salt"]) != row["hashed_password"]:
        raise HTTPException(status_code=400, detail="Incorrect email or password")
    return {"access_token": sign(row["id"]), "token_type": "bearer"}


@app.post("/api/v1/users/")
def create_user(user: UserIn, me: dict = Depends(current_user)) -> dict:
    if not me["is_superuser"]:
        raise HTTPException(status_code=403, detail="The user doesn't have enough privileges")
    salt = secrets.token_hex(8)
    with engine.begin() as conn:
        taken = conn.execute(text("SELECT 1 FROM users WHERE email = :e"), {"e": user.email})
        if taken.first():
            raise HTTPException(status_code=400, detail="The user with this email already exists")
        new_id = conn.execute(
            text(
                "INSERT INTO users (email, salt, hashed_password, is_superuser) "
                "VALUES (:e, :s, :h, false) RETURNING id"
            ),
            {"e": user.email, "s": salt, "h": password_hash(user.password, salt)},
        ).scalar_one()
    return {"id": new_id, "email": user.email}


@app.get("/api/v1/users/")
def list_users(me: dict = Depends(current_user)) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, email FROM users ORDER BY id")).mappings().all()
    return {"data": [dict(r) for r in rows], "count": len(rows)}


@app.delete("/api/v1/users/{user_id}")
def delete_user(user_id: int, me: dict = Depends(current_user)) -> dict:
    if not me["is_superuser"]:
        raise HTTPException(status_code=403, detail="The user doesn't have enough privileges")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM items WHERE owner_id = :id"), {"id": user_id})
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    return {"message": "User deleted successfully"}


@app.post("/api/v1/items/")
def create_item(item: ItemIn, me: dict = Depends(current_user)) -> dict:
    with engine.begin() as conn:
        row = (
            conn.execute(
                text(
                    "INSERT INTO items (title, description, owner_id) VALUES (:t, :d, :o) "
                    "RETURNING id, title, description, owner_id"
                ),
                {"t": item.title, "d": item.description, "o": me["id"]},
            )
            .mappings()
            .one()
        )
    return dict(row)


@app.get("/api/v1/items/")
def list_items(me: dict = Depends(current_user)) -> dict:
    with engine.connect() as conn:
        rows = (
            conn.execute(text("SELECT id, title, description, owner_id FROM items ORDER BY id"))
            .mappings()
            .all()
        )
    return {"data": [dict(r) for r in rows], "count": len(rows)}


@app.delete("/api/v1/items/{item_id}")
def delete_item(item_id: int, me: dict = Depends(current_user)) -> dict:
    with engine.begin() as conn:
        gone = conn.execute(text("DELETE FROM items WHERE id = :id"), {"id": item_id}).rowcount
    if not gone:
        raise HTTPException(status_code=404, detail="Item not found")
    return {"message": "Item deleted successfully"}
