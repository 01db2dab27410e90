-- +goose Up
-- The audit log (issue 14): every merge, refusal, release, stage
-- transition, command and freeze, written by the store in the same
-- transaction as the change it records, never derived afterwards.
-- Numbered 14: 13 belongs to the write-budget table of issue 16, and goose
-- takes versions with gaps.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT, -- newest first = id descending; AUTOINCREMENT never reuses an id
    at        INTEGER NOT NULL,                  -- unix ms
    repo      TEXT    NOT NULL DEFAULT '',       -- owner/name
    pipeline  TEXT    NOT NULL DEFAULT '',       -- pipeline key owner/name:pipeline; '' for a merge's own events
    run_id    TEXT    NOT NULL DEFAULT '',       -- the rollout's id (a run's first rollout has the run's), or the run's
    merge_id  TEXT    NOT NULL DEFAULT '',       -- the merge run's id
    stage     TEXT    NOT NULL DEFAULT '',
    kind      TEXT    NOT NULL,                  -- merge.recorded, stage.entered, command.deploy, pipeline.frozen, …
    actor     TEXT    NOT NULL DEFAULT '',       -- who asked: a commenter, an API caller; '' for shipbot itself
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
