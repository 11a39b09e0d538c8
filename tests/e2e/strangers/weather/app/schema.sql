CREATE TABLE sensors (id serial PRIMARY KEY, name text NOT NULL, unit text);
CREATE TABLE readings (id uuid PRIMARY KEY, sensor text NOT NULL, celsius double precision NOT NULL);
CREATE TABLE stations (code text PRIMARY KEY, name text NOT NULL);
-- More than a page of each, so listing has to follow "next".
INSERT INTO sensors (name, unit) VALUES ('cellar', 'C'), ('attic', 'C'), ('porch', 'F');
INSERT INTO readings (id, sensor, celsius) VALUES
    ('00000000-0000-4000-8000-000000000001', 'cellar', 12.5),
    ('00000000-0000-4000-8000-000000000002', 'attic', 30.0),
    ('00000000-0000-4000-8000-000000000003', 'porch', 18.0);
INSERT INTO stations (code, name) VALUES ('aaa', 'Hill'), ('aab', 'Lake'), ('aac', 'Town');
