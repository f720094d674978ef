-- The audit trail: who did what to whose data, one hash chain per tenant (each event carries the SHA-256
-- of its predecessor, so that editing or deleting one is detectable). Appended only; never updated.
CREATE TABLE audit_events (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    category TEXT NOT NULL,
    activity TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_user TEXT,
    operation_id TEXT,
    storage_location TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_by_time ON audit_events (tenant_id, at);
