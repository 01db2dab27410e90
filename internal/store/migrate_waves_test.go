package store

import (
	"context"
	"testing"

	"github.com/shipbot/shipbot/internal/schedule"
)

// Migration 12 keeps every execution and deployment of schema 11 (target
// ”), lets a wave's targets share an attempt, and going down keeps one
// execution per attempt.
func TestMigrationWavesAndApprovals(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, 11)
	r, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/api", SHA: "a1", Installation: 1, Branch: "main", Source: "push", PR: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartRollout(ctx, r.ID, "acme/api:api", Release{Version: "1.0.0", Tag: "v1.0.0"}, nil, nil, []string{"qa", "prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO executions (id, rollout_id, idx, stage, attempt, version, tag, phase, outcome, token_hash, created_at, finished_at)
		VALUES ('x1', ?, 0, 'qa', 1, '1.0.0', 'v1.0.0', 'finished', 'succeeded', 'h1', 1, 2)`, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDeployment(ctx, Deployment{ExecutionID: "x1", Repo: "acme/api", Environment: "qa", ID: 5}); err != nil {
		t.Fatal(err)
	}
	p, err := s.migrator()
	if err != nil {
		t.Fatal(err)
	}
	// Up to the audit log too: the store's EnterStage below records its
	// event there.
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, s)
	execs, err := s.Executions(ctx, r.ID)
	if err != nil || len(execs) != 1 || execs[0].ID != "x1" || execs[0].Target != "" || execs[0].Outcome != "succeeded" {
		t.Fatalf("executions after up = %+v, %v; want x1 kept, no target", execs, err)
	}
	if d, ok, err := s.Deployment(ctx, "x1"); err != nil || !ok || d.ID != 5 {
		t.Errorf("deployment after up = %+v %v %v; want kept", d, ok, err)
	}

	// A wave: two targets, one attempt.
	wave := []Execution{
		{ID: "w1", RolloutID: r.ID, Stage: 1, StageName: "prod", Target: "eu", Attempt: 1, Version: "1.0.0", Tag: "v1.0.0", Phase: PhaseTriggering, TokenHash: "hw1"},
		{ID: "w2", RolloutID: r.ID, Stage: 1, StageName: "prod", Target: "us", Attempt: 1, Version: "1.0.0", Tag: "v1.0.0", Phase: PhaseTriggering, TokenHash: "hw2"},
	}
	if err := s.EnterStage(ctx, wave...); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveStage(ctx, r.ID, 1, "alice"); err == nil {
		t.Error("approving an active stage succeeded; want ErrStateChanged")
	}
	execs, _ = s.Executions(ctx, r.ID)
	if len(execs) != 3 || execs[1].Target != "eu" || execs[2].Target != "us" {
		t.Fatalf("executions with a wave = %+v; want x1, then eu and us in order", execs)
	}
	rr, err := s.GetRollout(ctx, r.ID)
	if err != nil || rr.Stages[1].State != schedule.Active {
		t.Fatalf("wave stage = %+v, %v; want active", rr.Stages, err)
	}

	if _, err := p.DownTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM executions`).Scan(&n); err != nil || n != 2 {
		t.Errorf("executions after down = %d, %v; want 2 (x1 and the wave's first target)", n, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}
