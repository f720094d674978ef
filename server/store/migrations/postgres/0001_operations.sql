-- PostgreSQL's schema follows SQLite's migrations number by number (see ../), with the same column types
-- where they matter for queries: timestamps as UTC text in one fixed format, status as the enum's
-- ordinal, and text compared bytewise (COLLATE "C"), so every query option sorts and matches as on SQLite.
CREATE TABLE operations (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id          TEXT COLLATE "C" NOT NULL,
    status           BIGINT NOT NULL,
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
    storage_location TEXT COLLATE "C",
    submitted_at     TEXT COLLATE "C" NOT NULL,
    completed_at     TEXT COLLATE "C",
    version          BIGINT NOT NULL
);
