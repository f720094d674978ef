-- How many rows a data source's query wrote into each object (NULL for files that are not rows), so
-- that a resumed export's manifest still counts the rows of the files it kept.
ALTER TABLE export_objects ADD COLUMN row_count BIGINT;
