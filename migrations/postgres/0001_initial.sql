-- hotline schema, PostgreSQL dialect. Keep in step with migrations/sqlite/0001_initial.sql:
-- same tables, columns, constraints and index names; only the types differ.
-- Times are unix milliseconds (BIGINT). Every integer is BIGINT so that both dialects decode
-- to i64. The event payload is JSONB (for reports); other JSON documents are TEXT.

CREATE TABLE accounts (
    id                   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE,
    display_name         TEXT    NOT NULL,
    role                 TEXT    NOT NULL,
    password_hash        TEXT    NOT NULL,
    languages            TEXT    NOT NULL DEFAULT '[]', -- JSON array of language codes
    chat_capacity        BIGINT  NOT NULL CHECK (chat_capacity BETWEEN 0 AND 255),
    voice_capacity       BIGINT  NOT NULL CHECK (voice_capacity BETWEEN 0 AND 255),
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           BIGINT  NOT NULL
);

-- Only the SHA-256 of the cookie token is stored; the primary key is the lookup index.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE skills (
    skill       TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE account_skills (
    account_id  BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    skill       TEXT    NOT NULL REFERENCES skills (skill),
    proficiency BIGINT  NOT NULL CHECK (proficiency BETWEEN 1 AND 5),
    PRIMARY KEY (account_id, skill)
);

-- The whole QueueDefinition as JSON: it is edited and read as one document.
CREATE TABLE queues (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);

-- What the caller told us, plus the projection of the contact's events (store/projection.rs).
-- `queue` and `operator_id` carry no foreign key: a contact outlives the deletion of its queue,
-- and applying the event log must never fail on a reference.
CREATE TABLE contacts (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue             TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    language          TEXT    NOT NULL,
    topic             TEXT,
    age_group         TEXT,
    risk              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    operator_id       BIGINT,
    caller_key_hash   TEXT,
    resume_token_hash TEXT    NOT NULL,
    entered_at        BIGINT  NOT NULL,
    connected_at      BIGINT,
    ended_at          BIGINT,
    -- The seq of the contact's last transcript line; bumped with UPDATE … RETURNING so that
    -- concurrent appends are serialized on this row and seqs have no gaps.
    last_message_seq  BIGINT  NOT NULL DEFAULT 0
);
-- Only open contacts are indexed by state: what a restart restores, a small set in a big table.
CREATE INDEX contacts_open ON contacts (state, entered_at)
    WHERE state IN ('waiting', 'offered', 'assigned', 'wrapping');
CREATE INDEX contacts_by_caller ON contacts (caller_key_hash, entered_at)
    WHERE caller_key_hash IS NOT NULL;
CREATE UNIQUE INDEX contacts_by_resume_token ON contacts (resume_token_hash);

-- Transcript lines. The unique key (contact_id, seq) is also the "messages by contact" index.
CREATE TABLE messages (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id BIGINT  NOT NULL REFERENCES contacts (id),
    seq        BIGINT  NOT NULL,
    sender     TEXT    NOT NULL,
    author_id  BIGINT  REFERENCES accounts (id),
    visibility TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    UNIQUE (contact_id, seq)
);

-- The append-only event log. `seq` is global and strictly increasing (an identity never
-- reuses a value). No foreign keys: the log must always accept what the engine decided.
CREATE TABLE events (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    contact_id  BIGINT,
    operator_id BIGINT,
    data        JSONB   NOT NULL -- the whole Event
);
CREATE INDEX events_by_contact ON events (contact_id, seq) WHERE contact_id IS NOT NULL;
CREATE INDEX events_by_at ON events (at);

-- One row, updated first by every `record_events` transaction. It serializes writers of the
-- log, so that seq order is commit order and a reader paging with `events_after` never skips
-- an event that commits late with a lower seq (this matters on PostgreSQL; SQLite has one
-- writer anyway). `batches` counts record_events calls.
CREATE TABLE events_head (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    batches BIGINT NOT NULL
);
INSERT INTO events_head (id, batches) VALUES (1, 0);
