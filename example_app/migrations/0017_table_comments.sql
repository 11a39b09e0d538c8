-- Documentation for people browsing the schema with psql \d+.
COMMENT ON TABLE site IS 'Places where instruments stand.';
COMMENT ON COLUMN site.code IS 'Short stable code, assigned at insert by trigger site_assign_code.';
COMMENT ON TABLE computer IS 'Instrument computers; mac is unique.';
COMMENT ON TABLE freezer IS 'Freezers; cannot be deleted while they hold containers.';
COMMENT ON COLUMN freezer.temperature_c IS 'Set point in degrees Celsius, -200 to 20.';
COMMENT ON TABLE container IS 'Sample containers, identified by the UUID on their label.';
COMMENT ON TABLE app_user IS 'API users; role is admin, editor or viewer.';
COMMENT ON TABLE auth_token IS 'SHA-256 of bearer tokens issued by POST /api/auth/login.';
COMMENT ON VIEW site_inventory IS 'Counts of computers, freezers and containers per site.';
