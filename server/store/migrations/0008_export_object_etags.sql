-- The target's ETag of each object an export wrote whole: a resumed export skips an object only if the
-- target still holds that very object (same ETag), not merely one of the same size. Rows from before have
-- none, and their objects are written again.
ALTER TABLE export_objects ADD COLUMN etag TEXT;
