-- Set point of a freezer in degrees Celsius. Unknown (null) for freezers
-- registered before; the range covers liquid nitrogen to fridges.
ALTER TABLE freezer
    ADD COLUMN temperature_c integer,
    ADD CONSTRAINT freezer_temperature_c_range CHECK (temperature_c BETWEEN -200 AND 20);
