INSERT INTO site (name, contact, country) VALUES ('Head office', 'Ada Lovelace', 'UK');
