-- At most one row: when the server last recorded that it was alive. It is written every
-- `server.alive_every_ms` and once more at a graceful shutdown, after the last write of the
-- event log and the transcript, always over the same row. A restart takes the latest of it, the
-- newest event and the newest transcript line as when the server stopped, so that the time it
-- was down is no one's handle time. Keep in step with migrations/sqlite/0011_alive.sql.
CREATE TABLE alive (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);
