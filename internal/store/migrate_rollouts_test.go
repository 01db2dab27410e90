package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
)

// Migration 11 moves every run's rollout (version 10 kept it on the run's
// row) into a rollout of its own with the run's id, and hangs stage states
// and executions (and, through them, deployments) off it. Everything
// written before reads back the same through the store, under the same
// ids; the next rollout of a pipeline follows the migrated ones in order.
func TestMigrationSplitsRolloutsFromRuns(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, 10)
	old := oldSchema{t: t, s: s}

	const key = "acme/api:api"
	release := func(sha string, pr int, version, prev string) Run {
		t.Helper()
		r, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/api", SHA: sha, Installation: 1, Branch: "main", Source: "push", PR: pr})
		if err != nil {
			t.Fatal(err)
		}
		r.State, r.Pipeline, r.Version, r.Tag, r.PrevTag = RunReleased, "api", version, "v"+version, prev
		r.ReleaseURL = "https://github.com/acme/api/releases/tag/v" + version
		if err := s.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// r1 rolled out through qa and prod and is done; r2 passed qa and is
	// deploying to prod, waiting for its callback; r3 was never released;
	// w1 is another repository's pipeline.
	r1 := release("a1", 7, "1.0.0", "")
	old.startRollout(r1.ID, key, 1, RolloutDone, []byte("version: 1\n"), `["semver:minor"]`, "qa", "prod")
	old.exec(`UPDATE stage_states SET state = 'passed', deploy_by = 'alice' WHERE run_id = ?`, r1.ID)
	old.exec(`INSERT INTO executions (id, run_id, idx, stage, attempt, version, tag, phase, outcome, pass, reason, token_hash, url, created_at, finished_at)
		VALUES ('x1', ?, 0, 'qa', 1, '1.0.0', 'v1.0.0', 'finished', 'succeeded', 'handed-off', 'handed off to qa-hook', 'h1', 'https://ci.example/1', 1000, 2000),
		       ('x2', ?, 1, 'prod', 1, '1.0.0', 'v1.0.0', 'finished', 'succeeded', '', '', 'h2', '', 3000, 4000)`, r1.ID, r1.ID)
	old.exec(`INSERT INTO deployments (execution_id, repo, environment, deployment_id, state, updated_at)
		VALUES ('x1', 'acme/api', 'qa', 41, 'success', 2000), ('x2', 'acme/api', 'prod', 42, 'success', 4000)`)

	r2 := release("a2", 8, "1.1.0", "v1.0.0")
	old.startRollout(r2.ID, key, 2, RolloutActive, []byte("version: 1\n"), `[]`, "qa", "prod")
	wait, err := rollout.MarshalWait(rollout.Wait{Kind: schedule.Frozen, Reason: "incident 42"})
	if err != nil {
		t.Fatal(err)
	}
	old.exec(`UPDATE stage_states SET state = 'passed' WHERE run_id = ? AND idx = 0`, r2.ID)
	old.exec(`UPDATE stage_states SET state = 'active', wait = ? WHERE run_id = ? AND idx = 1`, wait, r2.ID)
	deadline := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	old.exec(`INSERT INTO executions (id, run_id, idx, stage, attempt, version, tag, phase, token_hash, event_id, deadline, created_at)
		VALUES ('y1', ?, 0, 'qa', 1, '1.1.0', 'v1.1.0', 'finished', 'h3', '', 0, 5000),
		       ('y2', ?, 1, 'prod', 1, '1.1.0', 'v1.1.0', 'deploying', 'h4', 'ev-4', ?, 6000)`, r2.ID, r2.ID, deadline.UnixMilli())
	old.exec(`UPDATE executions SET outcome = 'succeeded' WHERE id = 'y1'`)

	r3, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/api", SHA: "a3", Installation: 1, Branch: "main", Source: "push", PR: 9})
	if err != nil {
		t.Fatal(err)
	}
	w1, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/web", SHA: "w1", Installation: 1, Branch: "main", Source: "push"})
	if err != nil {
		t.Fatal(err)
	}
	old.startRollout(w1.ID, "acme/web:web", 1, RolloutActive, nil, `[]`, "prod")
	old.exec(`UPDATE runs SET api_calls = 11 WHERE id = ?`, r2.ID)

	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, s)

	// Every rollout under its run's id, with its run, release and stages.
	rr1, err := s.GetRollout(ctx, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rr1.ID != r1.ID || rr1.Run.ID != r1.ID || rr1.PipelineKey != key || rr1.Pipeline != "api" || rr1.Order != 1 ||
		rr1.Rollout != RolloutDone || string(rr1.Config) != "version: 1\n" || fmt.Sprint(rr1.Labels) != "[semver:minor]" {
		t.Errorf("r1 = id %q run %q key %q pipeline %q order %d rollout %q config %q labels %v; want r1's rollout as it was",
			rr1.ID, rr1.Run.ID, rr1.PipelineKey, rr1.Pipeline, rr1.Order, rr1.Rollout, rr1.Config, rr1.Labels)
	}
	if rr1.Release() != r1.Release() || rr1.Run.Release() != r1.Release() || rr1.PR != 7 || rr1.SHA != "a1" || rr1.State != RunReleased {
		t.Errorf("r1 release %+v, run release %+v; want %+v on both", rr1.Release(), rr1.Run.Release(), r1.Release())
	}
	if len(rr1.Stages) != 2 || rr1.Stages[0].State != schedule.Passed || rr1.Stages[1].DeployBy != "alice" {
		t.Errorf("r1 stages = %+v; want qa and prod passed, deployed by alice", rr1.Stages)
	}
	execs, err := s.Executions(ctx, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(execs) != 2 || execs[0].ID != "x1" || execs[0].RolloutID != r1.ID || execs[0].Pass != rollout.HandedOff ||
		execs[0].URL != "https://ci.example/1" || execs[0].FinishedAt.UnixMilli() != 2000 || execs[1].ID != "x2" {
		t.Errorf("r1 executions = %+v; want x1 (handed off) and x2 as they were", execs)
	}
	if d, ok, err := s.Deployment(ctx, "x1"); err != nil || !ok || d.ID != 41 || d.State != "success" {
		t.Errorf("deployment of x1 = %+v, %v, %v; want GitHub's 41, success", d, ok, err)
	}

	// The active rollouts, where the engine finds them, with what a
	// callback needs: the token's execution, the rollout's id.
	active, err := s.LoadRollout(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].ID != r2.ID || active[0].Order != 2 || len(active[0].Stages) != 2 {
		t.Fatalf("LoadRollout = %+v; want r2 alone, order 2, two stages", active)
	}
	if prod := active[0].Stages[1]; prod.State != schedule.Active || prod.Wait.Kind != schedule.Frozen || prod.Wait.Reason != "incident 42" {
		t.Errorf("r2 prod = %+v; want active, its wait kept", prod)
	}
	x, err := s.ExecutionByToken(ctx, "h4")
	if err != nil || x.ID != "y2" || x.RolloutID != r2.ID || x.EventID != "ev-4" || !x.Deadline.Equal(deadline) {
		t.Errorf("ExecutionByToken(h4) = %+v, %v; want y2 of r2, deploying until %v", x, err, deadline)
	}
	open, err := s.OpenExecutionsOf(ctx, key)
	if err != nil || len(open) != 1 || open[0].ID != "y2" {
		t.Errorf("OpenExecutionsOf = %+v, %v; want y2", open, err)
	}
	if v, tag, ok, err := s.LastDeployed(ctx, key, 1, 2); err != nil || !ok || v != "1.0.0" || tag != "v1.0.0" {
		t.Errorf("LastDeployed(prod, before r2) = %s %s %v %v; want 1.0.0", v, tag, ok, err)
	}
	if byPR, err := s.RolloutByPR(ctx, "acme/api", 8); err != nil || byPR.ID != r2.ID {
		t.Errorf("RolloutByPR(8) = %s, %v; want r2", byPR.ID, err)
	}
	if n, err := s.APICalls(ctx, r2.ID); err != nil || n != 11 {
		t.Errorf("APICalls(r2) = %d, %v; want 11", n, err)
	}
	keys, err := s.PipelinesWithRollouts(ctx)
	if err != nil || fmt.Sprint(keys) != "[acme/api:api acme/web:web]" {
		t.Errorf("PipelinesWithRollouts = %v, %v", keys, err)
	}
	recent, err := s.RecentRollouts(ctx, RunsQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rr := range recent {
		ids = append(ids, rr.ID+"/"+rr.Rollout)
	}
	if want := []string{w1.ID + "/active", r3.ID + "/", r2.ID + "/active", r1.ID + "/done"}; !slices.Equal(ids, want) {
		t.Errorf("RecentRollouts = %v; want %v", ids, want)
	}
	if none, err := s.GetRollout(ctx, r3.ID); err != nil || none.Rollout != "" || len(none.Stages) != 0 {
		t.Errorf("GetRollout(r3) = %+v, %v; want the run without rollout", none, err)
	}

	// The pipeline goes on: the next rollout is third in order and has its
	// run's id.
	r4 := release("a4", 10, "1.2.0", "v1.1.0")
	id, order, err := s.StartRollout(ctx, r4.ID, key, r4.Release(), nil, nil, []string{"qa", "prod"})
	if err != nil || id != r4.ID || order != 3 {
		t.Errorf("StartRollout after the migration = %s order %d, %v; want %s order 3", id, order, err, r4.ID)
	}
}

// Migration 11 goes back down without losing what the old schema can hold,
// and refuses to when a run has a second rollout, which it cannot.
func TestMigrationRolloutsDown(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, 11)
	r, _, err := oldSchema{t: t, s: s}.createRun(ctx, Run{Repo: "acme/api", SHA: "a1", Installation: 1, Branch: "main", Source: "push", PR: 7})
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Version, r.Tag = RunReleased, "1.0.0", "v1.0.0"
	if err := s.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartRollout(ctx, r.ID, "acme/api:api", r.Release(), []byte("c"), []string{"l"}, []string{"qa", "prod"}); err != nil {
		t.Fatal(err)
	}
	// Schema 11's executions (today's code writes later columns).
	if _, err := s.w.ExecContext(ctx, `INSERT INTO executions (id, rollout_id, idx, stage, attempt, version, tag, phase, token_hash, created_at)
		VALUES ('x1', ?, 0, 'qa', 1, '1.0.0', 'v1.0.0', 'deploying', 'h1', 1)`, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE stage_states SET state = 'active' WHERE rollout_id = ? AND idx = 0`, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDeployment(ctx, Deployment{ExecutionID: "x1", Repo: "acme/api", Environment: "qa", ID: 5}); err != nil {
		t.Fatal(err)
	}
	p, err := s.migrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var key, state, labels string
	var order int64
	var stages, execs, deps int
	if err := s.w.QueryRowContext(ctx, `SELECT pipeline_key, rollout_order, rollout, labels,
		(SELECT count(*) FROM stage_states WHERE run_id = runs.id), (SELECT count(*) FROM executions WHERE run_id = runs.id),
		(SELECT count(*) FROM deployments) FROM runs WHERE id = ?`, r.ID).Scan(&key, &order, &state, &labels, &stages, &execs, &deps); err != nil {
		t.Fatal(err)
	}
	if key != "acme/api:api" || order != 1 || state != RolloutActive || labels != `["l"]` || stages != 2 || execs != 1 || deps != 1 {
		t.Errorf("after down: key %q order %d rollout %q labels %s, %d stages, %d executions, %d deployments; want the rollout back on its run",
			key, order, state, labels, stages, execs, deps)
	}
	checkSchema(t, s)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if rr, err := s.GetRollout(ctx, r.ID); err != nil || rr.Rollout != RolloutActive || len(rr.Stages) != 2 || rr.Stages[0].State != schedule.Active {
		t.Errorf("after down and up: %+v, %v", rr, err)
	}

	if _, _, err := s.StartRollout(ctx, r.ID, "acme/api:web", Release{Version: "2.0.0", Tag: "web/v2.0.0"}, nil, nil, []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 10); err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
		t.Fatalf("down with a second pipeline's rollout = %v; want it refused", err)
	}
	// Each migration goes down in its own transaction: 12 went, 11 did not.
	if v, err := p.GetDBVersion(ctx); err != nil || v != 11 {
		t.Errorf("version after a refused down = %d, %v; want 11, nothing of 11 changed", v, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if rr, err := s.LoadRollout(ctx, "acme/api:web"); err != nil || len(rr) != 1 {
		t.Errorf("web rollout after a refused down = %d, %v; want it kept", len(rr), err)
	}
}

// openAt opens a fresh database migrated up to version.
func openAt(t testing.TB, version int64) *SQLite {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "shipbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := s.migrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSchema fails unless every foreign key holds and the file is whole.
func checkSchema(t testing.TB, s *SQLite) {
	t.Helper()
	rows, err := s.w.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid, fk any
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			t.Fatal(err)
		}
		t.Errorf("foreign key of %s row %v to %s does not hold", table, rowid, parent)
	}
	if err := checkIntegrity(s.w.DB, s.path); err != nil {
		t.Error(err)
	}
}

// BenchmarkMigrationRollouts measures migration 11 on a database of
// SHIPBOT_BENCH_RUNS runs (default 10,000), each released into one of ten
// pipelines with three stages, three executions and a deployment.
func BenchmarkMigrationRollouts(b *testing.B) {
	ctx := context.Background()
	n := 10000
	if v := os.Getenv("SHIPBOT_BENCH_RUNS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	template := filepath.Join(dir, "template.db")
	s, err := OpenSQLite(template)
	if err != nil {
		b.Fatal(err)
	}
	p, err := s.migrator()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 10); err != nil {
		b.Fatal(err)
	}
	err = s.tx(ctx, func(t sqlTx) error {
		for i := range n {
			id := fmt.Sprintf("%032x", i)
			key := fmt.Sprintf("acme/r%d:api", i%10)
			if _, err := t.ExecContext(ctx, `INSERT INTO runs (id, repo, sha, installation, branch, pr, source, seq, state, pipeline,
				version, tag, created_at, updated_at, pipeline_key, rollout_order, rollout, config, labels)
				VALUES (?, ?, ?, 1, 'main', ?, 'push', ?, 'released', 'api', ?, ?, 1, 1, ?, ?, ?, ?, '[]')`,
				id, fmt.Sprintf("acme/r%d", i%10), id, i, i+1, fmt.Sprintf("1.%d.0", i), fmt.Sprintf("v1.%d.0", i),
				key, i/10+1, map[bool]string{true: "active", false: "done"}[i >= n-10], strings.Repeat("x", 800)); err != nil {
				return err
			}
			for idx, stage := range []string{"qa", "staging", "prod"} {
				if _, err := t.ExecContext(ctx, `INSERT INTO stage_states (run_id, idx, stage, state, updated_at) VALUES (?, ?, ?, 'passed', 1)`,
					id, idx, stage); err != nil {
					return err
				}
				ex := fmt.Sprintf("%s-%d", id, idx)
				if _, err := t.ExecContext(ctx, `INSERT INTO executions (id, run_id, idx, stage, attempt, version, tag, phase, outcome, token_hash, created_at)
					VALUES (?, ?, ?, ?, 1, '1.0.0', 'v1.0.0', 'finished', 'succeeded', ?, 1)`, ex, id, idx, stage, ex); err != nil {
					return err
				}
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO deployments (execution_id, repo, environment, deployment_id, state, updated_at)
				VALUES (?, 'acme/api', 'prod', ?, 'success', 1)`, id+"-2", i+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(template)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		s, err := OpenSQLite(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
