-- What stands at each site, counted. Used by GET /api/sites/<id>/instruments and
-- by the rule that a site with instruments cannot be deleted.
CREATE VIEW site_inventory AS
SELECT s.id   AS site_id,
       s.name AS site_name,
       (SELECT count(*) FROM computer c WHERE c.site_id = s.id)::integer AS computers,
       (SELECT count(*) FROM freezer f WHERE f.site_id = s.id)::integer AS freezers,
       (SELECT count(*)
          FROM container ct JOIN freezer f ON f.id = ct.freezer_id
         WHERE f.site_id = s.id)::integer AS containers
  FROM site s;
