package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shipbot/shipbot/internal/schedule"
)

// RolloutByPR implements Commands.
func (s *Postgres) RolloutByPR(ctx context.Context, repo string, pr int) (RolloutRun, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT o.id FROM runs r JOIN rollouts o ON o.run_id = r.id
		WHERE r.repo = $1 AND r.pr = $2 ORDER BY r.created_at DESC, o.id = r.id DESC, o.created_at, o.id LIMIT 1`, repo, pr).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return RolloutRun{}, ErrNotFound
	}
	if err != nil {
		return RolloutRun{}, fmt.Errorf("rollout of %s#%d: %w", repo, pr, err)
	}
	return s.GetRollout(ctx, id)
}

// ReopenStage implements Commands. Of two reopenings at once, the second
// UPDATE waits for the first's commit and re-checks the stage's state
// against it: no longer in from, ErrStateChanged.
func (s *Postgres) ReopenStage(ctx context.Context, rolloutID string, idx int, from []schedule.StageState, deployBy, forceBy string) error {
	states := make([]string, len(from))
	for i, f := range from {
		states[i] = f.String()
	}
	err := s.tx(ctx, func(t pgx.Tx) error {
		now := ms(time.Now())
		tag, err := t.Exec(ctx, `UPDATE stage_states SET state = 'pending', wait = '', updated_at = $1,
			deploy_by = CASE WHEN $2::text <> '' THEN $2::text ELSE deploy_by END,
			force_by = CASE WHEN $3::text <> '' THEN $3::text ELSE force_by END
			WHERE rollout_id = $4 AND idx = $5 AND state = ANY($6)`, now, deployBy, forceBy, rolloutID, idx, states)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrStateChanged
		}
		if _, err := t.Exec(ctx, `UPDATE stage_states SET state = 'pending', updated_at = $1 WHERE rollout_id = $2 AND idx > $3 AND state = 'skipped'`,
			now, rolloutID, idx); err != nil {
			return err
		}
		_, err = t.Exec(ctx, `UPDATE rollouts SET state = 'active', updated_at = $1 WHERE id = $2`, now, rolloutID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reopen stage %d of rollout %s: %w", idx, rolloutID, err)
	}
	return nil
}

// ForceStage implements Commands.
func (s *Postgres) ForceStage(ctx context.Context, rolloutID string, idx int, forceBy string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE stage_states SET force_by = $1, updated_at = $2 WHERE rollout_id = $3 AND idx = $4 AND state = 'pending'`,
		forceBy, ms(time.Now()), rolloutID, idx)
	if err != nil {
		return fmt.Errorf("force stage %d of rollout %s: %w", idx, rolloutID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("force stage %d of rollout %s: %w", idx, rolloutID, ErrStateChanged)
	}
	return nil
}

