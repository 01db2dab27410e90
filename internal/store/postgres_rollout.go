package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
)

// pgRolloutCols are rolloutCols in PostgreSQL's spelling.
const pgRolloutCols = `r.id, r.repo, r.sha, r.installation, r.branch, r.pr, r.pr_facts, r.source, r.merged_at, r.parent, r.seq,
	r.state, r.pipeline, r.version, r.tag, r.prev_tag, r.release_url, r.summary, r.created_at, r.updated_at,
	coalesce(o.id, r.id), coalesce(o.pipeline, r.pipeline), coalesce(o.pipeline_key, ''), coalesce(o.rollout_order, 0),
	coalesce(o.state, ''), coalesce(o.version, r.version), coalesce(o.tag, r.tag), coalesce(o.prev_tag, r.prev_tag),
	coalesce(o.release_url, r.release_url), coalesce(o.config, ''::bytea), coalesce(o.labels, '[]')`

// pgExecCols are execCols of executions e.
const pgExecCols = `e.id, e.rollout_id, e.idx, e.stage, e.target, e.attempt, e.rollback, e.version, e.tag, e.phase, e.outcome, e.pass,
	e.reason, e.token_hash, e.event_id, e.url, e.deadline, e.bake_until, e.next_check, e.created_at, e.finished_at`

// lockKey is the key of a transaction-level advisory lock on name.
const lockKey = `hashtextextended($1, 0)`

// StartRollout implements Rollouts. SQLite's one writer runs two starts
// one after the other; here two locks do: the run's row (a run's first
// rollout takes the run's id, and a retry finds the rollout the first
// start made) and an advisory lock on the pipeline (each start takes the
// next order), always in that order.
func (s *Postgres) StartRollout(ctx context.Context, runID, pipelineKey string, rel Release, config []byte, labels []string, stages []string) (string, int64, error) {
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
			_, err = t.Exec(ctx, `INSERT INTO stage_states (rollout_id, idx, stage, state, updated_at)
				SELECT $1, s.i - 1, s.name, 'pending', $3 FROM unnest($2::text[]) WITH ORDINALITY AS s(name, i)`,
				id, stages, now)
		}
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("start rollout of run %s in %s: %w", runID, pipelineKey, err)
	}
	return id, order, nil
}

// SetLabels implements Rollouts.
func (s *Postgres) SetLabels(ctx context.Context, repo string, pr int, labels []string) error {
	lj, err := json.Marshal(nonNilStrings(labels))
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE rollouts SET labels = $1
		WHERE run_id IN (SELECT id FROM runs WHERE repo = $2 AND pr = $3)`, string(lj), repo, pr); err != nil {
		return fmt.Errorf("set labels of %s#%d: %w", repo, pr, err)
	}
	return nil
}

// PipelinesWithRollouts implements Rollouts.
func (s *Postgres) PipelinesWithRollouts(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT pipeline_key FROM rollouts WHERE state = 'active' ORDER BY pipeline_key`)
	if err != nil {
		return nil, fmt.Errorf("pipelines with rollouts: %w", err)
	}
	return out, nil
}

// queryRollouts reads rows of pgRolloutCols, and the ids of those that
// are rollouts (not runs without one).
func (s *Postgres) queryRollouts(ctx context.Context, query string, args ...any) ([]RolloutRun, []string, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []RolloutRun
	var ids []string
	for rows.Next() {
		rr, err := scanRollout(rows)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rr)
		if rr.Rollout != "" {
			ids = append(ids, rr.ID)
		}
	}
	return out, ids, rows.Err()
}

const pgStageCols = `st.rollout_id, st.idx, st.stage, st.state, st.wait, st.updated_at, st.deploy_by, st.force_by,
	st.approved_by, st.rejected_by, st.rejection`

