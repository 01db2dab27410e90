-- +goose Up
-- The sticky PR comment of each pull request, so it is edited in place
-- without listing the PR's comments first.
CREATE TABLE comments (
    repo  TEXT    NOT NULL,
    pr    INTEGER NOT NULL,
    id    INTEGER NOT NULL,
    PRIMARY KEY (repo, pr)
);

-- +goose Down
DROP TABLE comments;
