-- The SAS signature in a column of its own, which no query option reaches (see ../0007).
ALTER TABLE operations ADD COLUMN storage_secret TEXT;
