-- Subject rights requests: the entity as the wire has it (`body`, JSON), and beside it the columns that
-- $filter and $orderby read, written from the body in the same statement. Timestamps are UTC text in one
-- fixed format and enums their member's place in the type, as for operations.
CREATE TABLE subject_rights_requests (
    id                TEXT NOT NULL PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    version           INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    kind              INTEGER NOT NULL,
    data_subject_type INTEGER NOT NULL,
    display_name      TEXT NOT NULL,
    external_id       TEXT,
    subject_email     TEXT,
    created_at        TEXT NOT NULL,
    internal_due_at   TEXT,
    closed_at         TEXT,
    body              TEXT NOT NULL
);
CREATE INDEX subject_rights_requests_by_tenant ON subject_rights_requests (tenant_id, id);

-- Notes are appended, never changed; `seq` orders them.
CREATE TABLE subject_rights_request_notes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES subject_rights_requests (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX subject_rights_request_notes_by_request ON subject_rights_request_notes (request_id, seq);
