-- Bearer tokens from POST /api/auth/login. Only the SHA-256 of a token is kept, so
-- reading this table does not give anyone a usable token. Tokens live in the
-- database (not in process memory) so that every gunicorn worker accepts them.
CREATE TABLE auth_token (
    token_hash text        PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT auth_token_hash_is_sha256 CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
