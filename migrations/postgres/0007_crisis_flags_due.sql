-- A crisis flag recorded before the fact that raises it (a note that pages) is made durable,
-- and cleared once its incident is open: a flag whose paging failed, or that a crash cut short,
-- is raised by the paging auditor instead of being lost.
CREATE TABLE crisis_flags_due (
    id         BIGSERIAL PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts (id),
    source     TEXT   NOT NULL, -- FlagSource as JSON
    created_at BIGINT NOT NULL
);
