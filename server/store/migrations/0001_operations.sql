-- Data policy operations. Timestamps are UTC text in one fixed format (2024-01-01T00:00:00.000Z), so text
-- order is time order; status is the enum's ordinal (notStarted=0, running=1, complete=2, failed=3,
-- unknownFutureValue=4), so $orderby status follows the enum as OData says.
CREATE TABLE operations (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    status           INTEGER NOT NULL,
    progress         REAL    NOT NULL DEFAULT 0,
    storage_location TEXT,
    submitted_at     TEXT    NOT NULL,
    completed_at     TEXT,
    version          INTEGER NOT NULL
);
CREATE INDEX operations_by_submitted ON operations (submitted_at, id);
CREATE INDEX operations_by_user ON operations (user_id, submitted_at);
CREATE INDEX operations_by_status ON operations (status, submitted_at);
