-- Paging, SQLite dialect. Keep in step with migrations/postgres/0003_paging.sql: same tables,
-- columns, constraints and index names; only the types differ. Times are unix milliseconds.

-- Where a person is paged besides the console: one address per channel ('webhook', 'email').
CREATE TABLE paging_addresses (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    PRIMARY KEY (account_id, channel)
) STRICT;

-- The whole ScheduleDefinition as JSON; `schedule_people` holds a foreign key to every account
-- it names, so a schedule naming an unknown person cannot be stored.
CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    definition TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE schedule_people (
    schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (schedule_id, account_id)
) STRICT;

-- The whole PolicyDefinition as JSON (its default flag is the column). At most one default.
CREATE TABLE escalation_policies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    definition TEXT    NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX escalation_policies_one_default ON escalation_policies (is_default)
    WHERE is_default = 1;

-- Every account and schedule a policy pages. No cascade from schedules: a schedule a policy
-- pages cannot be deleted.
CREATE TABLE escalation_policy_refs (
    policy_id   INTEGER NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    account_id  INTEGER REFERENCES accounts (id),
    schedule_id INTEGER REFERENCES schedules (id),
    CHECK ((account_id IS NULL) <> (schedule_id IS NULL))
) STRICT;
CREATE INDEX escalation_policy_refs_by_policy ON escalation_policy_refs (policy_id);
CREATE INDEX escalation_policy_refs_by_schedule ON escalation_policy_refs (schedule_id);

-- Crisis incidents. `policy` is the policy as it was when the incident triggered (JSON); the
-- policy row may change or go. `version` is compare-and-set by every change.
CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    state           TEXT    NOT NULL,
    urgency         TEXT    NOT NULL,
    source          TEXT    NOT NULL, -- FlagSource as JSON
    reason          TEXT,
    policy_id       INTEGER,
    policy          TEXT    NOT NULL,
    level           INTEGER NOT NULL,
    cycle           INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    triggered_at    INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by INTEGER REFERENCES accounts (id),
    resolved_at     INTEGER,
    resolved_by     INTEGER REFERENCES accounts (id),
    resolution      TEXT,
    version         INTEGER NOT NULL
) STRICT;
-- At most one open incident per contact: a second flag adds a step to the open one.
CREATE UNIQUE INDEX incidents_open_by_contact ON incidents (contact_id)
    WHERE state IN ('triggered', 'acknowledged');
CREATE INDEX incidents_by_state ON incidents (state, id);

-- The append-only timeline of each incident.
CREATE TABLE incident_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    actor_id    INTEGER,
    data        TEXT    NOT NULL -- the whole Step as JSON
) STRICT;
CREATE INDEX incident_steps_by_incident ON incident_steps (incident_id, id);

-- Durable timers, one row per incident and kind. Arming bumps `generation`; firing is the
-- compare-and-set `fired_at = now WHERE generation = read AND fired_at IS NULL`; `due_at` NULL
-- is disarmed.
CREATE TABLE paging_timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    kind        TEXT    NOT NULL,
    due_at      INTEGER,
    generation  INTEGER NOT NULL,
    fired_at    INTEGER,
    UNIQUE (incident_id, kind)
) STRICT;
CREATE INDEX paging_timers_due ON paging_timers (due_at)
    WHERE due_at IS NOT NULL AND fired_at IS NULL;

-- The outbox: one row per page (target × channel), written with the escalation that asked for
-- it. A claim moves `next_attempt_at` to the end of a lease and bumps `generation`.
CREATE TABLE page_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    channel         TEXT    NOT NULL,
    target_id       INTEGER,
    address         TEXT,
    level           INTEGER NOT NULL,
    cycle           INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    generation      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX page_deliveries_due ON page_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX page_deliveries_by_incident ON page_deliveries (incident_id, id);
