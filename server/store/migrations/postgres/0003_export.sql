-- Why an operation failed, and each user's activity records.
ALTER TABLE operations ADD COLUMN failure_reason TEXT;
CREATE TABLE activities (
    seq         BIGSERIAL PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL,
    occurred_at TEXT COLLATE "C" NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
