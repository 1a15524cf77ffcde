-- Profiles: a bio beside the name, handle, theme and languages the first schema has, and each
-- user's notification settings (which categories reach them, in the app and by email).
ALTER TABLE users
    ADD COLUMN bio                   VARCHAR(2048),
    ADD COLUMN notification_settings JSONB NOT NULL DEFAULT '{}';
