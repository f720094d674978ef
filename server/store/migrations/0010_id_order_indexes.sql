-- Lists without $orderby are in id order (ids are time-ordered GUIDs), so a page of one user's (or one
-- status's) operations needs an index that ends with the id: without one, every matching row is read and
-- sorted to answer twenty.
CREATE INDEX operations_by_tenant_user_id ON operations (tenant_id, user_id, id);
CREATE INDEX operations_by_tenant_status_id ON operations (tenant_id, status, id);
CREATE INDEX operations_by_tenant_id ON operations (tenant_id, id);
