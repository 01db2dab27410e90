package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/store"
)

// --- Deployments ------------------------------------------------------------

var deploymentsCases = []testCase{
	{"Deployment_intent_then_id", deploymentIntent},
	{"ActiveDeployment_newest_success_but_own", activeDeployment},
	{"APICalls_add", apiCalls},
	{"AddAPICalls_concurrent_sum", apiCallsConcurrent},
}

func (e *env) deployment(executionID string) (store.Deployment, bool) {
	e.Helper()
	d, ok, err := e.s.Deployment(e.ctx, executionID)
	e.must(err)
	return d, ok
}

func deploymentIntent(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	if d, ok := e.deployment(x.ID); ok {
		e.Fatalf("Deployment of an execution without one = %+v", d)
	}
	// The intent first: a crash between GitHub creating the deployment
	// and this row learning its id is then detected.
	intent := store.Deployment{ExecutionID: x.ID, Repo: repo, Environment: "qa"}
	e.must(e.s.SaveDeployment(e.ctx, intent))
	if d, ok := e.deployment(x.ID); !ok || d != intent {
		e.Errorf("Deployment after the intent = %+v, %v; want %+v", d, ok, intent)
	}
	created := intent
	created.ID, created.State = 99, "in_progress"
	e.must(e.s.SaveDeployment(e.ctx, created))
	if d, ok := e.deployment(x.ID); !ok || d != created {
		e.Errorf("Deployment after its creation = %+v, %v; want %+v", d, ok, created)
	}
	created.State = "success"
	e.must(e.s.SaveDeployment(e.ctx, created))
	if d, _ := e.deployment(x.ID); d != created {
		e.Errorf("Deployment after a status = %+v; want %+v", d, created)
	}
}

func activeDeployment(e *env) {
	r1 := e.inRollout("a1", "1.0.0", "qa", "prod")
	r2 := e.inRollout("a2", "1.1.0", "qa", "prod")
	r3 := e.inRollout("a3", "1.2.0", "qa", "prod")
	w := e.released("acme/web", "w", 0, "9.0.0")
	e.start(w, "acme/web:web", "qa")
	q1, q2, q3 := e.enter(r1, 0, 1), e.enter(r2, 0, 1), e.enter(r3, 0, 1)
	p1 := e.enter(r1, 1, 1)
	wq := e.enter(e.rollout(w.ID), 0, 1)
	save := func(x store.Execution, repo, env string, id int64, state string) store.Deployment {
		e.Helper()
		d := store.Deployment{ExecutionID: x.ID, Repo: repo, Environment: env, ID: id, State: state}
		e.must(e.s.SaveDeployment(e.ctx, d))
		tick()
		return d
	}
	d1 := save(q1, repo, "qa", 1, "success")
	d2 := save(q2, repo, "qa", 2, "success")
	save(q3, repo, "qa", 3, "in_progress")
	save(p1, repo, "prod", 4, "success")
	save(wq, "acme/web", "qa", 5, "success")

	active := func(env, except string) string {
		e.Helper()
		d, ok, err := e.s.ActiveDeployment(e.ctx, repo, env, except)
		e.must(err)
		if !ok {
			return "none"
		}
		return fmt.Sprint(d.ID)
	}
	if got := active("qa", q3.ID); got != "2" {
		e.Errorf("ActiveDeployment(qa) = %s; want 2, the newest successful one", got)
	}
	if got := active("qa", q2.ID); got != "1" {
		e.Errorf("ActiveDeployment(qa, except 2's execution) = %s; want 1", got)
	}
	d2.State = "inactive" // retired
	e.must(e.s.SaveDeployment(e.ctx, d2))
	if got := active("qa", q3.ID); got != "1" {
		e.Errorf("ActiveDeployment(qa) after 2 was retired = %s; want 1", got)
	}
	if got := active("prod", p1.ID); got != "none" {
		e.Errorf("ActiveDeployment(prod, except its only one) = %s; want none", got)
	}
	if got := active("staging", ""); got != "none" {
		e.Errorf("ActiveDeployment(staging) = %s; want none", got)
	}
	if d, ok := e.deployment(q1.ID); !ok || d != d1 {
		e.Errorf("Deployment(q1) = %+v; want %+v", d, d1)
	}
}

func apiCalls(e *env) {
	r, other := e.newRun(repo, "a1", 0), e.newRun(repo, "a2", 0)
	calls := func(id string) int {
		e.Helper()
		n, err := e.s.APICalls(e.ctx, id)
		e.must(err)
		return n
	}
	if n := calls(r.ID); n != 0 {
		e.Errorf("APICalls of a new run = %d", n)
	}
	e.must(e.s.AddAPICalls(e.ctx, r.ID, 3))
	e.must(e.s.AddAPICalls(e.ctx, r.ID, 0))
	e.must(e.s.AddAPICalls(e.ctx, r.ID, 2))
	if n := calls(r.ID); n != 5 {
		e.Errorf("APICalls = %d; want 5", n)
	}
	if n := calls(other.ID); n != 0 {
		e.Errorf("APICalls of another run = %d; want 0", n)
	}
}

