-- Indexes that lead with the tenant and end with the list order (submission, then id).
CREATE INDEX operations_by_tenant ON operations (tenant_id, submitted_at, id);
CREATE INDEX operations_by_tenant_user ON operations (tenant_id, user_id, submitted_at, id);
CREATE INDEX operations_by_tenant_status ON operations (tenant_id, status, submitted_at, id);
