-- Structured contact notes. Keep in step with migrations/sqlite/0002_notes.sql.
-- A submitted note is never edited: changes are appended to note_amendments (who, when, why).

CREATE TABLE notes (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id   BIGINT NOT NULL REFERENCES contacts (id),
    author_id    BIGINT NOT NULL REFERENCES accounts (id),
    form_version BIGINT NOT NULL,
    fields       TEXT   NOT NULL, -- JSON object: field id -> value
    status       TEXT   NOT NULL CHECK (status IN ('draft', 'submitted')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    submitted_at BIGINT,
    UNIQUE (contact_id, author_id)
);
CREATE INDEX notes_by_contact ON notes (contact_id);

CREATE TABLE note_amendments (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    note_id   BIGINT NOT NULL REFERENCES notes (id),
    author_id BIGINT NOT NULL REFERENCES accounts (id),
    reason    TEXT   NOT NULL,
    changes   TEXT   NOT NULL, -- JSON object: field id -> new value
    at        BIGINT NOT NULL
);
CREATE INDEX note_amendments_by_note ON note_amendments (note_id, id);
