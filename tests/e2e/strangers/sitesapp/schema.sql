CREATE TABLE site (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    contact text,
    country text
);
