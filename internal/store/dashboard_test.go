package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

func TestDashboardQueries(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)

	release := func(sha, version string, stages ...string) store.Run {
		t.Helper()
		r, _, err := s.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: sha, Installation: 1, Branch: "main", Source: "push", PR: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.State, r.Version, r.Tag = store.RunReleased, version, "v"+version
		if err := s.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.StartRollout(ctx, r.ID, "acme/api:api", r.Release(), []byte("version: 1\n"), nil, stages); err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := release("a1", "1.0.0", "qa")
	newer := release("b2", "1.1.0", "qa", "prod")
	if _, _, err := s.CreateRun(ctx, store.Run{Repo: "acme/web", SHA: "c3", Installation: 1, Branch: "main", Source: "push"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Freeze(ctx, "acme/ops:ops", "incident 42", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Freeze(ctx, "acme/api:api", "", "bob"); err != nil {
		t.Fatal(err)
	}
	live := store.Execution{ID: "e1", RolloutID: newer.ID, Stage: 0, StageName: "qa", Attempt: 1, Version: "1.1.0", Tag: "v1.1.0",
		Phase: store.PhaseDeploying, TokenHash: "h1", Deadline: time.Now().Add(time.Hour)}
	if err := s.EnterStage(ctx, live); err != nil {
		t.Fatal(err)
	}
	done := store.Execution{ID: "e0", RolloutID: old.ID, Stage: 0, StageName: "qa", Attempt: 1, Version: "1.0.0", Tag: "v1.0.0",
		Phase: store.PhaseDeploying, TokenHash: "h0"}
	if err := s.EnterStage(ctx, done); err != nil {
		t.Fatal(err)
	}
	done.Outcome = "succeeded"
	if err := s.FinishExecution(ctx, done, schedule.Passed); err != nil {
		t.Fatal(err)
	}

	pipes, err := s.ListPipelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipes) != 2 || pipes[0].Key != "acme/api:api" || pipes[1].Key != "acme/ops:ops" {
		t.Fatalf("pipelines = %+v; want acme/api:api and the frozen acme/ops:ops", pipes)
	}
	if got := pipes[0].Stages; len(got) != 2 || got[0] != "qa" || got[1] != "prod" {
		t.Errorf("stages of acme/api:api = %v; want the newest run's [qa prod]", got)
	}
	if f := pipes[0].Freeze; f == nil || f.Actor != "bob" {
		t.Errorf("freeze of acme/api:api = %+v; want bob's", f)
	}
	if f := pipes[1].Freeze; f == nil || f.Reason != "incident 42" || !pipes[1].LastRunAt.IsZero() {
		t.Errorf("acme/ops:ops = %+v (freeze %+v); want frozen for incident 42, no runs", pipes[1], f)
	}

	les, err := s.LiveExecutions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(les) != 1 || les[0].ID != "e1" || les[0].PipelineKey != "acme/api:api" || les[0].Repo != "acme/api" || les[0].PR != 1 ||
		les[0].Phase != store.PhaseDeploying || les[0].Version != "1.1.0" {
		t.Fatalf("live executions = %+v; want e1 only, with its run's pipeline", les)
	}

	runs, err := s.RecentRollouts(ctx, store.RunsQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Repo != "acme/web" || runs[1].ID != newer.ID {
		t.Fatalf("recent runs = %d, first %+v; want acme/web then v1.1.0", len(runs), runs)
	}
	if runs[0].Rollout != "" || len(runs[0].Stages) != 0 {
		t.Errorf("a run without rollout = %q with %d stages", runs[0].Rollout, len(runs[0].Stages))
	}
	if st := runs[1].Stages; len(st) != 2 || st[0].State != schedule.Active || runs[1].Rollout != store.RolloutActive {
		t.Errorf("v1.1.0 = rollout %q stages %+v; want active, qa active", runs[1].Rollout, st)
	}
}
