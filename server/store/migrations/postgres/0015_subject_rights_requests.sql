-- As SQLite's 0015: the entity as JSON text beside the columns $filter and $orderby read.
CREATE TABLE subject_rights_requests (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id         TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    status            BIGINT NOT NULL,
    kind              BIGINT NOT NULL,
    data_subject_type BIGINT NOT NULL,
    display_name      TEXT COLLATE "C" NOT NULL,
    external_id       TEXT COLLATE "C",
    subject_email     TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    internal_due_at   TEXT COLLATE "C",
    closed_at         TEXT COLLATE "C",
    body              TEXT NOT NULL
);
CREATE INDEX subject_rights_requests_by_tenant ON subject_rights_requests (tenant_id, id);

CREATE TABLE subject_rights_request_notes (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL REFERENCES subject_rights_requests (id) ON DELETE CASCADE,
    created_at TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX subject_rights_request_notes_by_request ON subject_rights_request_notes (request_id, seq);
