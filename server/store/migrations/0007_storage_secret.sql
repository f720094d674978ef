-- The SAS signature leaves the queryable column: `storage_location` keeps the location with its signature
-- redacted (what answers show and $filter/$search match), `storage_secret` the whole location, which only
-- the export reads. The data step (in Rust, beside the migration list) moves and redacts existing rows.
ALTER TABLE operations ADD COLUMN storage_secret TEXT;
UPDATE operations SET storage_secret = storage_location WHERE storage_location IS NOT NULL;
