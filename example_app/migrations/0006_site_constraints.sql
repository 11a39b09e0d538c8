-- The API validates lengths, but the database is the last line: other writers
-- (imports, psql sessions) must not store what the API could not return.
ALTER TABLE site
    ADD CONSTRAINT site_name_not_blank CHECK (btrim(name) <> ''),
    ADD CONSTRAINT site_name_length CHECK (char_length(name) <= 200),
    ADD CONSTRAINT site_contact_length CHECK (char_length(contact) <= 200),
    ADD CONSTRAINT site_address_length CHECK (char_length(address) <= 500),
    ADD CONSTRAINT site_state_or_region_length CHECK (char_length(state_or_region) <= 100),
    ADD CONSTRAINT site_country_length CHECK (char_length(country) <= 100),
    ADD CONSTRAINT site_postcode_or_zip_length CHECK (char_length(postcode_or_zip) <= 20);
