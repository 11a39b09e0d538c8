-- A short, stable code per site for labels and spreadsheets, e.g. NORTHLAB-3:
-- the letters and digits of the name (at most 12, upper case) and the id, which
-- makes it unique. Existing sites are backfilled; new sites get one from a
-- trigger. The code does not follow later renames: printed labels must stay valid.
CREATE FUNCTION site_code_for(site_name text, site_id bigint) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    RETURN coalesce(nullif(upper(left(regexp_replace(site_name, '[^A-Za-z0-9]+', '', 'g'), 12)), ''), 'SITE')
           || '-' || site_id::text;

ALTER TABLE site ADD COLUMN code text;

UPDATE site SET code = site_code_for(name, id);

ALTER TABLE site
    ALTER COLUMN code SET NOT NULL,
    ADD CONSTRAINT site_code_key UNIQUE (code);

CREATE FUNCTION site_assign_code() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- The identity default has already given NEW.id a value when BEFORE triggers run.
    IF NEW.code IS NULL THEN
        NEW.code := site_code_for(NEW.name, NEW.id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER site_assign_code BEFORE INSERT ON site
    FOR EACH ROW EXECUTE FUNCTION site_assign_code();
