package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

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
	r, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/api", SHA: "0123456789012345678901234567890123456789", State: "done", Pipeline: "api"})
	if err != nil {
		t.Fatal(err)
	}
	// The rollout as the schema of version 9 holds it: on the run's row.
	old := oldSchema{t: t, s: s}
	old.startRollout(r.ID, "acme/api:api", 1, RolloutActive, nil, "[]", "qa", "prod", "eu")
	for i, reason := range []string{"handed off to qa-hook", "deployed before: deployment 7 is successful", "Spinnaker execution TERMINAL"} {
		outcome := "succeeded"
		if i == 2 {
			outcome = "failed"
		}
		old.exec(`UPDATE stage_states SET state = 'active' WHERE run_id = ? AND idx = ?`, r.ID, i)
		old.exec(`INSERT INTO executions (id, run_id, idx, stage, attempt, version, tag, phase, outcome, reason, token_hash, created_at)
			VALUES (?, ?, ?, ?, 1, '1.0.0', 'v1.0.0', 'finished', ?, ?, ?, 1)`,
			[]string{"a", "b", "c"}[i], r.ID, i, []string{"qa", "prod", "eu"}[i], outcome, reason, "h"+reason)
	}
	old.exec(`UPDATE stage_states SET state = 'pending', wait = 'waiting for the deploy window' WHERE run_id = ? AND idx = 2`, r.ID)

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

// oldSchema writes rows as the schema before migration 11 held them, when a
// run and its rollout were one row: what the store's methods did then.
type oldSchema struct {
	t testing.TB
	s *SQLite
}

func (o oldSchema) exec(q string, args ...any) {
	o.t.Helper()
	if _, err := o.s.w.ExecContext(context.Background(), q, args...); err != nil {
		o.t.Fatalf("%s: %v", q, err)
	}
}

// createRun inserts r as CreateRun does, without the event it records:
// schemas before 14 have no events table.
func (o oldSchema) createRun(ctx context.Context, r Run) (Run, bool, error) {
	o.t.Helper()
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.State == "" {
		r.State = RunPending
	}
	now := ms(time.Now())
	o.exec(`INSERT INTO runs (id, repo, sha, installation, branch, pr, pr_facts, source, merged_at,
		parent, seq, state, pipeline, summary, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM runs), ?, ?, ?, ?, ?)`,
		r.ID, r.Repo, r.SHA, r.Installation, r.Branch, r.PR, nonNilBytes(r.PRFacts), r.Source, ms(r.MergedAt), r.Parent,
		r.State, r.Pipeline, nonNilBytes(r.Summary), now, now)
	stored, err := o.s.runBySHA(ctx, o.s.w, r.Repo, r.SHA)
	return stored, true, err
}

// startRollout puts run id into pipeline key's rollout at order, with
// stages pending, as StartRollout did.
func (o oldSchema) startRollout(id, key string, order int64, state string, config []byte, labels string, stages ...string) {
	o.t.Helper()
	if config == nil {
		config = []byte{}
	}
	o.exec(`UPDATE runs SET pipeline_key = ?, rollout_order = ?, rollout = ?, config = ?, labels = ? WHERE id = ?`,
		key, order, state, config, labels, id)
	for i, name := range stages {
		o.exec(`INSERT INTO stage_states (run_id, idx, stage, state, updated_at) VALUES (?, ?, ?, 'pending', 1)`, id, i, name)
	}
}
