-- Record when a container was registered. Rows that existed before this column
-- get the time of the migration: the true date is unknown, and NOT NULL keeps
-- every reader from handling a null that only old rows would have.
ALTER TABLE container ADD COLUMN created_at timestamptz;

UPDATE container SET created_at = now() WHERE created_at IS NULL;

ALTER TABLE container
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL;
