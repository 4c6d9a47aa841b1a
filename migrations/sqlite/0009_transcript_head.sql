-- One row, written by every transcript batch after its lines: the batch's number and the id of
-- the last line written. A batch numbered n is refused unless the head is at n - 1, so a batch
-- whose commit was made although its writer was told it failed (a connection lost after the
-- commit) is never written twice, and its lines can be read back (they are the last ones).
-- Keep in step with migrations/postgres/0009_transcript_head.sql.
CREATE TABLE transcript_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    batches INTEGER NOT NULL,
    last_id INTEGER NOT NULL
) STRICT;
INSERT INTO transcript_head (id, batches, last_id)
    VALUES (1, 0, COALESCE((SELECT max(id) FROM messages), 0));