func (s *Postgres) stagesOf(ctx context.Context, ids []string) (map[string][]StageRow, error) {
	if len(ids) == 0 {
		return map[string][]StageRow{}, nil
	}
	return s.queryStages(ctx, `SELECT `+pgStageCols+` FROM stage_states st
		WHERE st.rollout_id = ANY($1) ORDER BY st.rollout_id, st.idx`, ids)
}

func (s *Postgres) queryStages(ctx context.Context, query string, args ...any) (map[string][]StageRow, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStages(rows)
}

// LoadRollout implements Rollouts.
func (s *Postgres) LoadRollout(ctx context.Context, pipelineKey string) ([]RolloutRun, error) {
	out, ids, err := s.queryRollouts(ctx, `SELECT `+pgRolloutCols+` FROM rollouts o JOIN runs r ON r.id = o.run_id
		WHERE o.pipeline_key = $1 AND o.state = 'active' ORDER BY o.rollout_order`, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("load rollout %s: %w", pipelineKey, err)
	}
	// The stages of the pipeline's active rollouts by one query; a
	// rollout finished between the two queries has no stages there: read
	// those by id.
	stages, err := s.queryStages(ctx, `SELECT `+pgStageCols+`
		FROM rollouts o JOIN stage_states st ON st.rollout_id = o.id
		WHERE o.pipeline_key = $1 AND o.state = 'active' ORDER BY st.rollout_id, st.idx`, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("load stages of %s: %w", pipelineKey, err)
	}
	var missing []string
	for _, id := range ids {
		if _, ok := stages[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		more, err := s.stagesOf(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("load stages of %s: %w", pipelineKey, err)
		}
		maps.Copy(stages, more)
	}
	for i := range out {
		out[i].Stages = stages[out[i].ID]
	}
	return out, nil
}

// GetRollout implements Rollouts.
func (s *Postgres) GetRollout(ctx context.Context, rolloutID string) (RolloutRun, error) {
	// A run's first rollout has the run's id, so an id of a run that has
	// rollouts finds one by the first query; only a run without any falls
	// through to the second.
	rr, err := scanRollout(s.pool.QueryRow(ctx, `SELECT `+pgRolloutCols+` FROM rollouts o JOIN runs r ON r.id = o.run_id
		WHERE o.id = $1`, rolloutID))
	if errors.Is(err, pgx.ErrNoRows) {
		rr, err = scanRollout(s.pool.QueryRow(ctx, `SELECT `+pgRolloutCols+` FROM runs r LEFT JOIN rollouts o ON false -- the run alone
			WHERE r.id = $1`, rolloutID))
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return RolloutRun{}, fmt.Errorf("rollout %s: %w", rolloutID, ErrNotFound)
	}
	if err != nil {
		return RolloutRun{}, fmt.Errorf("read rollout %s: %w", rolloutID, err)
	}
	if rr.Rollout == "" {
		return rr, nil
	}
	stages, err := s.stagesOf(ctx, []string{rr.ID})
	if err != nil {
		return RolloutRun{}, fmt.Errorf("read stages of rollout %s: %w", rr.ID, err)
	}
	rr.Stages = stages[rr.ID]
	return rr, nil
}

// RolloutsOf implements Rollouts.
func (s *Postgres) RolloutsOf(ctx context.Context, runID string) ([]RolloutRun, error) {
	out, ids, err := s.queryRollouts(ctx, `SELECT `+pgRolloutCols+` FROM rollouts o JOIN runs r ON r.id = o.run_id
		WHERE o.run_id = $1 ORDER BY o.id <> o.run_id, o.created_at, o.seq`, runID)
	if err != nil {
		return nil, fmt.Errorf("rollouts of run %s: %w", runID, err)
	}
	stages, err := s.stagesOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stages of run %s's rollouts: %w", runID, err)
	}
	for i := range out {
		out[i].Stages = stages[out[i].ID]
	}
	return out, nil
}

