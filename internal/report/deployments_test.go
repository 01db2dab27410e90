package report_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/store"
)

// deploymentRig is a released run with executions the test moves by hand.
type deploymentRig struct {
	*rig
	deps *report.Deployments
	run  store.RolloutRun
}

func newDeploymentRig(t *testing.T, stage string) *deploymentRig {
	r := newRig(t)
	r.gh.AddTag("acme/api", "v1.0.0", r.sha)
	r.gh.AddTag("acme/api", "v1.1.0", r.sha)
	ctx := context.Background()
	created, _, err := r.store.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: r.sha, Installation: 1, Branch: "main", Source: "push"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.store.StartRollout(ctx, created.ID, "acme/api:api", created.Release(), nil, nil, []string{stage}); err != nil {
		t.Fatal(err)
	}
	// Executions the deployments hang off, as the engine records them.
	for i, id := range []string{"ex-1", "ex-2"} {
		if err := r.store.EnterStage(ctx, store.Execution{ID: id, RolloutID: created.ID, StageName: stage, Attempt: i + 1,
			Phase: store.PhaseTriggering, TokenHash: id}); err != nil {
			t.Fatal(err)
		}
	}
	run := store.RolloutRun{Run: store.Run{ID: "run-1", Repo: "acme/api", SHA: r.sha, Tag: "v1.0.0"}, ID: "run-1", Tag: "v1.0.0"}
	return &deploymentRig{rig: r, deps: &report.Deployments{Store: r.store, PublicURL: "https://shipbot.example"}, run: run}
}

func execution(id, stage, tag string, phase rollout.Phase, outcome rollout.Outcome) store.Execution {
	return store.Execution{ID: id, RolloutID: "run-1", StageName: stage, Attempt: 1, Version: tag[1:], Tag: tag, Phase: phase, Outcome: outcome}
}

func (d *deploymentRig) sync(t *testing.T, execs ...store.Execution) {
	t.Helper()
	if err := d.deps.Sync(context.Background(), d.client, d.run, execs, ""); err != nil {
		t.Fatal(err)
	}
}

func states(d githubtest.Deployment) []string {
	var out []string
	for _, s := range d.Statuses {
		out = append(out, s.State)
	}
	return out
}

// A deployment is created when its execution starts (no status: its
// creation says it started) and gets its final status when it ends: two
// writes per stage, under GitHub's write limits.
func TestDeploymentFollowsItsExecution(t *testing.T) {
	d := newDeploymentRig(t, "qa")
	d.sync(t, execution("ex-1", "qa", "v1.0.0", store.PhaseDeploying, ""))
	if deps := d.gh.Deployments("acme/api"); len(deps) != 1 || len(deps[0].Statuses) != 0 {
		t.Fatalf("after the start: deployments %+v; want one, created, without a status", deps)
	}
	d.sync(t, execution("ex-1", "qa", "v1.0.0", store.PhaseDeploying, "")) // nothing new: no call
	d.sync(t, execution("ex-1", "qa", "v1.0.0", store.PhaseBaking, ""))    // nor here
	d.sync(t, execution("ex-1", "qa", "v1.0.0", store.PhaseFinished, "succeeded"))
	deps := d.gh.Deployments("acme/api")
	if len(deps) != 1 {
		t.Fatalf("%d deployments; want 1", len(deps))
	}
	dep := deps[0]
	if dep.Ref != "v1.0.0" || dep.Environment != "qa" || dep.AutoMerge || dep.RequiredContexts == nil || len(dep.RequiredContexts) != 0 {
		t.Errorf("deployment %+v; want ref v1.0.0 to qa, auto_merge false, required_contexts []", dep)
	}
	if got := states(dep); len(got) != 1 || got[0] != "success" {
		t.Fatalf("statuses %v; want success", got)
	}
	if dep.Statuses[0].LogURL != "https://shipbot.example/runs/run-1" {
		t.Errorf("log_url %q; want the run's dashboard page", dep.Statuses[0].LogURL)
	}
	if n := d.gh.Count("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"); n != 1 {
		t.Errorf("%d status posts; want 1", n)
	}
}

