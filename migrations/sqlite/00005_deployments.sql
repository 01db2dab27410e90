-- +goose Up
-- The GitHub API calls each merge has cost so far (evaluation, release,
-- reporting), so the reporter can keep a merge within its budget and the
-- cost of every merge is on record.
ALTER TABLE runs ADD COLUMN api_calls INTEGER NOT NULL DEFAULT 0;

-- The GitHub Deployment of each stage execution. deployment_id 0 records
-- the intent to create one: a crash between GitHub creating it and this row
-- learning its id is then detected, and the deployment looked up instead of
-- created twice.
CREATE TABLE deployments (
    execution_id  TEXT    PRIMARY KEY REFERENCES executions (id),
    repo          TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    deployment_id INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT '',   -- the last status posted
    updated_at    INTEGER NOT NULL
);
CREATE INDEX deployments_env ON deployments (repo, environment, state);

-- +goose Down
DROP TABLE deployments;
ALTER TABLE runs DROP COLUMN api_calls;
