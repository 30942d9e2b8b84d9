-- Links, the SMS outbox, decisions about calls, visits, ratings and the do-not-send list.

-- A short link bound to one (agent, customer) pair.
CREATE TABLE links (
    id              INTEGER PRIMARY KEY,
    code            TEXT    NOT NULL UNIQUE,
    agent_id        TEXT    NOT NULL,
    customer_number TEXT    NOT NULL,           -- E.164
    customer_region TEXT    NOT NULL DEFAULT '',
    linkedid        TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    expires_at      REAL    NOT NULL,
    revoked_at      REAL
);
CREATE INDEX links_pair ON links (agent_id, customer_number, expires_at);
CREATE INDEX links_customer ON links (customer_number);
CREATE INDEX links_created ON links (created_at);

-- Every decision taken about a call or a send request, sent or not, with its reason.
CREATE TABLE decisions (
    id              INTEGER PRIMARY KEY,
    linkedid        TEXT    NOT NULL DEFAULT '',
    trigger         TEXT    NOT NULL,           -- hangup | agent_complete | feature_code | api | cli
    agent_id        TEXT    NOT NULL DEFAULT '',
    agent_extension TEXT    NOT NULL DEFAULT '',
    customer_number TEXT    NOT NULL DEFAULT '', -- E.164 when it could be normalised
    talk_seconds    REAL,
    outcome         TEXT    NOT NULL,           -- sent | deferred | skipped
    reason          TEXT    NOT NULL DEFAULT '',
    link_id         INTEGER REFERENCES links (id),
    sms_id          INTEGER,
    decided_at      REAL    NOT NULL
);
CREATE INDEX decisions_linkedid ON decisions (linkedid);
CREATE INDEX decisions_customer ON decisions (customer_number);
CREATE INDEX decisions_at ON decisions (decided_at);

-- The durable outbox: a row is written in the same transaction as its link.
CREATE TABLE sms (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    destination     TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    data_coding     INTEGER NOT NULL,
    esm_class       INTEGER NOT NULL,
    status          TEXT    NOT NULL,           -- queued | submitting | submitted | delivered | failed | expired
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      REAL    NOT NULL,
    expires_at      REAL    NOT NULL,
    smpp_status     INTEGER,
    error           TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX sms_due ON sms (status, not_before);
CREATE INDEX sms_destination ON sms (destination, created_at);
CREATE INDEX sms_link ON sms (link_id);

-- The encoded parts, built once and reused on every resend.
CREATE TABLE sms_parts (
    sms_id          INTEGER NOT NULL REFERENCES sms (id),
    part_no         INTEGER NOT NULL,
    payload         BLOB    NOT NULL,
    message_id      TEXT,
    PRIMARY KEY (sms_id, part_no)
);
CREATE INDEX sms_parts_message_id ON sms_parts (message_id);

-- What happened to each SMS, in order: attempts, SMPP answers, receipts.
CREATE TABLE sms_events (
    id              INTEGER PRIMARY KEY,
    sms_id          INTEGER NOT NULL REFERENCES sms (id),
    at              REAL    NOT NULL,
    kind            TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sms_events_sms ON sms_events (sms_id);

CREATE TABLE visits (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    kind            TEXT    NOT NULL,           -- open | call | vcard
    client          TEXT    NOT NULL DEFAULT '', -- anonymised address
    user_agent      TEXT    NOT NULL DEFAULT '',
    at              REAL    NOT NULL
);
CREATE INDEX visits_link ON visits (link_id, kind);

CREATE TABLE ratings (
    link_id         INTEGER PRIMARY KEY REFERENCES links (id),
    agent_id        TEXT    NOT NULL,
    stars           INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment         TEXT    NOT NULL DEFAULT '',
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX ratings_agent ON ratings (agent_id, updated_at);

-- Numbers that replied STOP (or were added by an operator): never texted again until START.
CREATE TABLE opt_outs (
    customer_number TEXT    PRIMARY KEY,
    source          TEXT    NOT NULL,
    at              REAL    NOT NULL
);
