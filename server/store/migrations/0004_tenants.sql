-- Tenants: every operation, user and activity record belongs to the tenant (`tid`) of the token that made
-- or imported it. Rows from before tenants belong to the embedded default's tenant.
ALTER TABLE operations ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
CREATE INDEX operations_by_tenant ON operations (tenant_id, submitted_at, id);

CREATE TABLE users_by_tenant (
    tenant_id           TEXT NOT NULL,
    id                  TEXT NOT NULL,
    user_principal_name TEXT NOT NULL COLLATE NOCASE,
    display_name        TEXT,
    mail                TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_principal_name)
);
INSERT INTO users_by_tenant (tenant_id, id, user_principal_name, display_name, mail)
    SELECT '00000000-0000-0000-0000-000000000001', id, user_principal_name, display_name, mail FROM users;
DROP TABLE users;
ALTER TABLE users_by_tenant RENAME TO users;

ALTER TABLE activities ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
DROP INDEX activities_by_user;
CREATE INDEX activities_by_user ON activities (tenant_id, user_id, seq);
