-- Structured contact notes. Keep in step with migrations/postgres/0002_notes.sql.
-- A submitted note is never edited: changes are appended to note_amendments (who, when, why).

CREATE TABLE notes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id   INTEGER NOT NULL REFERENCES contacts (id),
    author_id    INTEGER NOT NULL REFERENCES accounts (id),
    form_version INTEGER NOT NULL,
    fields       TEXT    NOT NULL, -- JSON object: field id -> value
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'submitted')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    submitted_at INTEGER,
    UNIQUE (contact_id, author_id)
) STRICT;
CREATE INDEX notes_by_contact ON notes (contact_id);

CREATE TABLE note_amendments (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    note_id   INTEGER NOT NULL REFERENCES notes (id),
    author_id INTEGER NOT NULL REFERENCES accounts (id),
    reason    TEXT    NOT NULL,
    changes   TEXT    NOT NULL, -- JSON object: field id -> new value
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX note_amendments_by_note ON note_amendments (note_id, id);
