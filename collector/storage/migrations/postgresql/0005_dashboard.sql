-- 0005 (PostgreSQL): the dashboard's accounts and sessions, sensor health fields of status events, calibration reports.
-- Numbered after main's last migration; renumber at merge if another branch took this number.

-- A dashboard account: an argon2 hash (never the password), a role, and the stores it may see.
CREATE TABLE web_users (
    name           TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    stores         TEXT NOT NULL,  -- JSON array of store names, or ["*"] for every store
    created_us     BIGINT NOT NULL
);

-- A login session: only the SHA-256 of the cookie's random id is kept, so reading the database gives
-- no session to steal; the CSRF token of the session's forms; an absolute expiry.
CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_us  BIGINT NOT NULL,
    expires_us  BIGINT NOT NULL
);
CREATE INDEX web_sessions_name ON web_sessions (name);

-- The sensor table shows them; older status events had none.
ALTER TABLE statuses ADD COLUMN frames_per_s DOUBLE PRECISION;
ALTER TABLE statuses ADD COLUMN drops BIGINT;
ALTER TABLE statuses ADD COLUMN spool_depth BIGINT;

-- The latest `calibrate counts` report of each sensor (footfall/calibration.py), as its JSON text.
CREATE TABLE calibration_reports (
    store       TEXT NOT NULL,
    sensor      TEXT NOT NULL,
    made_us     BIGINT NOT NULL,
    report      TEXT NOT NULL,
    PRIMARY KEY (store, sensor)
);
