-- Every list query is scoped to a tenant and ordered by submission (then id): indexes that lead with the
-- tenant and end with that order let SQLite answer a filtered page with a range read instead of a scan.
DROP INDEX IF EXISTS operations_by_submitted;
DROP INDEX IF EXISTS operations_by_user;
DROP INDEX IF EXISTS operations_by_status;
CREATE INDEX operations_by_tenant_user ON operations (tenant_id, user_id, submitted_at, id);
CREATE INDEX operations_by_tenant_status ON operations (tenant_id, status, submitted_at, id);
