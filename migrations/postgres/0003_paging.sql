-- Paging, PostgreSQL dialect. Keep in step with migrations/sqlite/0003_paging.sql: same tables,
-- columns, constraints and index names; only the types differ. Times are unix milliseconds.

-- Where a person is paged besides the console: one address per channel ('webhook', 'email').
CREATE TABLE paging_addresses (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    PRIMARY KEY (account_id, channel)
);

-- The whole ScheduleDefinition as JSON; `schedule_people` holds a foreign key to every account
-- it names, so a schedule naming an unknown person cannot be stored.
CREATE TABLE schedules (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    definition TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE schedule_people (
    schedule_id BIGINT  NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    account_id  BIGINT  NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (schedule_id, account_id)
);

-- The whole PolicyDefinition as JSON (its default flag is the column). At most one default.
CREATE TABLE escalation_policies (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    definition TEXT    NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX escalation_policies_one_default ON escalation_policies (is_default)
    WHERE is_default;

-- Every account and schedule a policy pages. No cascade from schedules: a schedule a policy
-- pages cannot be deleted.
CREATE TABLE escalation_policy_refs (
    policy_id   BIGINT  NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    account_id  BIGINT  REFERENCES accounts (id),
    schedule_id BIGINT  REFERENCES schedules (id),
    CHECK ((account_id IS NULL) <> (schedule_id IS NULL))
);
CREATE INDEX escalation_policy_refs_by_policy ON escalation_policy_refs (policy_id);
CREATE INDEX escalation_policy_refs_by_schedule ON escalation_policy_refs (schedule_id);

-- Crisis incidents. `policy` is the policy as it was when the incident triggered (JSON); the
-- policy row may change or go. `version` is compare-and-set by every change.
CREATE TABLE incidents (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id      BIGINT  NOT NULL REFERENCES contacts (id),
    state           TEXT    NOT NULL,
    urgency         TEXT    NOT NULL,
    source          TEXT    NOT NULL, -- FlagSource as JSON
    reason          TEXT,
    policy_id       BIGINT ,
    policy          TEXT    NOT NULL,
    level           BIGINT  NOT NULL,
    cycle           BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    triggered_at    BIGINT  NOT NULL,
    acknowledged_at BIGINT ,
    acknowledged_by BIGINT  REFERENCES accounts (id),
    resolved_at     BIGINT ,
    resolved_by     BIGINT  REFERENCES accounts (id),
    resolution      TEXT,
    version         BIGINT  NOT NULL
);
-- At most one open incident per contact: a second flag adds a step to the open one.
CREATE UNIQUE INDEX incidents_open_by_contact ON incidents (contact_id)
    WHERE state IN ('triggered', 'acknowledged');
CREATE INDEX incidents_by_state ON incidents (state, id);

-- The append-only timeline of each incident.
CREATE TABLE incident_steps (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    at          BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    actor_id    BIGINT ,
    data        TEXT    NOT NULL -- the whole Step as JSON
);
CREATE INDEX incident_steps_by_incident ON incident_steps (incident_id, id);

-- Durable timers, one row per incident and kind. Arming bumps `generation`; firing is the
-- compare-and-set `fired_at = now WHERE generation = read AND fired_at IS NULL`; `due_at` NULL
-- is disarmed.
CREATE TABLE paging_timers (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    kind        TEXT    NOT NULL,
    due_at      BIGINT ,
    generation  BIGINT  NOT NULL,
    fired_at    BIGINT ,
    UNIQUE (incident_id, kind)
);
CREATE INDEX paging_timers_due ON paging_timers (due_at)
    WHERE due_at IS NOT NULL AND fired_at IS NULL;

-- The outbox: one row per page (target × channel), written with the escalation that asked for
-- it. A claim moves `next_attempt_at` to the end of a lease and bumps `generation`.
CREATE TABLE page_deliveries (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     BIGINT  NOT NULL REFERENCES incidents (id),
    channel         TEXT    NOT NULL,
    target_id       BIGINT ,
    address         TEXT,
    level           BIGINT  NOT NULL,
    cycle           BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT ,
    generation      BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX page_deliveries_due ON page_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX page_deliveries_by_incident ON page_deliveries (incident_id, id);
