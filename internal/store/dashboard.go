package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
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
	// most q.Limit runs, of q.Repo when set, older than q.Before (a run's
	// Seq) when set: each with its rollouts, one entry per rollout (by
	// pipeline key), with its stages; a run without rollout as one entry
	// without one.
	RecentRollouts(ctx context.Context, q RunsQuery) ([]RolloutRun, error)
	// FailedDeliveries lists the deliveries that failed for good, the
	// latest failure first, at most limit.
	FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error)
	// History reads, per stage of the pipeline named in stages, the
	// versions each ran, newest first, at most perStage each.
	History(ctx context.Context, pipelineKey string, stages []string, perStage int) (map[string][]Deployed, error)
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

// RunsQuery picks a page of runs for RecentRollouts.
type RunsQuery struct {
	Repo   string // owner/name; "" for every repository
	Before int64  // only runs whose Seq is lower: the next page; 0 for the newest
	Limit  int
}

// RecentRollouts implements Dashboards.
func (s *queries) RecentRollouts(ctx context.Context, q RunsQuery) ([]RolloutRun, error) {
	where, args := `WHERE 1 = 1`, []any{}
	if q.Repo != "" {
		where += ` AND repo = ?`
		args = append(args, q.Repo)
	}
	if q.Before > 0 {
		where += ` AND seq < ?`
		args = append(args, q.Before)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+rolloutCols+` FROM (SELECT * FROM runs `+where+` ORDER BY seq DESC LIMIT ?) r
		LEFT JOIN rollouts o ON o.run_id = r.id ORDER BY r.seq DESC, o.pipeline_key`, append(args, q.Limit)...)
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

// Deployed is a version a stage ran: one successful deploy or rollback
// (a wave's targets of one attempt are one).
type Deployed struct {
	Stage    string
	Version  string
	Tag      string
	Rollback bool
	// At is when it finished: since then the stage runs it.
	At time.Time
	// From is, for a rollback, the version it replaced.
	From string
	// RolloutID is the rollout that released the version (for a rollback,
	// the earlier one whose version it restores); Repo and PR its merge's.
	RolloutID string
	Repo      string
	PR        int
}

// History reads, per stage of the pipeline, the versions it ran, newest
// first, at most perStage each: every deploy and rollback that succeeded.
// The first of a stage is what it runs now (a deploy rolled back is
// followed by its rollback).
//
// A stage's executions finish in the order of their rollouts (a version
// enters a stage only after the one before it left, and a rollback
// happens before a newer version enters), so each stage's history is read
// walking the pipeline's rollouts newest first by their index, and stops
// once it has enough: a load costs the few newest rollouts, not the
// pipeline's whole past (BenchmarkHistory).
func (s *queries) History(ctx context.Context, pipelineKey string, stages []string, perStage int) (map[string][]Deployed, error) {
	out := map[string][]Deployed{}
	for _, stage := range stages {
		ds, err := s.stageHistory(ctx, pipelineKey, stage, perStage)
		if err != nil {
			return nil, fmt.Errorf("history of %s stage %s: %w", pipelineKey, stage, err)
		}
		if len(ds) > 0 {
			out[stage] = ds
		}
	}
	return out, nil
}

func (s *queries) stageHistory(ctx context.Context, pipelineKey, stage string, perStage int) ([]Deployed, error) {
	// A wave gives one row per target: read a few more rows than asked,
	// for the per-attempt dedupe below.
	rows, err := s.r.QueryContext(ctx, `SELECT e.version, e.tag, e.rollback, e.finished_at, e.rollout_id, e.attempt, r.repo, r.pr, o.tag
		FROM rollouts o JOIN executions e ON e.rollout_id = o.id JOIN runs r ON r.id = o.run_id
		WHERE o.pipeline_key = ? AND e.stage = ? AND e.phase = 'finished' AND e.outcome = 'succeeded'
		ORDER BY o.rollout_order DESC, e.finished_at DESC LIMIT ?`, pipelineKey, stage, perStage*4)
	if err != nil {
		return nil, err
	}
	type attempt struct {
		rollout string
		n       int
	}
	seen := map[attempt]bool{}
	var out []Deployed
	for rows.Next() {
		d := Deployed{Stage: stage}
		var at int64
		var n int
		if err := rows.Scan(&d.Version, &d.Tag, &d.Rollback, &at, &d.RolloutID, &n, &d.Repo, &d.PR, &d.From); err != nil {
			rows.Close()
			return nil, err
		}
		d.At = fromMS(at)
		a := attempt{d.RolloutID, n}
		if seen[a] || len(out) >= perStage {
			continue
		}
		seen[a] = true
		if !d.Rollback {
			d.From = ""
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A rollback names the version it restores by tag: the rollout that
	// released that tag is where the version (and its pull request) came
	// from.
	for i, d := range out {
		if !d.Rollback {
			continue
		}
		var id string
		var pr int
		err := s.r.QueryRowContext(ctx, `SELECT o.id, r.pr FROM rollouts o JOIN runs r ON r.id = o.run_id
			WHERE o.pipeline_key = ? AND o.tag = ? ORDER BY o.rollout_order LIMIT 1`, pipelineKey, d.Tag).Scan(&id, &pr)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released before rollouts were kept: the rollback's own rollout stays
		}
		if err != nil {
			return nil, err
		}
		out[i].RolloutID, out[i].PR = id, pr
	}
	return out, nil
}
