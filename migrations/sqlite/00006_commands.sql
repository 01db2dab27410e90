-- +goose Up
-- What people asked of a stage through /shipbot commands, on record: who
-- had a stage deployed that its label skipped, and who forced it past its
-- deploy window and alarms.
ALTER TABLE stage_states ADD COLUMN deploy_by TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_states ADD COLUMN force_by  TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE stage_states DROP COLUMN force_by;
ALTER TABLE stage_states DROP COLUMN deploy_by;
