-- What operators did to links after they were minted: revoked or extended, from where, when.
-- No customer number here: retention has nothing to mask.
CREATE TABLE link_changes (
    id              INTEGER PRIMARY KEY,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    at              REAL    NOT NULL,
    kind            TEXT    NOT NULL,           -- revoked | extended
    source          TEXT    NOT NULL,           -- cli | api
    expires_at      REAL,                       -- extended: the new expiry
    previous_expires_at REAL                    -- extended: the expiry before
);
CREATE INDEX link_changes_link ON link_changes (link_id, at);
-- links list --agent: newest first for one agent without a scan of every link.
CREATE INDEX links_agent ON links (agent_id, created_at)
