"""Users and items, and the first superuser (as the template's initial data)."""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("hashed_password", sa.String(128), nullable=False),
        sa.Column("is_superuser", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255)),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    )
    hashed = hashlib.pbkdf2_hmac("sha256", b"changethis", b"first", 1000).hex()
    op.execute(
        "INSERT INTO users (email, salt, hashed_password, is_superuser) "
        f"VALUES ('admin@example.com', 'first', '{hashed}', true)"
    )


def downgrade():
    op.drop_table("items")
    op.drop_table("users")
