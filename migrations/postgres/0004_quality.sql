-- Quality, training and assessment; the access log. PostgreSQL dialect. Keep in step with
-- migrations/sqlite/0004_quality.sql: same tables, columns, constraints and index names; only
-- the types differ. Times are unix milliseconds; dates (training days) are ISO `YYYY-MM-DD` text.

-- Every read of a contact's transcript, notes or audit view: who, when, what. No foreign key to
-- contacts: recording a read must never fail on a reference.
CREATE TABLE access_log (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reader_id  BIGINT  NOT NULL REFERENCES accounts (id),
    contact_id BIGINT  NOT NULL,
    what       TEXT    NOT NULL CHECK (what IN ('transcript', 'notes', 'audit')),
    at         BIGINT  NOT NULL
);
CREATE INDEX access_log_by_contact ON access_log (contact_id, id);
CREATE INDEX access_log_by_reader ON access_log (reader_id, id);

-- The last operator_state event of each operator before a report's start is read through this.
CREATE INDEX events_operator_state ON events (operator_id, seq) WHERE kind = 'operator_state';
-- Cohorts of contacts by arrival.
CREATE INDEX events_enter_queue ON events (at) WHERE kind = 'enter_queue';
-- Trends: contacts by day of arrival.
CREATE INDEX contacts_by_entered ON contacts (entered_at);

-- Quality audits: one per contact and audited operator. `scorecard` is the scorecard as it was
-- when the audit was scored (JSON); `scores` maps item id to 0, 1, 2 or null (not applicable).
CREATE TABLE audits (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id       BIGINT  NOT NULL REFERENCES contacts (id),
    operator_id      BIGINT  NOT NULL REFERENCES accounts (id),
    cycle            TEXT    NOT NULL,
    reason           TEXT    NOT NULL CHECK (reason IN ('crisis', 'sample', 'manual')),
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'scored', 'acknowledged')),
    scorecard        TEXT,
    scores           TEXT,
    points           BIGINT,
    max_points       BIGINT,
    feedback         TEXT,
    auditor_id       BIGINT  REFERENCES accounts (id),
    scored_at        BIGINT,
    acknowledged_at  BIGINT,
    operator_comment TEXT,
    created_at       BIGINT  NOT NULL,
    UNIQUE (contact_id, operator_id)
);
CREATE INDEX audits_by_status ON audits (status, id);
CREATE INDEX audits_by_operator ON audits (operator_id, cycle);

-- The training catalogue ("8+x": base modules everyone takes, extra modules by role).
CREATE TABLE training_modules (
    id          TEXT    PRIMARY KEY,
    name_zh     TEXT    NOT NULL,
    name_en     TEXT    NOT NULL,
    hours       BIGINT  NOT NULL CHECK (hours BETWEEN 0 AND 1000),
    kind        TEXT    NOT NULL CHECK (kind IN ('base', 'extra')),
    position    BIGINT  NOT NULL
);
INSERT INTO training_modules (id, name_zh, name_en, hours, kind, position) VALUES
    ('basic_knowledge', '基础知识', 'Basic knowledge', 4, 'base', 1),
    ('health_education', '健康教育', 'Health education', 2, 'base', 2),
    ('problem_recognition', '问题识别', 'Problem recognition', 4, 'base', 3),
    ('communication_intervention', '人际沟通与干预', 'Interpersonal communication and intervention', 8, 'base', 4),
    ('stress_management', '压力管理', 'Stress management', 4, 'base', 5),
    ('psychiatric_rehabilitation', '精神康复', 'Psychiatric rehabilitation', 2, 'base', 6),
    ('key_groups', '重点人群', 'Key groups (children, elderly, pregnant women, disabled)', 4, 'base', 7),
    ('special_groups', '特殊人群', 'Special groups (unemployed, homeless, community corrections)', 4, 'base', 8),
    ('risk_assessment', '风险评估与转介', 'Risk assessment and referral', 4, 'extra', 9);

CREATE TABLE training_sessions (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title      TEXT    NOT NULL,
    held_on    TEXT    NOT NULL, -- YYYY-MM-DD, local date
    trainer    TEXT    NOT NULL,
    systematic BOOLEAN NOT NULL,
    created_by BIGINT  NOT NULL REFERENCES accounts (id),
    created_at BIGINT  NOT NULL
);
CREATE INDEX training_sessions_by_day ON training_sessions (held_on);

CREATE TABLE training_session_modules (
    session_id BIGINT  NOT NULL REFERENCES training_sessions (id) ON DELETE CASCADE,
    module_id  TEXT    NOT NULL REFERENCES training_modules (id),
    PRIMARY KEY (session_id, module_id)
);

CREATE TABLE training_attendance (
    session_id         BIGINT  NOT NULL REFERENCES training_sessions (id) ON DELETE CASCADE,
    account_id         BIGINT  NOT NULL REFERENCES accounts (id),
    questionnaire_done BOOLEAN NOT NULL,
    PRIMARY KEY (session_id, account_id)
);
CREATE INDEX training_attendance_by_account ON training_attendance (account_id);

-- Certifications: each grants a routing skill (settings `quality.certifications`); a lapsed or
-- revoked one has its skill removed once (`lapsed_at`, compare-and-set).
CREATE TABLE certifications (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       BIGINT  NOT NULL REFERENCES accounts (id),
    kind             TEXT    NOT NULL,
    granted_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    granted_by       BIGINT  NOT NULL REFERENCES accounts (id),
    assessment_score BIGINT,
    note             TEXT,
    revoked_at       BIGINT,
    revoked_by       BIGINT  REFERENCES accounts (id),
    revoke_reason    TEXT,
    lapsed_at        BIGINT
);
CREATE INDEX certifications_by_account ON certifications (account_id, id);
CREATE INDEX certifications_due ON certifications (expires_at) WHERE lapsed_at IS NULL;

-- The supervisor's sign-off of one operator's assessment in one cycle, with the figures as
-- they were when signed (JSON), kept as the assessment form.
CREATE TABLE assessment_signoffs (
    cycle       TEXT    NOT NULL,
    operator_id BIGINT  NOT NULL REFERENCES accounts (id),
    computed    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('meets', 'needs_improvement', 'not_eligible')),
    comment     TEXT    NOT NULL,
    figures     TEXT    NOT NULL,
    signed_by   BIGINT  NOT NULL REFERENCES accounts (id),
    signed_at   BIGINT  NOT NULL,
    PRIMARY KEY (cycle, operator_id)
);
