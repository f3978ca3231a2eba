-- 0002 (PostgreSQL): the opt-out and consent registry, and what retention needs to find its work.
-- The registry holds tokens (HMAC-SHA256(token key, MAC), 128 bits hex), never a MAC address.

CREATE TABLE privacy_registry (
    list      TEXT NOT NULL CHECK (list IN ('optout', 'consent')),
    token     TEXT NOT NULL CHECK (length(token) = 32),
    profile   TEXT NOT NULL,
    at_us     BIGINT NOT NULL,
    source    TEXT NOT NULL,
    added_us  BIGINT NOT NULL,
    PRIMARY KEY (list, token)
);
CREATE INDEX privacy_registry_profile ON privacy_registry (profile);

CREATE TABLE privacy_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  BIGINT NOT NULL
);
INSERT INTO privacy_revision VALUES (1, 0);

ALTER TABLE visits ADD COLUMN pseudonym_dropped INTEGER NOT NULL DEFAULT 0;
CREATE INDEX visits_pseudonymous_end ON visits (end_us) WHERE pseudonym_dropped = 0;
CREATE INDEX visits_end ON visits (end_us);
CREATE INDEX visits_consent ON visits (consent) WHERE consent IS NOT NULL;
CREATE INDEX dead_letters_at ON dead_letters (at_us);
