-- +goose Up
-- A released run joins its pipeline's rollout: the configuration it was
-- released with (stages ride with the code), the labels that skip stages
-- (kept current from labeled/unlabeled deliveries), and its place in
-- version order.
ALTER TABLE runs ADD COLUMN pipeline_key  TEXT    NOT NULL DEFAULT '';  -- owner/name:pipeline
ALTER TABLE runs ADD COLUMN rollout_order INTEGER NOT NULL DEFAULT 0;   -- version order within the pipeline
ALTER TABLE runs ADD COLUMN rollout       TEXT    NOT NULL DEFAULT '';  -- '' | active | done
ALTER TABLE runs ADD COLUMN config        BLOB    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN labels        TEXT    NOT NULL DEFAULT '[]';
CREATE INDEX runs_rollout ON runs (pipeline_key, rollout_order) WHERE rollout = 'active';

-- Where each run stands at each stage (schedule.StageState names).
CREATE TABLE stage_states (
    run_id     TEXT    NOT NULL REFERENCES runs (id),
    idx        INTEGER NOT NULL,
    stage      TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    wait       TEXT    NOT NULL DEFAULT '',      -- why it waits, for the PR
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
);

-- One execution of a stage: a deploy (or a rollback) of one version by the
-- stage's target. Attempts of a stage share run_id and idx.
CREATE TABLE executions (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES runs (id),
    idx         INTEGER NOT NULL,
    stage       TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    rollback    INTEGER NOT NULL DEFAULT 0,
    version     TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    phase       TEXT    NOT NULL,                 -- triggering | deploying | baking | finished
    outcome     TEXT    NOT NULL DEFAULT '',      -- succeeded | failed
    reason      TEXT    NOT NULL DEFAULT '',
    token_hash  TEXT    NOT NULL UNIQUE,          -- sha256 of the callback token; the token itself is never stored
    event_id    TEXT    NOT NULL DEFAULT '',
    url         TEXT    NOT NULL DEFAULT '',
    deadline    INTEGER NOT NULL DEFAULT 0,       -- unix ms: no outcome by then means failed
    bake_until  INTEGER NOT NULL DEFAULT 0,
    next_check  INTEGER NOT NULL DEFAULT 0,       -- unix ms: next poll or alarm check
    created_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (run_id, idx, attempt)
);
CREATE INDEX executions_open ON executions (phase) WHERE phase <> 'finished';

-- Frozen pipelines: no new stage starts while a row exists.
CREATE TABLE freezes (
    pipeline_key TEXT    PRIMARY KEY,
    reason       TEXT    NOT NULL DEFAULT '',
    actor        TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL
);

-- +goose Down
DROP TABLE freezes;
DROP TABLE executions;
DROP TABLE stage_states;
DROP INDEX runs_rollout;
ALTER TABLE runs DROP COLUMN labels;
ALTER TABLE runs DROP COLUMN config;
ALTER TABLE runs DROP COLUMN rollout;
ALTER TABLE runs DROP COLUMN rollout_order;
ALTER TABLE runs DROP COLUMN pipeline_key;
