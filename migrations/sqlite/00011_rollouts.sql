-- +goose Up
-- Rollouts apart from merge runs. A run is one merge (repository, merge
-- commit, pull request, gate verdict); a rollout is one pipeline taking
-- that merge's release through its stages. Until now both were one row of
-- `runs`, so a merge could roll out in one pipeline only; a merge that
-- touches several pipelines of a repository (the `pipelines:` form) needs
-- one rollout each.
--
-- Ids. Every rollout moved here keeps its run's id as its own, and the
-- store gives a run's first rollout the run's id from now on too, so every
-- id a user or a downstream has seen stays valid: the payload's run_id, the
-- Idempotency-Key <run_id>-<stage>-<attempt>, callback tokens (derived from
-- execution ids, which do not change), /runs/{id} and /api/v1/runs/{id}.
-- A second rollout of one run (another pipeline) gets an id of its own.
--
-- Release. version, tag, prev_tag and release_url stay on `runs` as the
-- merge's release intent: the merge coordinator writes them before it
-- creates the tag, so a crash resumes with the same version (one version
-- per merge), exactly as before. A rollout carries its own copy, written
-- when it starts: the version it deploys. In the single-pipeline form the
-- two are the same; in the `pipelines:` form each pipeline will have its
-- own version line, and its intent will be the rollout's.
--
-- stage_states and executions now hang off rollouts: their run_id column
-- becomes rollout_id. SQLite cannot change a foreign key in place, so both
-- tables are rebuilt, and deployments with executions (its foreign key
-- names the table, which is replaced). Renaming a table first makes
-- SQLite point the foreign keys of the tables that reference it at the new
-- name, so every step holds with foreign keys enforced, inside goose's one
-- transaction: a failure anywhere leaves the database as it was.
CREATE TABLE rollouts (
    id            TEXT    PRIMARY KEY,                 -- its run's id for a run's first rollout
    run_id        TEXT    NOT NULL REFERENCES runs (id),
    pipeline      TEXT    NOT NULL,                    -- the pipeline's name
    pipeline_key  TEXT    NOT NULL,                    -- owner/name:pipeline
    version       TEXT    NOT NULL DEFAULT '',
    tag           TEXT    NOT NULL DEFAULT '',
    prev_tag      TEXT    NOT NULL DEFAULT '',
    release_url   TEXT    NOT NULL DEFAULT '',
    rollout_order INTEGER NOT NULL,                    -- version order within the pipeline
    state         TEXT    NOT NULL CHECK (state IN ('active', 'done')),
    config        BLOB    NOT NULL DEFAULT '',         -- the configuration it was released with
    labels        TEXT    NOT NULL DEFAULT '[]',       -- the PR's labels, kept current
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (run_id, pipeline_key),
    UNIQUE (pipeline_key, rollout_order)
);
-- The engine's every pass: the active rollouts of one pipeline, in order
-- (and which pipelines have any). A handful among every rollout ever.
CREATE INDEX rollouts_active ON rollouts (pipeline_key, rollout_order) WHERE state = 'active';

-- A migrated rollout started when its run was released; the run's creation
-- is the closest time on record.
INSERT INTO rollouts (id, run_id, pipeline, pipeline_key, version, tag, prev_tag, release_url,
                      rollout_order, state, config, labels, created_at, updated_at)
SELECT id, id, substr(pipeline_key, instr(pipeline_key, ':') + 1), pipeline_key, version, tag, prev_tag, release_url,
       rollout_order, rollout, config, labels, created_at, updated_at
FROM runs WHERE rollout <> '';

ALTER TABLE stage_states RENAME TO stage_states_old;
CREATE TABLE stage_states (
    rollout_id TEXT    NOT NULL REFERENCES rollouts (id),
    idx        INTEGER NOT NULL,
    stage      TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    wait       TEXT    NOT NULL DEFAULT '',            -- JSON of rollout.Wait
    updated_at INTEGER NOT NULL,
    deploy_by  TEXT    NOT NULL DEFAULT '',
    force_by   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (rollout_id, idx)
);
INSERT INTO stage_states (rollout_id, idx, stage, state, wait, updated_at, deploy_by, force_by)
SELECT run_id, idx, stage, state, wait, updated_at, deploy_by, force_by FROM stage_states_old;
DROP TABLE stage_states_old;

-- deployments now references executions_old; it is rebuilt below.
ALTER TABLE executions RENAME TO executions_old;
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
    UNIQUE (rollout_id, idx, attempt)
);
CREATE INDEX executions_open ON executions (phase) WHERE phase <> 'finished';
INSERT INTO executions (id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
                        token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at)
SELECT id, run_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
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

-- What moved leaves runs. The index goes first: SQLite drops no indexed
-- column.
DROP INDEX runs_rollout;
ALTER TABLE runs DROP COLUMN labels;
ALTER TABLE runs DROP COLUMN config;
ALTER TABLE runs DROP COLUMN rollout;
ALTER TABLE runs DROP COLUMN rollout_order;
ALTER TABLE runs DROP COLUMN pipeline_key;

-- +goose Down
-- The old schema has room for one rollout per run, under the run's id: a
-- database that has another (a second pipeline's) cannot go back without
-- losing it, and this refuses rather than drop it (the CHECK fails).
CREATE TEMP TABLE down_11_guard (extra_rollouts INTEGER CHECK (extra_rollouts = 0));
INSERT INTO down_11_guard SELECT count(*) FROM rollouts WHERE id <> run_id;
DROP TABLE down_11_guard;

ALTER TABLE runs ADD COLUMN pipeline_key  TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN rollout_order INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN rollout       TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN config        BLOB    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN labels        TEXT    NOT NULL DEFAULT '[]';
CREATE INDEX runs_rollout ON runs (pipeline_key, rollout_order) WHERE rollout = 'active';
UPDATE runs SET (pipeline_key, rollout_order, rollout, config, labels) =
    (SELECT pipeline_key, rollout_order, state, config, labels FROM rollouts WHERE rollouts.id = runs.id)
WHERE id IN (SELECT id FROM rollouts);

ALTER TABLE stage_states RENAME TO stage_states_new;
CREATE TABLE stage_states (
    run_id     TEXT    NOT NULL REFERENCES runs (id),
    idx        INTEGER NOT NULL,
    stage      TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    wait       TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    deploy_by  TEXT    NOT NULL DEFAULT '',
    force_by   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, idx)
);
INSERT INTO stage_states (run_id, idx, stage, state, wait, updated_at, deploy_by, force_by)
SELECT rollout_id, idx, stage, state, wait, updated_at, deploy_by, force_by FROM stage_states_new;
DROP TABLE stage_states_new;

ALTER TABLE executions RENAME TO executions_new;
DROP INDEX executions_open;
CREATE TABLE executions (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES runs (id),
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
    UNIQUE (run_id, idx, attempt)
);
CREATE INDEX executions_open ON executions (phase) WHERE phase <> 'finished';
INSERT INTO executions (id, run_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
                        token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at)
SELECT id, rollout_id, idx, stage, attempt, rollback, version, tag, phase, outcome, pass, reason,
       token_hash, event_id, url, deadline, bake_until, next_check, created_at, finished_at FROM executions_new;

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
DROP TABLE rollouts;