// Reenter implements Commands. Two at once: as ReopenStage.
func (s *Postgres) Reenter(ctx context.Context, from schedule.StageState, execs ...Execution) error {
	if len(execs) == 0 {
		return errors.New("re-enter stage: no execution")
	}
	e := execs[0]
	err := s.tx(ctx, func(t pgx.Tx) error {
		now := ms(time.Now())
		tag, err := t.Exec(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = $1 WHERE rollout_id = $2 AND idx = $3 AND state = $4`,
			now, e.RunID, e.Stage, from.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrStateChanged
		}
		if _, err := t.Exec(ctx, `UPDATE rollouts SET state = 'active', updated_at = $1 WHERE id = $2`, now, e.RunID); err != nil {
			return err
		}
		return pgInsertExecutions(ctx, t, execs)
	})
	if err != nil {
		return fmt.Errorf("re-enter stage %s of rollout %s: %w", e.StageName, e.RunID, err)
	}
	return nil
}

// ApproveStage implements Commands.
func (s *Postgres) ApproveStage(ctx context.Context, rolloutID string, idx int, actor string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE stage_states SET approved_by = $1, updated_at = $2 WHERE rollout_id = $3 AND idx = $4 AND state = 'pending'`,
		actor, ms(time.Now()), rolloutID, idx)
	if err != nil {
		return fmt.Errorf("approve stage %d of rollout %s: %w", idx, rolloutID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("approve stage %d of rollout %s: %w", idx, rolloutID, ErrStateChanged)
	}
	return nil
}

// RejectStage implements Commands.
func (s *Postgres) RejectStage(ctx context.Context, rolloutID string, idx int, actor, reason string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE stage_states SET state = 'failed', wait = '', rejected_by = $1, rejection = $2, updated_at = $3
		WHERE rollout_id = $4 AND idx = $5 AND state = 'pending'`, actor, reason, ms(time.Now()), rolloutID, idx)
	if err != nil {
		return fmt.Errorf("reject stage %d of rollout %s: %w", idx, rolloutID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("reject stage %d of rollout %s: %w", idx, rolloutID, ErrStateChanged)
	}
	return nil
}

// NewerEntered implements Commands.
func (s *Postgres) NewerEntered(ctx context.Context, pipelineKey string, idx int, order int64) (string, bool, error) {
	var tag string
	err := s.pool.QueryRow(ctx, `SELECT o.tag FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE o.pipeline_key = $1 AND e.idx = $2 AND o.rollout_order > $3 AND NOT e.rollback
		ORDER BY o.rollout_order DESC LIMIT 1`, pipelineKey, idx, order).Scan(&tag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("newer versions at stage %d of %s: %w", idx, pipelineKey, err)
	}
	return tag, true, nil
}

// ActiveAt implements Commands.
func (s *Postgres) ActiveAt(ctx context.Context, pipelineKey string, idx int) (Execution, bool, error) {
	execs, err := s.OpenExecutionsOf(ctx, pipelineKey)
	if err != nil {
		return Execution{}, false, err
	}
	for _, e := range execs {
		if e.Stage == idx {
			return e, true, nil
		}
	}
	return Execution{}, false, nil
}

// --- Deployments ----------------------------------------------------------

// Deployment implements Deployments.
func (s *Postgres) Deployment(ctx context.Context, executionID string) (Deployment, bool, error) {
	d, err := scanDeployment(s.pool.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE execution_id = $1`, executionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Deployment{}, false, nil
	}
	if err != nil {
		return Deployment{}, false, fmt.Errorf("deployment of execution %s: %w", executionID, err)
	}
	return d, true, nil
}

// SaveDeployment implements Deployments.
func (s *Postgres) SaveDeployment(ctx context.Context, d Deployment) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO deployments (`+deploymentColumns+`, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (execution_id) DO UPDATE SET deployment_id = excluded.deployment_id, state = excluded.state, updated_at = excluded.updated_at`,
		d.ExecutionID, d.Repo, d.Environment, d.ID, d.State, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("save deployment of execution %s: %w", d.ExecutionID, err)
	}
	return nil
}

// ActiveDeployment implements Deployments.
func (s *Postgres) ActiveDeployment(ctx context.Context, repo, environment, exceptExecution string) (Deployment, bool, error) {
	d, err := scanDeployment(s.pool.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE repo = $1 AND environment = $2 AND state = 'success' AND execution_id <> $3 AND deployment_id <> 0
		ORDER BY updated_at DESC LIMIT 1`, repo, environment, exceptExecution))
	if errors.Is(err, pgx.ErrNoRows) {
		return Deployment{}, false, nil
	}
	if err != nil {
		return Deployment{}, false, fmt.Errorf("active deployment of %s in %s: %w", repo, environment, err)
	}
	return d, true, nil
}

// pgRunOf is runOf for an id given as parameter $n.
func pgRunOf(n int) string {
	return fmt.Sprintf(`coalesce((SELECT run_id FROM rollouts WHERE rollouts.id = $%d), $%[1]d)`, n)
}

// AddAPICalls implements Deployments. Concurrent additions queue on the
// run's row lock, each adding to what the one before committed.
func (s *Postgres) AddAPICalls(ctx context.Context, id string, n int) error {
	if n == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE runs SET api_calls = api_calls + $1 WHERE id = `+pgRunOf(2), n, id); err != nil {
		return fmt.Errorf("count API calls of run %s: %w", id, err)
	}
	return nil
}

// APICalls implements Deployments.
func (s *Postgres) APICalls(ctx context.Context, id string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT api_calls FROM runs WHERE id = `+pgRunOf(1), id).Scan(&n); err != nil {
		return 0, fmt.Errorf("API calls of run %s: %w", id, err)
	}
	return n, nil
}

