CREATE TABLE IF NOT EXISTS note (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    body text NOT NULL
);
