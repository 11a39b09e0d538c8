CREATE TABLE IF NOT EXISTS note (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    body text NOT NULL
);

CREATE TABLE IF NOT EXISTS tag (
    id integer PRIMARY KEY,
    name text NOT NULL,
    color text NOT NULL DEFAULT 'grey'
);
CREATE SEQUENCE IF NOT EXISTS tag_ids START 1000;
