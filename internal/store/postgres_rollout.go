package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// lockKey is the key of a transaction-level advisory lock on name.
const lockKey = `hashtextextended($1, 0)`

// StartRollout implements Rollouts. SQLite's one writer runs two starts
// one after the other; here two locks do: the run's row (a run's first
// rollout takes the run's id, and a retry finds the rollout the first
// start made) and an advisory lock on the pipeline (each start takes the
// next order), always in that order.
func (s *Postgres) StartRollout(ctx context.Context, runID, pipelineKey string, rel Release, config []byte, labels []string, stages []string, evs ...Event) (string, int64, error) {
	lj, err := json.Marshal(nonNilStrings(labels))
	if err != nil {
		return "", 0, err
	}
	var id string
	var order int64
	err = s.tx(ctx, func(t pgx.Tx) error {
		now := ms(time.Now())
		var one int
		err := t.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR NO KEY UPDATE`, runID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("run %s: %w", runID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+`)`, "shipbot.rollout_order:"+pipelineKey); err != nil {
			return err
		}
		err = t.QueryRow(ctx, `SELECT id, rollout_order FROM rollouts WHERE run_id = $1 AND pipeline_key = $2`, runID, pipelineKey).Scan(&id, &order)
		if err == nil {
			// Already started (a retry): keep its place. The release is
			// the merge's as it stands now, as the run's own columns are.
			_, err := t.Exec(ctx, `UPDATE rollouts SET version = $1, tag = $2, prev_tag = $3, release_url = $4, updated_at = $5
				WHERE id = $6 AND (version <> $1 OR tag <> $2 OR prev_tag <> $3 OR release_url <> $4)`,
				rel.Version, rel.Tag, rel.PrevTag, rel.URL, now, id)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// The run's first rollout takes the run's id, so that the ids
		// users and downstreams know a single-pipeline merge by name its
		// rollout; another pipeline's rollout of the run gets its own.
		var taken bool
		if err := t.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rollouts WHERE id = $1)`, runID).Scan(&taken); err != nil {
			return err
		}
		id = runID
		if taken {
			id = NewID()
		}
		if err := t.QueryRow(ctx, `SELECT coalesce(max(rollout_order), 0) + 1 FROM rollouts WHERE pipeline_key = $1`, pipelineKey).Scan(&order); err != nil {
			return err
		}
		state := RolloutActive
		if len(stages) == 0 {
			state = RolloutDone
		}
		tag, err := t.Exec(ctx, `INSERT INTO rollouts (id, run_id, pipeline, pipeline_key, version, tag, prev_tag, release_url,
			rollout_order, state, config, labels, created_at, updated_at)
			SELECT $1, id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12 FROM runs WHERE id = $13`,
			id, pipelineName(pipelineKey), pipelineKey, rel.Version, rel.Tag, rel.PrevTag, rel.URL,
			order, state, nonNilBytes(config), string(lj), now, runID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("run %s: %w", runID, ErrNotFound)
		}
		if len(stages) > 0 {
			if _, err = t.Exec(ctx, `INSERT INTO stage_states (rollout_id, idx, stage, state, updated_at)
				SELECT $1, s.i - 1, s.name, 'pending', $3 FROM unnest($2::text[]) WITH ORDINALITY AS s(name, i)`,
				id, stages, now); err != nil {
				return err
			}
		}
		return insertRolloutEvents(ctx, pgxExec{t}, id, evs)
	})
	if err != nil {
		return "", 0, fmt.Errorf("start rollout of run %s in %s: %w", runID, pipelineKey, err)
	}
	return id, order, nil
}
