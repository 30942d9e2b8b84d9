-- An SMS that carries no agent link (the missed-call SMS): sms.link_id may now be NULL.
-- SQLite cannot drop a NOT NULL in place, and migrations run inside one transaction with
-- foreign keys on, so the outbox tables are rebuilt: the old ones are renamed aside first
-- (their children's references follow the rename), copied, then dropped children first.
ALTER TABLE sms_parts RENAME TO sms_parts_005;
ALTER TABLE sms_events RENAME TO sms_events_005;
ALTER TABLE sms RENAME TO sms_005;

CREATE TABLE sms (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER REFERENCES links (id), -- NULL: an SMS with no agent link
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
CREATE TABLE sms_parts (
    sms_id          INTEGER NOT NULL REFERENCES sms (id),
    part_no         INTEGER NOT NULL,
    payload         BLOB    NOT NULL,
    message_id      TEXT,
    PRIMARY KEY (sms_id, part_no)
);
CREATE TABLE sms_events (
    id              INTEGER PRIMARY KEY,
    sms_id          INTEGER NOT NULL REFERENCES sms (id),
    at              REAL    NOT NULL,
    kind            TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT ''
);

INSERT INTO sms (id, link_id, destination, text, data_coding, esm_class, status, attempts,
                 not_before, expires_at, smpp_status, error, created_at, updated_at)
    SELECT id, link_id, destination, text, data_coding, esm_class, status, attempts,
           not_before, expires_at, smpp_status, error, created_at, updated_at FROM sms_005;
INSERT INTO sms_parts (sms_id, part_no, payload, message_id)
    SELECT sms_id, part_no, payload, message_id FROM sms_parts_005;
INSERT INTO sms_events (id, sms_id, at, kind, detail)
    SELECT id, sms_id, at, kind, detail FROM sms_events_005;

DROP TABLE sms_parts_005;
DROP TABLE sms_events_005;
DROP TABLE sms_005;

CREATE INDEX sms_due ON sms (status, not_before);
CREATE INDEX sms_destination ON sms (destination, created_at);
CREATE INDEX sms_link ON sms (link_id);
CREATE INDEX sms_parts_message_id ON sms_parts (message_id);
CREATE INDEX sms_events_sms ON sms_events (sms_id);
