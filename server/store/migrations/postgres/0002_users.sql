-- The directory of users whose data can be exported (tenants come with 0004).
CREATE TABLE users (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_principal_name TEXT COLLATE "C" NOT NULL,
    display_name        TEXT,
    mail                TEXT
);
