-- The export engine: why an operation failed, and each user's activity records.
ALTER TABLE operations ADD COLUMN failure_reason TEXT;
CREATE TABLE activities (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX activities_by_user ON activities (user_id, seq);