// SetStageState implements Rollouts.
func (s *Postgres) SetStageState(ctx context.Context, rolloutID string, idx int, state schedule.StageState) error {
	if _, err := s.pool.Exec(ctx, `UPDATE stage_states SET state = $1, wait = '', updated_at = $2 WHERE rollout_id = $3 AND idx = $4`,
		state.String(), ms(time.Now()), rolloutID, idx); err != nil {
		return fmt.Errorf("set stage %d of rollout %s to %s: %w", idx, rolloutID, state, err)
	}
	return nil
}

// SetStageStatesFrom implements Rollouts.
func (s *Postgres) SetStageStatesFrom(ctx context.Context, rolloutID string, idx int, state schedule.StageState) error {
	if _, err := s.pool.Exec(ctx, `UPDATE stage_states SET state = $1, wait = '', updated_at = $2 WHERE rollout_id = $3 AND idx >= $4`,
		state.String(), ms(time.Now()), rolloutID, idx); err != nil {
		return fmt.Errorf("set stages %d.. of rollout %s to %s: %w", idx, rolloutID, state, err)
	}
	return nil
}

// SetWait implements Rollouts.
func (s *Postgres) SetWait(ctx context.Context, rolloutID string, idx int, w rollout.Wait) error {
	wait, err := rollout.MarshalWait(w)
	if err != nil {
		return fmt.Errorf("set wait of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE stage_states SET wait = $1 WHERE rollout_id = $2 AND idx = $3 AND wait <> $1`, wait, rolloutID, idx); err != nil {
		return fmt.Errorf("set wait of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	return nil
}

// EnterStage implements Rollouts.
func (s *Postgres) EnterStage(ctx context.Context, execs ...Execution) error {
	if len(execs) == 0 {
		return errors.New("enter stage: no execution")
	}
	e := execs[0]
	err := s.tx(ctx, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = $1 WHERE rollout_id = $2 AND idx = $3`,
			ms(time.Now()), e.RunID, e.Stage); err != nil {
			return err
		}
		return pgInsertExecutions(ctx, t, execs)
	})
	if err != nil {
		return fmt.Errorf("enter stage %s of rollout %s: %w", e.StageName, e.RunID, err)
	}
	return nil
}

// NextAttempt implements Rollouts.
func (s *Postgres) NextAttempt(ctx context.Context, rolloutID string, idx int) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(attempt), 0) + 1 FROM executions WHERE rollout_id = $1 AND idx = $2`, rolloutID, idx).Scan(&n); err != nil {
		return 0, fmt.Errorf("next attempt of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	return n, nil
}

// UpdateExecution implements Rollouts.
func (s *Postgres) UpdateExecution(ctx context.Context, e Execution) error {
	// The CASEs read the row as it was (after any report that committed
	// first: the UPDATE waits for its row lock and reads the row anew): an
	// outcome already recorded stays, with its reason, unless e brings one
	// of its own; a URL is never replaced by none.
	if _, err := s.pool.Exec(ctx, `UPDATE executions SET phase = $1,
		outcome = CASE WHEN $2::text <> '' THEN $2::text ELSE outcome END,
		reason = CASE WHEN $2::text = '' AND outcome <> '' THEN reason ELSE $3::text END,
		event_id = $4,
		url = CASE WHEN $5::text <> '' THEN $5::text ELSE url END,
		deadline = $6, bake_until = $7, next_check = $8 WHERE id = $9`,
		e.Phase, e.Outcome, e.Reason, e.EventID, e.URL,
		ms(e.Deadline), ms(e.BakeUntil), ms(e.NextCheck), e.ID); err != nil {
		return fmt.Errorf("update execution %s: %w", e.ID, err)
	}
	return nil
}

// FinishExecution implements Rollouts. Of two finishes at once, the second
// UPDATE waits for the first's commit and re-checks phase <> 'finished'
// against it: no row, ErrFinished.
func (s *Postgres) FinishExecution(ctx context.Context, e Execution, stageState schedule.StageState) error {
	err := s.tx(ctx, func(t pgx.Tx) error {
		now := ms(time.Now())
		tag, err := t.Exec(ctx, `UPDATE executions SET phase = 'finished', outcome = $1, pass = $2, reason = $3, url = $4, finished_at = $5
			WHERE id = $6 AND phase <> 'finished'`, e.Outcome, e.Pass, e.Reason, e.URL, now, e.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errAlreadyFinished
		}
		_, err = t.Exec(ctx, `UPDATE stage_states SET state = $1, wait = '', updated_at = $2 WHERE rollout_id = $3 AND idx = $4`,
			stageState.String(), now, e.RunID, e.Stage)
		return err
	})
	if errors.Is(err, errAlreadyFinished) {
		return fmt.Errorf("finish execution %s: %w", e.ID, ErrFinished)
	}
	if err != nil {
		return fmt.Errorf("finish execution %s: %w", e.ID, err)
	}
	return nil
}

func (s *Postgres) queryExecutions(ctx context.Context, q string, args ...any) ([]Execution, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgExecCols+` FROM executions e `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// OpenExecutions implements Rollouts.
func (s *Postgres) OpenExecutions(ctx context.Context) ([]Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE e.phase <> 'finished' ORDER BY e.created_at, e.seq`)
	if err != nil {
		return nil, fmt.Errorf("open executions: %w", err)
	}
	return out, nil
}

// OpenExecutionsOf implements Rollouts: the pipeline's unfinished
// executions, oldest first, from the partial index of open executions.
func (s *Postgres) OpenExecutionsOf(ctx context.Context, pipelineKey string) ([]Execution, error) {
	out, err := s.queryExecutions(ctx, `JOIN rollouts o ON o.id = e.rollout_id
		WHERE e.phase <> 'finished' AND o.pipeline_key = $1 ORDER BY e.created_at, e.seq`, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("open executions of %s: %w", pipelineKey, err)
	}
	return out, nil
}

// ExecutionByToken implements Rollouts.
func (s *Postgres) ExecutionByToken(ctx context.Context, tokenHash string) (Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE e.token_hash = $1`, tokenHash)
	if err != nil {
		return Execution{}, fmt.Errorf("execution by token: %w", err)
	}
	if len(out) == 0 {
		return Execution{}, ErrNotFound
	}
	return out[0], nil
}

// Executions implements Rollouts.
func (s *Postgres) Executions(ctx context.Context, rolloutID string) ([]Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE e.rollout_id = $1 ORDER BY e.idx, e.attempt, e.seq`, rolloutID)
	if err != nil {
		return nil, fmt.Errorf("executions of rollout %s: %w", rolloutID, err)
	}
	return out, nil
}

// LastDeployed implements Rollouts.
func (s *Postgres) LastDeployed(ctx context.Context, pipelineKey string, idx int, beforeOrder int64) (string, string, bool, error) {
	var version, tag string
	err := s.pool.QueryRow(ctx, `SELECT e.version, e.tag FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE o.pipeline_key = $1 AND e.idx = $2 AND o.rollout_order < $3 AND NOT e.rollback AND e.outcome = 'succeeded'
		ORDER BY o.rollout_order DESC, e.attempt DESC LIMIT 1`, pipelineKey, idx, beforeOrder).Scan(&version, &tag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("last deployed at stage %d of %s: %w", idx, pipelineKey, err)
	}
	return version, tag, true, nil
}

// FinishRollout implements Rollouts.
func (s *Postgres) FinishRollout(ctx context.Context, rolloutID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE rollouts SET state = 'done', updated_at = $1 WHERE id = $2`, ms(time.Now()), rolloutID); err != nil {
		return fmt.Errorf("finish rollout %s: %w", rolloutID, err)
	}
	return nil
}

// Freeze implements Rollouts.
func (s *Postgres) Freeze(ctx context.Context, pipelineKey, reason, actor string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO freezes (pipeline_key, reason, actor, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (pipeline_key) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, at = excluded.at`,
		pipelineKey, reason, actor, ms(time.Now())); err != nil {
		return fmt.Errorf("freeze %s: %w", pipelineKey, err)
	}
	return nil
}

// Unfreeze implements Rollouts.
func (s *Postgres) Unfreeze(ctx context.Context, pipelineKey string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM freezes WHERE pipeline_key = $1`, pipelineKey); err != nil {
		return fmt.Errorf("unfreeze %s: %w", pipelineKey, err)
	}
	return nil
}

// Frozen implements Rollouts.
func (s *Postgres) Frozen(ctx context.Context, pipelineKey string) (string, bool, error) {
	var reason string
	err := s.pool.QueryRow(ctx, `SELECT reason FROM freezes WHERE pipeline_key = $1`, pipelineKey).Scan(&reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("frozen %s: %w", pipelineKey, err)
	}
	return reason, true, nil
}

// ReportOutcome implements Rollouts: a downstream's report on an execution
// still waiting for one. Of two reports at once the second UPDATE waits
// for the first's commit and finds the outcome set: ErrFinished.
func (s *Postgres) ReportOutcome(ctx context.Context, id string, outcome rollout.Outcome, reason, url string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE executions SET outcome = $1, reason = $2, url = CASE WHEN $3::text <> '' THEN $3::text ELSE url END
		WHERE id = $4 AND phase IN ('triggering', 'deploying') AND outcome = ''`, outcome, reason, url, id)
	if err != nil {
		return fmt.Errorf("report outcome of execution %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("report outcome of execution %s: %w", id, ErrFinished)
	}
	return nil
}

// RunByTag implements Rollouts.
func (s *Postgres) RunByTag(ctx context.Context, repo, tag string) (Run, bool, error) {
	// The run's own tag is its release intent, there before any rollout
	// (and the only one when the rollout never started); a rollout's tag
	// is the release it deploys.
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE repo = $1
		AND (tag = $2 OR EXISTS (SELECT 1 FROM rollouts o WHERE o.run_id = runs.id AND o.tag = $2)) LIMIT 1`, repo, tag))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("run of %s %s: %w", repo, tag, err)
	}
	return r, true, nil
}

// FinishAndEnter implements Rollouts.
func (s *Postgres) FinishAndEnter(ctx context.Context, finished Execution, next ...Execution) error {
	if len(next) == 0 {
		return errors.New("finish and enter: no next execution")
	}
	err := s.tx(ctx, func(t pgx.Tx) error {
		now := ms(time.Now())
		tag, err := t.Exec(ctx, `UPDATE executions SET phase = 'finished', outcome = $1, reason = $2, url = $3, finished_at = $4
			WHERE id = $5 AND phase <> 'finished'`, finished.Outcome, finished.Reason, finished.URL, now, finished.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errAlreadyFinished
		}
		if _, err := t.Exec(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = $1 WHERE rollout_id = $2 AND idx = $3`,
			now, next[0].RunID, next[0].Stage); err != nil {
			return err
		}
		return pgInsertExecutions(ctx, t, next)
	})
	if errors.Is(err, errAlreadyFinished) {
		return fmt.Errorf("finish execution %s: %w", finished.ID, ErrFinished)
	}
	if err != nil {
		return fmt.Errorf("roll back stage %s of rollout %s: %w", next[0].StageName, next[0].RunID, err)
	}
	return nil
}

// pgInsertExecutions records new executions of one stage attempt, in their
// targets' order (the seq column keeps it for Executions), in one round
// trip.
func pgInsertExecutions(ctx context.Context, t pgx.Tx, execs []Execution) error {
	now := ms(time.Now())
	b := &pgx.Batch{}
	for _, e := range execs {
		b.Queue(`INSERT INTO executions (id, rollout_id, idx, stage, target, attempt, rollback, version, tag, phase,
			token_hash, deadline, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			e.ID, e.RunID, e.Stage, e.StageName, e.Target, e.Attempt, e.Rollback, e.Version, e.Tag, e.Phase, e.TokenHash, ms(e.Deadline), now)
	}
	return t.SendBatch(ctx, b).Close()
}
