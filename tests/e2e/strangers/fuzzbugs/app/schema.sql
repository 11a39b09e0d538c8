CREATE TABLE items (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    quantity integer NOT NULL
);
CREATE TABLE tags (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE
);
