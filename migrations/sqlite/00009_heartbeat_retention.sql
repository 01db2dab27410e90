-- +goose Up
-- /readyz proves that the database can be written by writing this one row
-- (store.SQLite.Ready): reads still answer from a database that is
-- read-only, on a full disk, or damaged where the reads do not look.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL                             -- unix ms of the last write probe
);
INSERT INTO heartbeat (id, at) VALUES (1, 0);

-- Processed deliveries that still keep their payload, for pruning past
-- SHIPBOT_RETENTION: once pruning runs they are only the last few days'
-- deliveries, so pruning reads this index instead of every delivery kept.
CREATE INDEX deliveries_payload_kept ON deliveries (received_at)
    WHERE payload IS NOT NULL AND status IN ('done', 'failed', 'ignored');

-- +goose Down
DROP INDEX deliveries_payload_kept;
DROP TABLE heartbeat;
