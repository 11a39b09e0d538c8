-- PostgreSQL does not index the referencing side of a foreign key. Without these,
-- "instruments of a site" scans whole tables and every site/freezer delete checks
-- its references with a sequential scan.
CREATE INDEX computer_site_id_idx ON computer (site_id);
CREATE INDEX freezer_site_id_idx ON freezer (site_id);
CREATE INDEX container_freezer_id_idx ON container (freezer_id);
