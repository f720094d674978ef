-- Exports run under a lease: a worker claims an operation (its owner id, until when, and the claim's
-- attempt number, bumped by every claim) and renews the lease while it runs. A running operation whose
-- lease ended is claimed again by any worker; every write of the export names its attempt, so a worker
-- that lost its lease cannot overwrite the one that took over. Rows running before leases existed have
-- none, and are claimed again at once.
ALTER TABLE operations ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operations ADD COLUMN lease_owner TEXT;
ALTER TABLE operations ADD COLUMN lease_expires TEXT;
UPDATE operations SET lease_expires = '' WHERE status = 1;
CREATE INDEX operations_queue ON operations (status, submitted_at, id);
CREATE INDEX users_by_lower_upn ON users (tenant_id, lower(user_principal_name));
