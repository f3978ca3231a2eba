-- 0001: events by kind, the dead-letter sample and rejection totals.
-- Times are UTC microseconds since the Unix epoch (INTEGER): compact, and range scans stay numeric.
-- Every event table is keyed by the deterministic event_id, so a re-sent event is stored once.

CREATE TABLE visits (
    event_id     TEXT PRIMARY KEY,
    store        TEXT NOT NULL,
    sensor       TEXT NOT NULL,
    epoch        TEXT NOT NULL,
    device       TEXT NOT NULL,
    start_us     INTEGER NOT NULL,
    end_us       INTEGER NOT NULL,
    dwell_s      REAL NOT NULL,
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
    start_us              INTEGER NOT NULL,
    end_us                INTEGER NOT NULL,
    present               REAL NOT NULL,
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
    at_us          INTEGER NOT NULL,
    version        TEXT NOT NULL,
    uptime_s       REAL NOT NULL,
    source         TEXT NOT NULL,
    frames         INTEGER NOT NULL,
    probe_requests INTEGER NOT NULL,
    decode_errors  TEXT NOT NULL  -- JSON object: reason -> count
);
CREATE INDEX statuses_store_at ON statuses (store, at_us);

-- A bounded sample of rejected payloads (the newest N are kept), for diagnosis.
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us    INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    topic    TEXT NOT NULL,
    detail   TEXT NOT NULL,
    size     INTEGER NOT NULL,  -- of the whole payload; `payload` holds at most its first 512 bytes
    payload  BLOB NOT NULL
);

-- Running totals of every rejection, sampled or not.
CREATE TABLE rejections (
    reason  TEXT PRIMARY KEY,
    count   INTEGER NOT NULL
);
