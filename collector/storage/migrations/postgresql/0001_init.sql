-- 0001 (PostgreSQL): events by kind, the dead-letter sample and rejection totals.
-- The same tables as the SQLite migration: times are UTC microseconds since the Unix epoch (BIGINT),
-- so both backends run the same queries; every event table is keyed by the deterministic event_id.

CREATE TABLE visits (
    event_id     TEXT PRIMARY KEY,
    store        TEXT NOT NULL,
    sensor       TEXT NOT NULL,
    epoch        TEXT NOT NULL,
    device       TEXT NOT NULL,
    start_us     BIGINT NOT NULL,
    end_us       BIGINT NOT NULL,
    dwell_s      DOUBLE PRECISION NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('visitor', 'passerby', 'fixed')),
    frames       INTEGER NOT NULL,
    addresses    INTEGER NOT NULL,
    randomized   INTEGER NOT NULL,
    rssi_max     INTEGER,
    rssi_median  INTEGER,
    visit_no     INTEGER NOT NULL,
    consent      TEXT
);
CREATE INDEX visits_store_start ON visits (store, start_us);

CREATE TABLE counts (
    event_id              TEXT PRIMARY KEY,
    store                 TEXT NOT NULL,
    sensor                TEXT NOT NULL,
    epoch                 TEXT NOT NULL,
    start_us              BIGINT NOT NULL,
    end_us                BIGINT NOT NULL,
    present               DOUBLE PRECISION NOT NULL,
    visitors              INTEGER NOT NULL,
    passersby             INTEGER NOT NULL,
    visitors_present      INTEGER NOT NULL,
    new_visitors          INTEGER NOT NULL,
    returning_visitors    INTEGER NOT NULL,
    fixed_devices         INTEGER NOT NULL,
    frames                INTEGER NOT NULL,
    frames_randomized     INTEGER NOT NULL,
    addresses             INTEGER NOT NULL,
    addresses_randomized  INTEGER NOT NULL,
    devices               INTEGER NOT NULL
);
CREATE INDEX counts_store_start ON counts (store, start_us);

CREATE TABLE statuses (
    event_id       TEXT PRIMARY KEY,
    store          TEXT NOT NULL,
    sensor         TEXT NOT NULL,
    epoch          TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('online', 'offline')),
    at_us          BIGINT NOT NULL,
    version        TEXT NOT NULL,
    uptime_s       DOUBLE PRECISION NOT NULL,
    source         TEXT NOT NULL,
    frames         INTEGER NOT NULL,
    probe_requests INTEGER NOT NULL,
    decode_errors  TEXT NOT NULL  -- JSON object: reason -> count
);
CREATE INDEX statuses_store_at ON statuses (store, at_us);

CREATE TABLE dead_letters (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us    BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    topic    TEXT NOT NULL,
    detail   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    payload  BYTEA NOT NULL
);

CREATE TABLE rejections (
    reason  TEXT PRIMARY KEY,
    count   BIGINT NOT NULL
);
