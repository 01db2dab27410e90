-- +goose Up
-- The audit log (issue 14), as migrations/sqlite/00014_events.sql: every
-- merge, refusal, release, stage transition, command and freeze, written
-- in the same transaction as the change it records. Numbered 3: 2 belongs
-- to the write-budget table of issue 16, and goose takes versions with gaps.
CREATE TABLE events (
    id        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT  NOT NULL,                  -- unix ms
    repo      TEXT    NOT NULL DEFAULT '',
    pipeline  TEXT    NOT NULL DEFAULT '',
    run_id    TEXT    NOT NULL DEFAULT '',
    merge_id  TEXT    NOT NULL DEFAULT '',
    stage     TEXT    NOT NULL DEFAULT '',
    kind      TEXT    NOT NULL,
    actor     TEXT    NOT NULL DEFAULT '',
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_run ON events (run_id, id);
CREATE INDEX events_merge ON events (merge_id, id);
CREATE INDEX events_pipeline ON events (pipeline, id);
CREATE INDEX events_repo ON events (repo, id);
-- A rollback names the version it restores by tag; the environments view
-- finds the rollout that released it.
CREATE INDEX rollouts_tag ON rollouts (pipeline_key, tag);

-- +goose Down
DROP INDEX rollouts_tag;
DROP TABLE events;
