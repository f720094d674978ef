-- The target's ETag of each object an export wrote whole.
ALTER TABLE export_objects ADD COLUMN etag TEXT;
