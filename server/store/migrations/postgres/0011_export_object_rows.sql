-- How many rows a data source's query wrote into each object (NULL for files that are not rows).
ALTER TABLE export_objects ADD COLUMN row_count BIGINT;