func apiCallsConcurrent(e *env) {
	r := e.newRun(repo, "a1", 0)
	const n = 20
	parallel(n, func(int) {
		if err := e.s.AddAPICalls(e.ctx, r.ID, 1); err != nil {
			e.Error(err)
		}
	})
	if got, err := e.s.APICalls(e.ctx, r.ID); err != nil || got != n {
		e.Errorf("APICalls after %d concurrent additions = %d, %v; want %d", n, got, err, n)
	}
}

// --- Dashboards ------------------------------------------------------------

var dashboardsCases = []testCase{
	{"ListPipelines_rollouts_and_freezes", listPipelines},
	{"LiveExecutions_unfinished_oldest_first", liveExecutions},
	{"RecentRollouts_newest_first", recentRollouts},
	{"FailedDeliveries_latest_failure_first", failedDeliveries},
	{"History_versions_each_stage_ran", history},
}

// History lists what each stage ran, newest first: a rollback is the
// version it restored (from the rollout that released it), failures are
// not there, and a wave's targets are one entry.
func history(e *env) {
	r1 := e.released(repo, "a1", 11, "1.0.0")
	e.start(r1, pk, "qa", "prod")
	rr1 := e.rollout(r1.ID)
	e.deployed(rr1, 0)
	tick()
	r2 := e.released(repo, "a2", 12, "1.1.0")
	e.start(r2, pk, "qa", "prod")
	rr2 := e.rollout(r2.ID)
	x := e.deployed(rr2, 0)
	tick()
	rb := rollbackOf(x, "1.0.0")
	e.must(e.s.Reenter(e.ctx, passed, []store.Execution{rb}))
	rb.Outcome = succeeded
	e.must(e.s.FinishExecution(e.ctx, rb, rolledBack))
	// prod: a wave of two targets, then a failure.
	w := []store.Execution{newExecution(rr1, 1, 1), newExecution(rr1, 1, 1)}
	w[0].Target, w[1].Target = "eu", "us"
	e.must(e.s.EnterStage(e.ctx, w...))
	for _, t := range w {
		t.Outcome = succeeded
		e.must(e.s.FinishExecution(e.ctx, t, passed))
	}
	tick()
	f := e.enter(rr2, 1, 1)
	e.finish(f, failure, failed)

	h, err := e.s.History(e.ctx, pk, []string{"qa", "prod"}, 10)
	e.must(err)
	type entry struct {
		Tag, From, Rollout string
		PR                 int
		Rollback           bool
	}
	got := map[string][]entry{}
	for stage, ds := range h {
		for _, d := range ds {
			if d.Repo != repo || !recent(d.At) {
				e.Errorf("%s %s: repo %q at %v", stage, d.Tag, d.Repo, d.At)
			}
			got[stage] = append(got[stage], entry{d.Tag, d.From, d.RolloutID, d.PR, d.Rollback})
		}
	}
	want := map[string][]entry{
		"qa": {
			{"v1.0.0", "v1.1.0", r1.ID, 11, true},
			{"v1.1.0", "", r2.ID, 12, false},
			{"v1.0.0", "", r1.ID, 11, false},
		},
		"prod": {{"v1.0.0", "", r1.ID, 11, false}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		e.Errorf("History (-want +got):\n%s", diff)
	}
	if h, err := e.s.History(e.ctx, pk, []string{"qa", "prod"}, 1); err != nil || len(h["qa"]) != 1 || h["qa"][0].Tag != "v1.0.0" {
		e.Errorf("History with 1 per stage = %+v, %v; want the live one only", h["qa"], err)
	}
}

func listPipelines(e *env) {
	if got, err := e.s.ListPipelines(e.ctx); err != nil || len(got) != 0 {
		e.Fatalf("ListPipelines of an empty store = %+v, %v", got, err)
	}
	e.inRollout("a1", "1.0.0", "qa")
	newest := e.inRollout("a2", "1.1.0", "qa", "prod")
	e.must(e.s.FinishRollout(e.ctx, newest.ID)) // a finished rollout is still history
	w := e.released("acme/web", "w1", 0, "2.0.0")
	e.start(w, "acme/web:web", "prod")
	e.newRun("acme/other", "o1", 0) // no rollout: no pipeline
	e.must(e.s.Freeze(e.ctx, "acme/ops:ops", "incident 42", "alice"))
	e.must(e.s.Freeze(e.ctx, pk, "", "bob"))

	got, err := e.s.ListPipelines(e.ctx)
	e.must(err)
	var keys []string
	for _, p := range got {
		keys = append(keys, p.Key)
	}
	if fmt.Sprint(keys) != "[acme/api:api acme/ops:ops acme/web:web]" {
		e.Fatalf("ListPipelines = %v; want [acme/api:api acme/ops:ops acme/web:web], by key", keys)
	}
	api, ops, web := got[0], got[1], got[2]
	if fmt.Sprint(api.Stages) != "[qa prod]" || !sameTime(api.LastRunAt, newest.CreatedAt) {
		e.Errorf("acme/api:api = stages %v, last run %v; want the newest run's [qa prod], created %v", api.Stages, api.LastRunAt, newest.CreatedAt)
	}
	if f := api.Freeze; f == nil || f.Actor != "bob" || f.Reason != "" || !recent(f.At) {
		e.Errorf("freeze of acme/api:api = %+v; want bob's, now", f)
	}
	if f := ops.Freeze; f == nil || f.Reason != "incident 42" || f.Actor != "alice" || !ops.LastRunAt.IsZero() || len(ops.Stages) != 0 {
		e.Errorf("acme/ops:ops = %+v (freeze %+v); want frozen by alice for incident 42, no runs", ops, f)
	}
	if web.Freeze != nil || fmt.Sprint(web.Stages) != "[prod]" {
		e.Errorf("acme/web:web = %+v; want not frozen, stages [prod]", web)
	}
}

func liveExecutions(e *env) {
	r := e.released(repo, "a1", 7, "1.0.0")
	e.start(r, pk, "qa", "prod")
	rr := e.rollout(r.ID)
	w := e.released("acme/web", "w1", 3, "2.0.0")
	e.start(w, "acme/web:web", "qa")

	x := e.enter(rr, 0, 1)
	tick()
	y := e.enter(e.rollout(w.ID), 0, 1)
	tick()
	e.finish(e.enter(rr, 1, 1), succeeded, passed)

	got, err := e.s.LiveExecutions(e.ctx)
	e.must(err)
	if len(got) != 2 || got[0].ID != x.ID || got[1].ID != y.ID {
		e.Fatalf("LiveExecutions = %+v; want x then y, oldest first, finished ones left out", got)
	}
	if got[0].PipelineKey != pk || got[0].Repo != repo || got[0].PR != 7 || got[0].Version != "1.0.0" || got[0].Phase != triggering {
		e.Errorf("live execution %+v; want its run's pipeline, repository and PR", got[0])
	}
	if got[1].PipelineKey != "acme/web:web" || got[1].Repo != "acme/web" || got[1].PR != 3 {
		e.Errorf("live execution %+v; want acme/web's", got[1])
	}
}

func recentRollouts(e *env) {
	a := e.inRollout("a1", "1.0.0", "qa")
	b := e.newRun("acme/web", "b1", 0) // never released
	c := e.inRollout("c1", "1.1.0", "qa", "prod")
	e.enter(c, 0, 1)

	got, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 2})
	e.must(err)
	if len(got) != 2 || got[0].ID != c.ID || got[1].ID != b.ID {
		e.Fatalf("RecentRollouts(2) = %v; want [c b], the newest first", runIDs(got))
	}
	if got[0].Rollout != store.RolloutActive || fmt.Sprint(got[0].Stages[0].State, got[0].Stages[1].State) != "active pending" {
		e.Errorf("c = rollout %q stages %+v; want active, qa active", got[0].Rollout, got[0].Stages)
	}
	if got[1].Rollout != "" || len(got[1].Stages) != 0 || got[1].Repo != "acme/web" {
		e.Errorf("a run without rollout = %+v; want it listed without rollout or stages", got[1])
	}
	all, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 10})
	e.must(err)
	if fmt.Sprint(runIDs(all)) != fmt.Sprint([]string{c.ID, b.ID, a.ID}) {
		e.Errorf("RecentRollouts(10) = %v; want [c b a]", runIDs(all))
	}
	older, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 10, Before: got[1].Seq})
	e.must(err)
	if fmt.Sprint(runIDs(older)) != fmt.Sprint([]string{a.ID}) {
		e.Errorf("RecentRollouts before b = %v; want [a], the page after", runIDs(older))
	}
	web, err := e.s.RecentRollouts(e.ctx, store.RunsQuery{Limit: 10, Repo: "acme/web"})
	e.must(err)
	if len(web) != 1 || web[0].Repo != "acme/web" {
		e.Errorf("RecentRollouts of acme/web = %v; want b only", runIDs(web))
	}
}

