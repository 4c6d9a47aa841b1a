-- A training session keeps the class hours each of its modules had when it was recorded:
-- changing a module's hours in the catalogue later applies to later sessions only, never to the
-- hours people already earned. Sessions recorded before this keep the catalogue's hours of now.
-- Keep in step with migrations/sqlite/0008_session_module_hours.sql.
ALTER TABLE training_session_modules ADD COLUMN hours BIGINT CHECK (hours BETWEEN 0 AND 1000);
UPDATE training_session_modules sm SET hours = m.hours
    FROM training_modules m WHERE m.id = sm.module_id;
ALTER TABLE training_session_modules ALTER COLUMN hours SET NOT NULL;
