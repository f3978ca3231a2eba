-- 0004: online profiles and their online events, for the omnichannel join (collector/profiles.py).
-- A profile is the marketing tool's pseudonymous id; it meets the store visits only through the consent
-- registry (privacy_registry.profile), so a profile without a consent is never joined to a visit.

CREATE TABLE profiles (
    id          TEXT PRIMARY KEY,
    attributes  TEXT NOT NULL,     -- JSON object: name -> string, number, boolean or null
    segments    TEXT NOT NULL,     -- JSON array of segment names, sorted, no duplicates
    updated_us  INTEGER NOT NULL   -- when the collector last recorded it
);

CREATE TABLE online_events (
    id          TEXT PRIMARY KEY,  -- the source's id: a re-sent event is stored once
    profile_id  TEXT NOT NULL,
    at_us       INTEGER NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('web', 'app', 'email')),
    type        TEXT NOT NULL CHECK (type IN ('page_view', 'product_view', 'add_to_cart', 'purchase')),
    product     TEXT,
    value       REAL CHECK (value IS NULL OR value >= 0)
);
CREATE INDEX online_events_profile_at ON online_events (profile_id, at_us);
CREATE INDEX online_events_at ON online_events (at_us);
