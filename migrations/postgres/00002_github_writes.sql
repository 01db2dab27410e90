-- +goose Up
-- GitHub's secondary rate limits (issue 16): each content-generating
-- request an installation sent in the last hour, shared by every replica,
-- so the installation's windows are paced as GitHub counts them, not per
-- process.
CREATE TABLE github_writes (
    installation BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL
);
CREATE INDEX github_writes_by_installation ON github_writes (installation, at_ms);

-- +goose Down
DROP TABLE github_writes;