func failedDeliveries(e *env) {
	for i, ev := range []string{"pull_request", "push", "issue_comment", "push"} {
		e.saveDelivery(store.Delivery{ID: fmt.Sprint("d", i), Event: ev, Action: "closed", Repo: repo, Payload: []byte(`{}`),
			Status: store.StatusPending, ReceivedAt: base})
	}
	e.claim("w", longTTL, 10, store.EventFilter{})
	e.must(e.s.FinishDelivery(e.ctx, "d0", store.StatusFailed, "GET /repos/acme/api/pulls/7: connection refused", time.Time{}))
	e.must(e.s.FinishDelivery(e.ctx, "d1", store.StatusDone, "", time.Time{}))
	tick()
	e.must(e.s.FinishDelivery(e.ctx, "d3", store.StatusFailed, "no handler", time.Time{}))
	e.must(e.s.FinishDelivery(e.ctx, "d2", store.StatusPending, "try again", time.Now().Add(time.Hour)))

	got, err := e.s.FailedDeliveries(e.ctx, 10)
	e.must(err)
	if len(got) != 2 || got[0].ID != "d3" || got[1].ID != "d0" {
		e.Fatalf("FailedDeliveries = %+v; want d3 then d0 (latest failure first), no done or pending ones", got)
	}
	d := got[1]
	if d.Event != "pull_request" || d.Action != "closed" || d.Repo != repo || d.Attempts != 1 ||
		d.LastError != "GET /repos/acme/api/pulls/7: connection refused" || !sameTime(d.ReceivedAt, base) || !recent(d.FailedAt) {
		e.Errorf("failed delivery %+v; want its event, repository, attempts, last error and times", d)
	}
	if got, err := e.s.FailedDeliveries(e.ctx, 1); err != nil || len(got) != 1 || got[0].ID != "d3" {
		e.Errorf("FailedDeliveries(1) = %+v, %v; want only d3", got, err)
	}
}

