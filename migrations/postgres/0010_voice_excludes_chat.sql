-- Whether a voice contact leaves no room for chats (and a chat none for a voice contact), per
-- operator; on by default, as it was for everyone before. Keep in step with
-- migrations/sqlite/0010_voice_excludes_chat.sql.
ALTER TABLE accounts ADD COLUMN voice_excludes_chat BOOLEAN NOT NULL DEFAULT TRUE;
