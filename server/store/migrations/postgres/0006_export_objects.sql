-- The objects an export has written whole, so that a resumed export skips them.
CREATE TABLE export_objects (
    operation_id TEXT COLLATE "C" NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    path         TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (operation_id, path)
);
