-- +goose Up
-- GitHub's secondary rate limits (issue 16): each content-generating
-- request an installation sent in the last hour, so that every process
-- (and a restarted one) paces its writes under the same windows.
CREATE TABLE github_writes (
    installation INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL
);
CREATE INDEX github_writes_by_installation ON github_writes (installation, at_ms);

-- +goose Down
DROP TABLE github_writes;
