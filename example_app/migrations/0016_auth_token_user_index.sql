-- Login deletes a user's expired tokens, and deleting a user cascades to its
-- tokens: both look tokens up by user_id.
CREATE INDEX auth_token_user_id_idx ON auth_token (user_id);
