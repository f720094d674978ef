-- Exports run under a lease, every later write fenced by the claim's attempt (see ../0009).
ALTER TABLE operations ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE operations ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE operations ADD COLUMN lease_expires TEXT COLLATE "C";
CREATE INDEX operations_queue ON operations (status, submitted_at, id);
