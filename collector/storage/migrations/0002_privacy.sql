-- 0002: the opt-out and consent registry, and what retention needs to find its work.
-- The registry holds tokens (HMAC-SHA256(token key, MAC), 128 bits hex), never a MAC address.

CREATE TABLE privacy_registry (
    list      TEXT NOT NULL CHECK (list IN ('optout', 'consent')),
    token     TEXT NOT NULL CHECK (length(token) = 32),
    profile   TEXT NOT NULL,     -- the source's profile id; '' when it gave none (an anonymous opt-out)
    at_us     INTEGER NOT NULL,  -- when the person opted out or consented, as the source says
    source    TEXT NOT NULL,     -- where it came from: a web page, a captive portal, a CRM export file
    added_us  INTEGER NOT NULL,  -- when the collector recorded it
    PRIMARY KEY (list, token)
);
CREATE INDEX privacy_registry_profile ON privacy_registry (profile);

-- The registry's change counter: every control message carries it as its revision.
CREATE TABLE privacy_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO privacy_revision VALUES (1, 0);

-- 1 once retention has replaced the row's device pseudonym by a random label: left alone after that.
ALTER TABLE visits ADD COLUMN pseudonym_dropped INTEGER NOT NULL DEFAULT 0;
CREATE INDEX visits_pseudonymous_end ON visits (end_us) WHERE pseudonym_dropped = 0;
CREATE INDEX visits_end ON visits (end_us);
CREATE INDEX visits_consent ON visits (consent) WHERE consent IS NOT NULL;
CREATE INDEX dead_letters_at ON dead_letters (at_us);
