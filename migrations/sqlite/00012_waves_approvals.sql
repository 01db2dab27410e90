-- +goose Up
-- Waves and approvals (issue 13).
--
-- A wave stage triggers several targets at once, each its own execution of
-- the same attempt (Idempotency-Key <run_id>-<stage>-<attempt>-<target>),
-- so an execution names its target and an attempt is unique per target,
-- not per stage. SQLite cannot change a table's UNIQUE constraint in
-- place: executions is rebuilt, and deployments with it (its foreign key
-- names the table), as migration 11 did, inside goose's one transaction.
-- Executions of a stage of one target have target ''.
ALTER TABLE executions RENAME TO executions_old;
DROP INDEX executions_open;
CREATE TABLE executions (
    id          TEXT    PRIMARY KEY,
    rollout_id  TEXT    NOT NULL REFERENCES rollouts (id),
    idx         INTEGER NOT NULL,
    stage       TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',      -- the wave target; '' in a stage of one target
    attempt     INTEGER NOT NULL,
    rollback    INTEGER NOT NULL DEFAULT 0,
    version     TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    phase       TEXT    NOT NULL,                 -- triggering | deploying | baking | finished
    outcome     TEXT    NOT NULL DEFAULT '',      -- succeeded | failed
    pass        TEXT    NOT NULL DEFAULT '',      -- '' | handed-off | deployed-before
    reason      TEXT    NOT NULL DEFAULT '',
    token_hash  TEXT    NOT NULL UNIQUE,          -- sha256 of the callback token; the token itself is never stored
    event_id    TEXT    NOT NULL DEFAULT '',
    url         TEXT    NOT NULL DEFAULT '',
    deadline    INTEGER NOT NULL DEFAULT 0,       -- unix ms: no outcome by then means failed
    bake_until  INTEGER NOT NULL DEFAULT 0,
    next_check  INTEGER NOT NULL DEFAULT 0,       -- unix ms: next poll or alarm check
    created_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rollout_id, idx, attempt, target)
);
CREATE INDEX executions_open ON executions (phase) WHERE phase <> 'finished';
INSERT INTO executions (id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
                        token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at)
SELECT id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
       token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at FROM executions_old;

ALTER TABLE deployments RENAME TO deployments_old;
DROP INDEX deployments_env;
CREATE TABLE deployments (
    execution_id  TEXT    PRIMARY KEY REFERENCES executions (id),
    repo          TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    deployment_id INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT '',   -- the last status posted
    updated_at    INTEGER NOT NULL
);
CREATE INDEX deployments_env ON deployments (repo, environment, state);
INSERT INTO deployments (execution_id, repo, environment, deployment_id, state, updated_at)
SELECT execution_id, repo, environment, deployment_id, state, updated_at FROM deployments_old;
DROP TABLE deployments_old;
DROP TABLE executions_old;

-- A stage with `approval: true` holds a run until someone approves it
-- (approved_by) or rejects it (rejected_by, with their reason; the stage is
-- then failed).
ALTER TABLE stage_states ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_states ADD COLUMN rejected_by TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_states ADD COLUMN rejection   TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE stage_states DROP COLUMN rejection;
ALTER TABLE stage_states DROP COLUMN rejected_by;
ALTER TABLE stage_states DROP COLUMN approved_by;

-- Going back keeps one execution per stage attempt: a wave's other
-- targets' executions (and their deployments) cannot be represented.
DELETE FROM deployments WHERE execution_id IN (
    SELECT id FROM executions e WHERE target <> '' AND EXISTS (
        SELECT 1 FROM executions o WHERE o.rollout_id = e.rollout_id AND o.idx = e.idx AND o.attempt = e.attempt
        AND o.target < e.target));
ALTER TABLE executions RENAME TO executions_new;
DROP INDEX executions_open;
CREATE TABLE executions (
    id          TEXT    PRIMARY KEY,
    rollout_id  TEXT    NOT NULL REFERENCES rollouts (id),
    idx         INTEGER NOT NULL,
    stage       TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    rollback    INTEGER NOT NULL DEFAULT 0,
    version     TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    outcome     TEXT    NOT NULL DEFAULT '',
    pass        TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    token_hash  TEXT    NOT NULL UNIQUE,
    event_id    TEXT    NOT NULL DEFAULT '',
    url         TEXT    NOT NULL DEFAULT '',
    deadline    INTEGER NOT NULL DEFAULT 0,
    bake_until  INTEGER NOT NULL DEFAULT 0,
    next_check  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rollout_id, idx, attempt)
);
CREATE INDEX executions_open ON executions (phase) WHERE phase <> 'finished';
INSERT INTO executions (id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
                        token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at)
SELECT id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
       token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at FROM executions_new e
WHERE NOT EXISTS (SELECT 1 FROM executions_new o WHERE o.rollout_id = e.rollout_id AND o.idx = e.idx
                  AND o.attempt = e.attempt AND o.target < e.target);

ALTER TABLE deployments RENAME TO deployments_new;
DROP INDEX deployments_env;
CREATE TABLE deployments (
    execution_id  TEXT    PRIMARY KEY REFERENCES executions (id),
    repo          TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    deployment_id INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL
);
CREATE INDEX deployments_env ON deployments (repo, environment, state);
INSERT INTO deployments (execution_id, repo, environment, deployment_id, state, updated_at)
SELECT execution_id, repo, environment, deployment_id, state, updated_at FROM deployments_new;
DROP TABLE deployments_new;
DROP TABLE executions_new;
