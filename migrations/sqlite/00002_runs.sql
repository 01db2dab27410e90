-- +goose Up
-- One run per merge, keyed by repository and merge commit: whichever of the
-- pull_request and push deliveries arrives first creates it, the other finds it.
CREATE TABLE runs (
    id            TEXT    PRIMARY KEY,
    repo          TEXT    NOT NULL,
    sha           TEXT    NOT NULL,
    installation  INTEGER NOT NULL,
    branch        TEXT    NOT NULL,
    pr            INTEGER NOT NULL DEFAULT 0,
    pr_facts      BLOB    NOT NULL DEFAULT '',    -- JSON of the pull request as the delivery carried it
    source        TEXT    NOT NULL,               -- the delivery event that created it
    merged_at     INTEGER NOT NULL DEFAULT 0,     -- unix ms; orders runs whose place in history is not known
    parent        TEXT    NOT NULL DEFAULT '',    -- the branch head before this merge (first parent): orders runs exactly
    seq           INTEGER NOT NULL,               -- arrival order, the last tie-break
    state         TEXT    NOT NULL,
    pipeline      TEXT    NOT NULL DEFAULT '',
    version       TEXT    NOT NULL DEFAULT '',
    tag           TEXT    NOT NULL DEFAULT '',
    prev_tag      TEXT    NOT NULL DEFAULT '',
    release_url   TEXT    NOT NULL DEFAULT '',
    summary       TEXT    NOT NULL DEFAULT '',    -- JSON: what the PR is shown
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (repo, sha)
);
CREATE INDEX runs_open ON runs (repo, merged_at, seq) WHERE state IN ('pending', 'releasing');

-- Leases: named locks with an owner and an expiry, so several replicas can
-- share one database and a dead holder's lock lapses by itself.
CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    owner  TEXT    NOT NULL,
    until  INTEGER NOT NULL                        -- unix ms
);

-- Check runs the bot owns, so each is edited in place instead of duplicated.
CREATE TABLE check_runs (
    repo   TEXT    NOT NULL,
    sha    TEXT    NOT NULL,
    name   TEXT    NOT NULL,
    id     INTEGER NOT NULL,
    PRIMARY KEY (repo, sha, name)
);

-- +goose Down
DROP TABLE check_runs;
DROP TABLE leases;
DROP TABLE runs;
