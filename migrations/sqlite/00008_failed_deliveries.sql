-- +goose Up
-- The dashboard lists the deliveries that failed for good, newest first.
-- They are few among many done ones: without this index the list reads
-- every delivery the database keeps, on every page load.
CREATE INDEX deliveries_failed ON deliveries (finished_at) WHERE status = 'failed';

-- +goose Down
DROP INDEX deliveries_failed;
