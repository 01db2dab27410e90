-- +goose Up
-- The durable webhook inbox: a delivery is written here before GitHub gets
-- its 2xx, and processed afterwards from this table.
CREATE TABLE deliveries (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,          -- X-GitHub-Delivery
    event         TEXT    NOT NULL,                 -- X-GitHub-Event
    action        TEXT    NOT NULL DEFAULT '',
    repo          TEXT    NOT NULL DEFAULT '',      -- owner/name, when the payload has one
    installation  INTEGER NOT NULL DEFAULT 0,
    payload       BLOB,                             -- NULL for ignored deliveries
    status        TEXT    NOT NULL,                 -- pending | done | failed | ignored
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT    NOT NULL DEFAULT '',
    claimed_by    TEXT    NOT NULL DEFAULT '',
    claimed_until INTEGER NOT NULL DEFAULT 0,       -- unix ms; a lease, so replicas can share the table
    not_before    INTEGER NOT NULL DEFAULT 0,       -- unix ms; retry backoff
    received_at   INTEGER NOT NULL,                 -- unix ms
    finished_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_pending ON deliveries (status, seq) WHERE status = 'pending';

-- +goose Down
DROP TABLE deliveries;
