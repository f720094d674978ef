-- As ../0010: indexes that end with the id, the order of lists without $orderby.
CREATE INDEX operations_by_tenant_user_id ON operations (tenant_id, user_id, id);
CREATE INDEX operations_by_tenant_status_id ON operations (tenant_id, status, id);
CREATE INDEX operations_by_tenant_id ON operations (tenant_id, id);
