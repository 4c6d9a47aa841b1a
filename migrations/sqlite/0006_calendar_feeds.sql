-- A secret address per person for their calendar app to read on-call schedules from, which
-- cannot send the console's session cookie. Only the token's hash is kept; one per account.
CREATE TABLE calendar_feeds (
    token_hash TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
) STRICT;
