-- +goose Up
-- The rollout model is typed (internal/rollout): a stage's wait is stored
-- as JSON, not as the words the PR shows, and an execution records how it
-- passed when the engine did not learn its outcome (handed off, deployed
-- before), which Action mode's summary used to read back from the words.
ALTER TABLE executions ADD COLUMN pass TEXT NOT NULL DEFAULT '';  -- '' | handed-off | deployed-before
UPDATE executions SET pass = 'handed-off' WHERE outcome = 'succeeded' AND reason LIKE 'handed off to %';
UPDATE executions SET pass = 'deployed-before' WHERE outcome = 'succeeded' AND reason LIKE 'deployed before: %';
-- Old waits were words; the engine works every waiting stage's wait out
-- again on its next pass.
UPDATE stage_states SET wait = '' WHERE wait <> '';

-- +goose Down
UPDATE stage_states SET wait = '';
ALTER TABLE executions DROP COLUMN pass;
