-- A training session keeps the class hours each of its modules had when it was recorded:
-- changing a module's hours in the catalogue later applies to later sessions only, never to the
-- hours people already earned. Sessions recorded before this keep the catalogue's hours of now.
-- SQLite cannot add a NOT NULL column without a default, so the table is rebuilt. Keep in step
-- with migrations/postgres/0008_session_module_hours.sql.
CREATE TABLE training_session_modules_new (
    session_id INTEGER NOT NULL REFERENCES training_sessions (id) ON DELETE CASCADE,
    module_id  TEXT    NOT NULL REFERENCES training_modules (id),
    hours      INTEGER NOT NULL CHECK (hours BETWEEN 0 AND 1000),
    PRIMARY KEY (session_id, module_id)
) STRICT;
INSERT INTO training_session_modules_new (session_id, module_id, hours)
    SELECT sm.session_id, sm.module_id,
           (SELECT m.hours FROM training_modules m WHERE m.id = sm.module_id)
    FROM training_session_modules sm;
DROP TABLE training_session_modules;
ALTER TABLE training_session_modules_new RENAME TO training_session_modules;