// --- Retention and health -----------------------------------------------

var retentionCases = []testCase{{"PruneDeliveryPayloads", pruneDeliveryPayloads}}

func pruneDeliveryPayloads(e *env) {
	p, ok := e.s.(store.PayloadPruner)
	if !ok {
		e.Skip("the store does not implement store.PayloadPruner")
	}
	now := time.Now()
	old, recentAt := now.Add(-20*24*time.Hour), now.Add(-24*time.Hour)
	payload := []byte(`{"ref":"refs/heads/main"}`)
	for _, d := range []store.Delivery{
		{ID: "old-done-1", Status: store.StatusDone, ReceivedAt: old},
		{ID: "old-done-2", Status: store.StatusDone, ReceivedAt: old.Add(time.Minute)},
		{ID: "old-done-3", Status: store.StatusDone, ReceivedAt: old.Add(2 * time.Minute)},
		{ID: "old-failed", Status: store.StatusFailed, ReceivedAt: old},
		{ID: "old-ignored", Status: store.StatusIgnored, ReceivedAt: old},
		{ID: "old-pending", Status: store.StatusPending, ReceivedAt: old}, // not processed yet: kept
		{ID: "recent-done", Status: store.StatusDone, ReceivedAt: recentAt},
	} {
		d.Event, d.Repo, d.Payload = "push", repo, payload
		e.saveDelivery(d)
	}
	cut := now.Add(-14 * 24 * time.Hour)
	n, err := p.PruneDeliveryPayloads(e.ctx, cut, 2) // batches of 2: several rounds
	e.must(err)
	if n != 5 {
		e.Errorf("pruned %d payloads; want 5", n)
	}
	for id, kept := range map[string]bool{
		"old-done-1": false, "old-done-2": false, "old-done-3": false, "old-failed": false, "old-ignored": false,
		"old-pending": true, "recent-done": true,
	} {
		d, err := e.s.GetDelivery(e.ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			e.Errorf("%s: row deleted; want it kept", id)
			continue
		}
		e.must(err)
		if got := len(d.Payload) > 0; got != kept {
			e.Errorf("%s: payload kept = %v; want %v", id, got, kept)
		}
		if d.Repo != repo || d.Event != "push" || d.ID != id {
			e.Errorf("%s: row now %+v; want its other columns untouched", id, d)
		}
	}
	if n, err := p.PruneDeliveryPayloads(e.ctx, cut, 0); err != nil || n != 0 {
		e.Errorf("second pruning = %d, %v; want nothing left to prune", n, err)
	}
	if n := e.depth(); n != 1 {
		e.Errorf("InboxDepth after pruning = %d; want the pending one", n)
	}
}

var healthCases = []testCase{{"Ready", ready}}

func ready(e *env) {
	if err := e.s.Ready(e.ctx); err != nil {
		e.Errorf("Ready on a fresh migrated store = %v", err)
	}
	e.newRun(repo, "a1", 0) // and after writes
	if err := e.s.Ready(e.ctx); err != nil {
		e.Errorf("Ready = %v", err)
	}
}
