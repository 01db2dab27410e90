package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
)

// Migration 10 carries a database written before the rollout model was
// typed: waits stored as words are dropped (the engine works them out again
// on its next pass) and executions that passed by hand-off or because an
// earlier job deployed them say so as a type, not in words.
func TestMigrationTypesExistingRollouts(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.migrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.CreateRun(ctx, Run{Repo: "acme/api", SHA: "0123456789012345678901234567890123456789", State: "done", Pipeline: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRollout(ctx, r.ID, "acme/api:api", nil, nil, []string{"qa", "prod", "eu"}); err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{"handed off to qa-hook", "deployed before: deployment 7 is successful", "Spinnaker execution TERMINAL"} {
		ex := Execution{ID: []string{"a", "b", "c"}[i], RunID: r.ID, Stage: i, StageName: []string{"qa", "prod", "eu"}[i], Attempt: 1,
			Version: "1.0.0", Tag: "v1.0.0", Phase: PhaseDeploying, TokenHash: "h" + reason}
		if err := s.EnterStage(ctx, ex); err != nil {
			t.Fatal(err)
		}
		outcome := "succeeded"
		if i == 2 {
			outcome = "failed"
		}
		if _, err := s.w.ExecContext(ctx, `UPDATE executions SET phase = 'finished', outcome = ?, reason = ? WHERE id = ?`, outcome, reason, ex.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE stage_states SET state = 'pending', wait = 'waiting for the deploy window' WHERE run_id = ? AND idx = 2`, r.ID); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	execs, err := s.Executions(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []rollout.Pass{rollout.HandedOff, rollout.DeployedBefore, rollout.Learned}
	for i, ex := range execs {
		if ex.Pass != want[i] {
			t.Errorf("execution %q: pass %q; want %q", ex.Reason, ex.Pass, want[i])
		}
	}
	rr, err := s.GetRollout(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if eu := rr.Stages[2]; eu.State != schedule.Pending || !eu.Wait.None() {
		t.Errorf("eu after the migration: %v %+v; want pending with no wait until the engine looks", eu.State, eu.Wait)
	}
}