// --- Dashboards -----------------------------------------------------------

// ListPipelines implements Dashboards.
func (s *Postgres) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.pipeline_key, o.id, r.created_at FROM rollouts o JOIN runs r ON r.id = o.run_id
		WHERE o.rollout_order = (SELECT max(rollout_order) FROM rollouts WHERE pipeline_key = o.pipeline_key)
		ORDER BY o.pipeline_key`)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	var out []Pipeline
	var ids []string
	for rows.Next() {
		var p Pipeline
		var id string
		var created int64
		if err := rows.Scan(&p.Key, &id, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		p.LastRunAt = fromMS(created)
		out = append(out, p)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	stages, err := s.stagesOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stages of pipelines: %w", err)
	}
	byKey := make(map[string]int, len(out))
	for i := range out {
		byKey[out[i].Key] = i
		for _, st := range stages[ids[i]] {
			out[i].Stages = append(out[i].Stages, st.Name)
		}
	}

	frows, err := s.pool.Query(ctx, `SELECT pipeline_key, reason, actor, at FROM freezes ORDER BY pipeline_key`)
	if err != nil {
		return nil, fmt.Errorf("list freezes: %w", err)
	}
	defer frows.Close()
	for frows.Next() {
		var key string
		var f Freeze
		var at int64
		if err := frows.Scan(&key, &f.Reason, &f.Actor, &at); err != nil {
			return nil, fmt.Errorf("list freezes: %w", err)
		}
		f.At = fromMS(at)
		if i, ok := byKey[key]; ok {
			out[i].Freeze = &f
			continue
		}
		out = append(out, Pipeline{Key: key, Freeze: &f})
	}
	if err := frows.Err(); err != nil {
		return nil, fmt.Errorf("list freezes: %w", err)
	}
	slices.SortFunc(out, func(a, b Pipeline) int { return cmp.Compare(a.Key, b.Key) })
	return out, nil
}

// LiveExecutions implements Dashboards.
func (s *Postgres) LiveExecutions(ctx context.Context) ([]LiveExecution, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgExecCols+`, o.pipeline_key, r.repo, r.pr
		FROM executions e JOIN rollouts o ON o.id = e.rollout_id JOIN runs r ON r.id = o.run_id
		WHERE e.phase <> 'finished' ORDER BY e.created_at, e.id`)
	if err != nil {
		return nil, fmt.Errorf("live executions: %w", err)
	}
	defer rows.Close()
	var out []LiveExecution
	for rows.Next() {
		var le LiveExecution
		e, err := scanExecution(withExtra{rows, []any{&le.PipelineKey, &le.Repo, &le.PR}})
		if err != nil {
			return nil, fmt.Errorf("live executions: %w", err)
		}
		le.Execution = e
		out = append(out, le)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("live executions: %w", err)
	}
	return out, nil
}

// RecentRollouts implements Dashboards.
func (s *Postgres) RecentRollouts(ctx context.Context, limit int) ([]RolloutRun, error) {
	out, ids, err := s.queryRollouts(ctx, `SELECT `+pgRolloutCols+` FROM (SELECT * FROM runs ORDER BY seq DESC LIMIT $1) r
		LEFT JOIN rollouts o ON o.run_id = r.id ORDER BY r.seq DESC, o.pipeline_key`, limit)
	if err != nil {
		return nil, fmt.Errorf("recent runs: %w", err)
	}
	stages, err := s.stagesOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stages of recent runs: %w", err)
	}
	for i := range out {
		out[i].Stages = stages[out[i].ID]
	}
	return out, nil
}

// FailedDeliveries implements Dashboards.
func (s *Postgres) FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, event, action, repo, attempts, last_error, received_at, finished_at
		FROM deliveries WHERE status = 'failed' ORDER BY finished_at DESC, seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	defer rows.Close()
	var out []FailedDelivery
	for rows.Next() {
		var d FailedDelivery
		var received, failed int64
		if err := rows.Scan(&d.ID, &d.Event, &d.Action, &d.Repo, &d.Attempts, &d.LastError, &received, &failed); err != nil {
			return nil, fmt.Errorf("list failed deliveries: %w", err)
		}
		d.ReceivedAt, d.FailedAt = fromMS(received), fromMS(failed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	return out, nil
}
