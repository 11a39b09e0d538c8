-- Two sites called "North Lab" and "north lab" were one site entered twice.
-- Existing duplicates are renamed by appending their id before the index is built.
UPDATE site s
   SET name = s.name || ' (' || s.id || ')'
 WHERE EXISTS (
        SELECT 1 FROM site other
         WHERE lower(other.name) = lower(s.name) AND other.id < s.id);

CREATE UNIQUE INDEX site_name_lower_key ON site (lower(name));
