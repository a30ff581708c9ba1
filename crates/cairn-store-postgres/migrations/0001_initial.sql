-- Cairn's PostgreSQL schema, version 1. Applied once, in one transaction, by the store when it
-- connects (see src/migrate.rs); never edited after release: a change is a new numbered file.
-- Identifiers order as bytes (COLLATE "C"), the same order as the embedded store's keys, so that
-- listings page the same on both backends.

-- Counters: `last_seq` (the highest event log position ever handed out) and `audit_seq`. The
-- row `last_seq` is also the appenders' lock: a batch takes it first, so log positions are handed
-- out in commit order and a reader that scans `seq > N` never misses a later commit.
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('last_seq', 0), ('audit_seq', 0);

-- Catalog rows as the embedded store keeps them: the JSON of the domain value.
CREATE TABLE items (
    id  TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE users (
    id  TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);

-- The event log, by position.
CREATE TABLE events (
    seq               BIGINT PRIMARY KEY,
    user_id           TEXT COLLATE "C" NOT NULL,
    item_id           TEXT COLLATE "C" NOT NULL,
    event_type        TEXT NOT NULL,
    value             DOUBLE PRECISION,
    ts                BIGINT NOT NULL,
    event_id          TEXT COLLATE "C",
    recommendation_id TEXT,
    -- JSON of the context map; NULL when empty (the common case).
    context           TEXT
);
-- Histories and erasure by user.
CREATE INDEX events_user_seq ON events (user_id, seq);
-- Idempotent posting: a client event id is stored once (NULLs are distinct).
CREATE UNIQUE INDEX events_event_id ON events (event_id);

-- Every (user, item) pair with at least one event: a user's seen items over the whole history.
CREATE TABLE user_items (
    user_id TEXT COLLATE "C" NOT NULL,
    item_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, item_id)
);

-- API keys by id: the JSON of the key record (the token's SHA-256 digest, never the token).
CREATE TABLE api_keys (
    id  TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);

-- The audit log of administrative actions, by position.
CREATE TABLE audit (
    seq      BIGINT PRIMARY KEY,
    at       BIGINT NOT NULL,
    key_id   TEXT NOT NULL,
    key_name TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT,
    status   INTEGER NOT NULL
);
