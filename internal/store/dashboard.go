package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Pipeline is one pipeline as the dashboard lists it.
type Pipeline struct {
	Key string // owner/name:pipeline
	// Stages are the stage names of the pipeline's newest rollout (stages
	// ride with the code, so the newest has the current ones).
	Stages    []string
	LastRunAt time.Time // creation of the run of its newest rollout; zero for a freeze without rollouts
	Freeze    *Freeze   // nil unless frozen
}

// Freeze is why and since when a pipeline is frozen.
type Freeze struct {
	Reason string
	Actor  string
	At     time.Time
}

// LiveExecution is an unfinished execution with what the dashboard needs
// of its rollout and run.
type LiveExecution struct {
	Execution
	PipelineKey string
	Repo        string
	PR          int
}

// Dashboards are the read-only queries of the dashboard.
type Dashboards interface {
	// ListPipelines lists every pipeline that has had a rollout or is
	// frozen, by key.
	ListPipelines(ctx context.Context) ([]Pipeline, error)
	// LiveExecutions lists every unfinished execution, oldest first.
	LiveExecutions(ctx context.Context) ([]LiveExecution, error)
	// RecentRollouts lists the newest runs first (released or not), at
	// most limit runs: each with its rollouts, one entry per rollout (by
	// pipeline key), with its stages; a run without rollout as one entry
	// without one.
	RecentRollouts(ctx context.Context, limit int) ([]RolloutRun, error)
	// FailedDeliveries lists the deliveries that failed for good, the
	// latest failure first, at most limit.
	FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error)
}

var _ Dashboards = (*SQLite)(nil)

// ListPipelines implements Dashboards.
func (s *queries) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT o.pipeline_key, o.id, r.created_at FROM rollouts o JOIN runs r ON r.id = o.run_id
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

	frows, err := s.r.QueryContext(ctx, `SELECT pipeline_key, reason, actor, at FROM freezes ORDER BY pipeline_key`)
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

// withExtra scans the columns a scan function knows, then extra ones.
type withExtra struct {
	sc    interface{ Scan(...any) error }
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.extra...)...) }

// LiveExecutions implements Dashboards.
func (s *queries) LiveExecutions(ctx context.Context) ([]LiveExecution, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+execCols+`, pipeline_key_, repo_, pr_ FROM
		(SELECT e.*, o.pipeline_key AS pipeline_key_, r.repo AS repo_, r.pr AS pr_
			FROM executions e JOIN rollouts o ON o.id = e.rollout_id JOIN runs r ON r.id = o.run_id
			WHERE e.phase <> 'finished') live
		ORDER BY created_at, id`)
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
func (s *queries) RecentRollouts(ctx context.Context, limit int) ([]RolloutRun, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+rolloutCols+` FROM (SELECT * FROM runs ORDER BY seq DESC LIMIT ?) r
		LEFT JOIN rollouts o ON o.run_id = r.id ORDER BY r.seq DESC, o.pipeline_key`, limit)
	if err != nil {
		return nil, fmt.Errorf("recent runs: %w", err)
	}
	var out []RolloutRun
	var ids []string
	for rows.Next() {
		rr, err := scanRollout(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("recent runs: %w", err)
		}
		out = append(out, rr)
		if rr.Rollout != "" {
			ids = append(ids, rr.ID)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
