-- The tenant's directory of users whose data can be exported.
CREATE TABLE users (
    id                  TEXT NOT NULL PRIMARY KEY,
    user_principal_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name        TEXT,
    mail                TEXT
);