// A wave target deploys to its own environment, <stage>/<target>, and in
// the pipelines: form <pipeline>/<stage>/<target>; its payload names it.
func TestDeploymentOfAWaveTarget(t *testing.T) {
	d := newDeploymentRig(t, "prod")
	ex := execution("ex-1", "prod", "v1.0.0", store.PhaseDeploying, "")
	ex.Target = "prod-eu"
	d.sync(t, ex)
	ex2 := execution("ex-2", "prod", "v1.0.0", store.PhaseDeploying, "")
	ex2.Target = "prod-us"
	if err := d.deps.Sync(context.Background(), d.client, d.run, []store.Execution{ex2}, "api/"); err != nil {
		t.Fatal(err)
	}
	deps := d.gh.Deployments("acme/api")
	if len(deps) != 2 || deps[0].Environment != "prod/prod-eu" || deps[1].Environment != "api/prod/prod-us" {
		t.Fatalf("deployments %+v; want environments prod/prod-eu and api/prod/prod-us", deps)
	}
	if !strings.Contains(string(deps[0].Payload), `"target":"prod-eu"`) {
		t.Errorf("payload %s; want it to name target prod-eu", deps[0].Payload)
	}
}

// A failed execution's deployment fails, saying why; one that finished
// before the bot wrote anything is created and concluded at once.
func TestDeploymentOfAFailedExecution(t *testing.T) {
	d := newDeploymentRig(t, "qa")
	ex := execution("ex-1", "qa", "v1.0.0", store.PhaseFinished, "failed")
	ex.Reason = "Spinnaker execution TERMINAL"
	d.sync(t, ex)
	dep := d.gh.Deployments("acme/api")[0]
	if got := states(dep); len(got) != 1 || got[0] != "failure" || dep.Statuses[0].Description != "v1.0.0 deploy failed: Spinnaker execution TERMINAL" {
		t.Errorf("statuses %v (%q); want one failure saying why", got, dep.Statuses[0].Description)
	}
}

// A newer success retires the older deployment of the environment: GitHub
// does it itself except in production, where the bot must; a retired
// deployment is never made current again by a later write of its run.
func TestNewerDeploymentRetiresTheOlder(t *testing.T) {
	for _, env := range []string{"qa", "production"} {
		t.Run(env, func(t *testing.T) {
			d := newDeploymentRig(t, env)
			old := execution("ex-1", env, "v1.0.0", store.PhaseFinished, "succeeded")
			d.sync(t, old)
			d.run.Tag = "v1.1.0"
			d.sync(t, execution("ex-2", env, "v1.1.0", store.PhaseFinished, "succeeded"))
			d.run.Tag = "v1.0.0"
			d.sync(t, old) // the old run's reporter writes again
			var older githubtest.Deployment
			for _, dep := range d.gh.Deployments("acme/api") {
				if dep.Ref == "v1.0.0" {
					older = dep
				}
			}
			if got := states(older); len(got) != 2 || got[1] != "inactive" {
				t.Errorf("older deployment's statuses %v; want success, inactive", got)
			}
		})
	}
}

// A crash after GitHub created a deployment and before its id was saved
// leaves an intent; the deployment is then found by its execution, not
// created again.
func TestDeploymentAdoptedAfterACrash(t *testing.T) {
	d := newDeploymentRig(t, "qa")
	ex := execution("ex-1", "qa", "v1.0.0", store.PhaseDeploying, "")
	d.sync(t, ex)
	dep, _, err := d.store.Deployment(context.Background(), "ex-1")
	if err != nil {
		t.Fatal(err)
	}
	dep.ID, dep.State = 0, "" // what a crash between create and save leaves
	if err := d.store.SaveDeployment(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	ex.Phase, ex.Outcome, ex.FinishedAt = store.PhaseFinished, "succeeded", time.Now()
	d.sync(t, ex)
	if deps := d.gh.Deployments("acme/api"); len(deps) != 1 || states(deps[0])[len(deps[0].Statuses)-1] != "success" {
		t.Fatalf("deployments %+v; want the one, now successful", deps)
	}
}

// GitHub takes 140 characters of description: a long reason in Korean is
// cut between characters, never inside one (Go would send half of one as
// U+FFFD), and the cut is marked.
func TestDeploymentDescriptionCutsWholeCharacters(t *testing.T) {
	for extra := range 3 { // the limit falls on each byte of a character
		d := newDeploymentRig(t, "qa")
		ex := execution("ex-1", "qa", "v1.0.0", store.PhaseFinished, "failed")
		ex.Reason = strings.Repeat("x", extra) + strings.Repeat("배포 대상이 응답하지 않습니다. ", 10)
		d.sync(t, ex)
		got := d.gh.Deployments("acme/api")[0].Statuses[0].Description
		if !utf8.ValidString(got) || strings.ContainsRune(got, utf8.RuneError) || len(got) > 140 {
			t.Errorf("description %q (%d bytes): want valid UTF-8 of at most 140 bytes", got, len(got))
		}
		if !strings.HasPrefix(got, "v1.0.0 deploy failed: "+strings.Repeat("x", extra)+"배포 대상이") || !strings.HasSuffix(got, "…") {
			t.Errorf("description %q: want the start of the reason, cut with …", got)
		}
	}
}
