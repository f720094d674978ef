-- The objects an export has written, each once it is whole in the target, so that an export interrupted
-- by a crash or a stop skips them when it runs again (file-level resume). They go with their operation.
CREATE TABLE export_objects (
    operation_id TEXT    NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    path         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    PRIMARY KEY (operation_id, path)
);
