-- Customers' replies, and SMS that answer them (no link): the outbox learns what each SMS is.

-- Every SMS a customer sent us, as typed, with what it was taken for and the answer queued.
CREATE TABLE replies (
    id              INTEGER PRIMARY KEY,
    customer_number TEXT    NOT NULL,           -- E.164 when it could be normalised
    text            TEXT    NOT NULL,           -- as received (emptied by retention)
    kind            TEXT    NOT NULL,           -- opt_out | opt_in | help | other
    answer          TEXT    NOT NULL DEFAULT '', -- why no answer went out, when none did
    sms_id          INTEGER,                    -- the automatic answer, when one was queued
    received_at     REAL    NOT NULL
);
CREATE INDEX replies_customer ON replies (customer_number, received_at);
CREATE INDEX replies_at ON replies (received_at);

-- The outbox again, link_id now optional (an answer to a reply has no link) and each SMS's
-- kind: card | opt_out_confirmation | opt_in_confirmation | help_reply. SQLite cannot drop a
-- NOT NULL in place: the table is copied (foreign keys are off while migrations run).
CREATE TABLE sms_new (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER REFERENCES links (id),
    kind            TEXT    NOT NULL DEFAULT 'card',
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
INSERT INTO sms_new (id, link_id, kind, destination, text, data_coding, esm_class, status,
                     attempts, not_before, expires_at, smpp_status, error, created_at, updated_at)
    SELECT id, link_id, 'card', destination, text, data_coding, esm_class, status, attempts,
           not_before, expires_at, smpp_status, error, created_at, updated_at FROM sms;
DROP TABLE sms;
ALTER TABLE sms_new RENAME TO sms;
CREATE INDEX sms_due ON sms (status, not_before);
CREATE INDEX sms_destination ON sms (destination, created_at);
CREATE INDEX sms_link ON sms (link_id);
