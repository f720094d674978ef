-- Tenants: every operation, user and activity record belongs to the tenant (`tid`) of its token.
ALTER TABLE operations ADD COLUMN tenant_id TEXT COLLATE "C" NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
ALTER TABLE users ADD COLUMN tenant_id TEXT COLLATE "C" NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
ALTER TABLE users DROP CONSTRAINT users_pkey;
ALTER TABLE users ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE activities ADD COLUMN tenant_id TEXT COLLATE "C" NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001';
CREATE INDEX activities_by_user ON activities (tenant_id, user_id, seq);
CREATE UNIQUE INDEX users_by_upn ON users (tenant_id, lower(user_principal_name));
