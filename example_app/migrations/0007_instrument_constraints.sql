-- Same rules as the API for instruments and containers (see 0006).
ALTER TABLE computer
    ADD CONSTRAINT computer_name_not_blank CHECK (btrim(name) <> ''),
    ADD CONSTRAINT computer_name_length CHECK (char_length(name) <= 200);

ALTER TABLE freezer
    ADD CONSTRAINT freezer_name_not_blank CHECK (btrim(name) <> ''),
    ADD CONSTRAINT freezer_name_length CHECK (char_length(name) <= 200);

ALTER TABLE container
    ADD CONSTRAINT container_description_length CHECK (char_length(description) <= 1000);
