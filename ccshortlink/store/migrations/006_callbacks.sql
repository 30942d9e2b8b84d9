-- Call-backs: a customer's "call me back" from the card, one row per request, with the time of
-- each step. The number is the link's (links.customer_number): not copied here.
CREATE TABLE callbacks (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    agent_id        TEXT    NOT NULL,
    pbx             TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,           -- core.vocab.CallbackState
    reason          TEXT    NOT NULL DEFAULT '',
    requested_at    REAL    NOT NULL,
    opens_at        REAL,                       -- refused outside hours: when they next begin
    placed_at       REAL,
    agent_answered_at REAL,
    customer_answered_at REAL,
    ended_at        REAL,
    talk_seconds    INTEGER,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     REAL
);
CREATE INDEX callbacks_link ON callbacks (link_id, requested_at);
CREATE INDEX callbacks_state ON callbacks (state, requested_at);
CREATE INDEX callbacks_agent ON callbacks (agent_id, state)
