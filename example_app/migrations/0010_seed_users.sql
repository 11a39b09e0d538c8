-- The three users every test environment starts with (see README.md):
--   admin / admin-password, editor / editor-password, viewer / viewer-password.
-- pbkdf2 with 100k iterations keeps a login near 30 ms: this app exists to be
-- tested thousands of times, and these passwords are public anyway.
INSERT INTO app_user (username, password_hash, role) VALUES
    ('admin',  'pbkdf2:sha256:100000$ucmlo0Hd6CB9nxGj$f26209b6d23f7f6d22e201eaae525c293327b5270d70118877d4b6f07caf7656', 'admin'),
    ('editor', 'pbkdf2:sha256:100000$FyMIGvmMYomWhBH1$63e8185adb57cd96f23bb4ac75edc3c200c623fccc9caa48cdc83ee2ad6dc11d', 'editor'),
    ('viewer', 'pbkdf2:sha256:100000$WzFCM1i9YnmpU6Kj$9f4e569afd2ccca7b4dbace0a20424b5a88d5cd3ae158d5cbe794cd86d144dc7', 'viewer');
