-- +goose Up
-- Arrival order: a new run takes max(seq) + 1, and the dashboard lists the
-- newest runs by it. Without an index both read every run the database
-- ever had; with it, one index step.
CREATE INDEX runs_seq ON runs (seq);

-- +goose Down
DROP INDEX runs_seq;
