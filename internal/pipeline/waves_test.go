package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/alarm"
	"github.com/shipbot/shipbot/internal/alarm/alarmtest"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

// waveStages deploy qa, then prod to two regions at once.
const waveStages = `  - name: qa
    target: spinnaker-qa
  - name: prod
    targets: [prod-eu, prod-us]
    rollback: true
`

// waveTargets adds the two regions' Echo sources to the default targets.
func waveTargets(spinURL string) string {
	return defaultTargets(spinURL) + fmt.Sprintf(`  prod-eu:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod-eu
    repos: [acme/api]
  prod-us:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod-us
    repos: [acme/api]
`, spinURL)
}

func waveConstraints() map[string]map[string]string {
	c := defaultConstraints()
	c["api-prod-eu"] = map[string]string{"target": "^prod-eu$", "stage": "^prod$"}
	c["api-prod-us"] = map[string]string{"target": "^prod-us$", "stage": "^prod$"}
	return c
}

// A wave triggers every target at once, each its own execution (payload
// target, Idempotency-Key with the target, own callback URL, own
// Deployment <stage>/<target>); the stage passes when both passed, and the
// PR shows one stage with its targets.
func TestWaveOfTwoTargetsPasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(waveStages), targets: waveTargets, constraints: waveConstraints(),
		decide: always("succeeded")})
	m := e.merge("feat: everywhere")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.Passed {
		t.Fatalf("prod ended %s; want passed", got)
	}
	xs := e.executionsAt(rr.ID, "prod")
	if len(xs) != 2 || xs[0].Target != "prod-eu" || xs[1].Target != "prod-us" || xs[0].Attempt != 1 || xs[1].Attempt != 1 {
		t.Fatalf("prod executions %+v; want one per target, attempt 1", xs)
	}
	callbacks := map[string]bool{}
	for _, target := range []string{"prod-eu", "prod-us"} {
		trs := e.spin.received("api-" + target)
		if len(trs) != 1 || !trs[0].Matched {
			t.Fatalf("%s triggers %d (matched %v); want one that its constraints match", target, len(trs), len(trs) == 1 && trs[0].Matched)
		}
		tr := trs[0]
		if got, want := tr.Header.Get("Idempotency-Key"), rr.ID+"-prod-1-"+target; got != want {
			t.Errorf("%s Idempotency-Key %q; want %q", target, got, want)
		}
		if tr.str("target") != target || tr.str("stage") != "prod" {
			t.Errorf("%s payload target %q stage %q", target, tr.str("target"), tr.str("stage"))
		}
		callbacks[tr.str("callback_url")] = true
	}
	if len(callbacks) != 2 {
		t.Errorf("the targets share a callback URL: %v", callbacks)
	}
	// qa is a stage of one target: no target field, the plain key.
	if qa := e.spin.received("api-qa"); len(qa) != 1 || qa[0].Payload["target"] != nil || qa[0].Header.Get("Idempotency-Key") != rr.ID+"-qa-1" {
		t.Errorf("qa trigger %v %q; want no target and the plain key", qa[0].Payload["target"], qa[0].Header.Get("Idempotency-Key"))
	}
	var envs []string
	for _, d := range e.gh.Deployments(repo) {
		envs = append(envs, d.Environment)
	}
	slices.Sort(envs)
	if want := []string{"prod/prod-eu", "prod/prod-us", "qa"}; !slices.Equal(envs, want) {
		t.Errorf("deployment environments %v; want %v", envs, want)
	}
	cr := e.waitCheck(m.sha)
	if cr.Conclusion != "success" || !strings.Contains(cr.Summary, "↳ prod-eu") || !strings.Contains(cr.Summary, "↳ prod-us") {
		t.Errorf("rollout check %s:\n%s\nwant success with a row per target", cr.Conclusion, cr.Summary)
	}
}

// A failing target fails the wave once the other target finished; with
// rollback: true every target, the failed one included, gets the previous
// version back.
func TestWaveFailureRollsBackEveryTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(waveStages), targets: waveTargets, constraints: waveConstraints(),
		decide: func(tr trigger) string {
			if tr.Source == "api-prod-us" && tr.str("version") == "0.1.1" && !tr.rollback() {
				return "failed"
			}
			return "succeeded"
		}})
	e.waitDone(e.released(e.merge("fix: first")).ID)
	m := e.merge("fix: second")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.RolledBack {
		t.Fatalf("prod ended %s; want rolled-back", got)
	}
	for _, target := range []string{"prod-eu", "prod-us"} {
		trs := e.spin.received("api-" + target)
		if len(trs) != 3 {
			t.Fatalf("%s triggers %d; want v0.1.0, v0.1.1 and the rollback", target, len(trs))
		}
		rb := trs[2]
		if !rb.rollback() || rb.str("version") != "0.1.0" || rb.Header.Get("Idempotency-Key") != rr.ID+"-prod-2-"+target {
			t.Errorf("%s third trigger %v %s key %q; want the rollback to 0.1.0 as attempt 2", target, rb.rollback(), rb.str("version"), rb.Header.Get("Idempotency-Key"))
		}
	}
	xs := e.executionsAt(rr.ID, "prod")
	failed := 0
	for _, x := range xs {
		if x.Outcome == "failed" {
			failed++
			if x.Target != "prod-us" {
				t.Errorf("target %s failed; only prod-us did", x.Target)
			}
		}
	}
	if len(xs) != 4 || failed != 1 {
		t.Errorf("prod executions %d with %d failed; want two deploys (one failed) and two rollbacks", len(xs), failed)
	}
	if cr := e.waitCheck(m.sha); cr.Conclusion != "failure" || cr.Title != "v0.1.1: rolled back" {
		t.Errorf("rollout check %s %q; want failure, rolled back", cr.Conclusion, cr.Title)
	}
}

// A failing target does not cut the wave short: the other target is left
// to finish, and only then does every target get the previous version.
func TestWaveFailureWaitsForTheOtherTargets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(waveStages), targets: waveTargets, constraints: waveConstraints(),
		decide: func(tr trigger) string {
			switch {
			case tr.str("version") != "0.1.1" || tr.rollback() || tr.str("stage") != "prod":
				return "succeeded"
			case tr.Source == "api-prod-us":
				return "failed"
			}
			return "" // prod-eu's deploy of v0.1.1: the test reports it
		}})
	e.waitDone(e.released(e.merge("fix: first")).ID)
	rr := e.released(e.merge("fix: second"))
	eu := e.spin.waitTriggers("api-prod-eu", 2)[1]
	eventually(t, "prod-us's deploy failed", func() bool {
		for _, x := range e.executionsAt(rr.ID, "prod") {
			if x.Target == "prod-us" && x.Outcome == "failed" && x.Phase == store.PhaseFinished {
				return true
			}
		}
		return false
	})
	e.idle(10)
	if got := e.stage(rr.ID, "prod").State; got != schedule.Active {
		t.Errorf("prod %s while prod-eu still deploys; want active", got)
	}
	for _, target := range []string{"prod-eu", "prod-us"} {
		if n := len(e.spin.received("api-" + target)); n != 2 {
			t.Fatalf("%s triggers %d before prod-eu finished; want 2 (no rollback yet)", target, n)
		}
	}
	e.spin.report(eu, "succeeded")
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.RolledBack {
		t.Fatalf("prod ended %s; want rolled back", got)
	}
	for _, target := range []string{"prod-eu", "prod-us"} {
		trs := e.spin.received("api-" + target)
		if len(trs) != 3 || !trs[2].rollback() || trs[2].str("version") != "0.1.0" {
			t.Errorf("%s triggers %d; want the rollback to 0.1.0 third", target, len(trs))
		}
	}
}

// approvalStages hold prod for a person's approval.
const approvalStages = `  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    approval: true
`

// A stage that needs approval waits, saying so with the exact command;
// the author and a write user cannot approve, a maintainer can.
func TestApprovalByAMaintainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(approvalStages), decide: always("succeeded")})
	e.gh.SetPermission(repo, "alice", "admin") // the author, an admin: still not
	e.gh.SetPermission(repo, "carol", "write")
	e.gh.SetPermission(repo, "dave", "maintain")
	m := e.merge("feat: gated")
	rr := e.released(m)
	const wait = `waiting for approval: comment "/shipbot approve prod"`
	e.waitWait(rr.ID, "prod", wait)
	// Both the check run and the comment say it, with the exact command.
	e.waitCheckText(m.sha, wait)
	if cr, _ := e.check(m.sha); cr.Title != "v0.1.0: waiting for approval of prod" {
		t.Errorf("rollout check title %q", cr.Title)
	}
	e.waitComment(m.pr, wait)

	if reply := e.command(m.pr, "alice", "/shipbot approve prod"); !strings.Contains(reply.Body, "author") {
		t.Errorf("the author's approval answered %q; want refused", reply.Body)
	}
	if reply := e.command(m.pr, "carol", "/shipbot approve prod"); !strings.Contains(reply.Body, "maintain") {
		t.Errorf("a write user's approval answered %q; want refused for want of maintain", reply.Body)
	}
	e.idle(10)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) before an approval", n)
	}
	reply := e.command(m.pr, "dave", "/shipbot approve prod")
	if !strings.Contains(reply.Body, "Approved: v0.1.0 goes to prod") {
		t.Errorf("the maintainer's approval answered %q", reply.Body)
	}
	done := e.waitDone(rr.ID)
	if row := stageOf(done, "prod"); row.State != schedule.Passed || row.ApprovedBy != "dave" {
		t.Errorf("prod %s approved by %q; want passed, approved by dave", row.State, row.ApprovedBy)
	}
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// With approvers listed, a listed user and a member of a listed team
// approve without maintain; reject fails the stage with the reason.
func TestApproversAndReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    approval: true
    approvers: [erin, "@acme/release-managers"]
`), decide: always("succeeded")})
	e.gh.SetPermission(repo, "dave", "maintain")
	e.gh.SetTeamMembers("acme", "release-managers", "frank")
	m1 := e.merge("fix: one")
	rr1 := e.released(m1)
	e.waitWait(rr1.ID, "prod", "waiting for approval")
	if reply := e.command(m1.pr, "dave", "/shipbot approve prod"); !strings.Contains(reply.Body, "acme/release-managers (team)") {
		t.Errorf("an unlisted maintainer's approval answered %q; want the approvers named", reply.Body)
	}
	if reply := e.command(m1.pr, "frank", "/shipbot approve prod"); !strings.Contains(reply.Body, "Approved") {
		t.Errorf("a team member's approval answered %q", reply.Body)
	}
	e.waitDone(rr1.ID)

	m2 := e.merge("fix: two")
	rr2 := e.released(m2)
	e.waitWait(rr2.ID, "prod", "waiting for approval")
	reply := e.command(m2.pr, "erin", "/shipbot reject prod not during the sale")
	if !strings.Contains(reply.Body, "Rejected: v0.1.1 will not deploy to prod") {
		t.Errorf("reject answered %q", reply.Body)
	}
	done := e.waitDone(rr2.ID)
	if row := stageOf(done, "prod"); row.State != schedule.Failed || row.RejectedBy != "erin" || row.Rejection != "not during the sale" {
		t.Errorf("prod %+v; want failed, rejected by erin with her reason", row)
	}
	if n := len(e.spin.received("api-prod")); n != 1 {
		t.Errorf("prod triggered %d times; want once (v0.1.0 only)", n)
	}
	// The audit log: the wait for approval, erin's rejection, prod failed.
	evs, err := e.st.ListEvents(context.Background(), store.EventQuery{Run: rr2.ID, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		got = append(got, evs[i].Kind+" "+evs[i].Actor+" "+evs[i].Detail)
	}
	if want := []string{
		`stage.waiting  waiting for approval: comment "/shipbot approve prod"`,
		"command.reject erin /shipbot reject prod not during the sale",
		"stage.failed  rejected by @erin: not during the sale",
	}; !slices.Equal(got, want) {
		t.Errorf("the run's last events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cr := e.waitCheck(m2.sha); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "rejected by @\u200berin: not during the sale") {
		t.Errorf("rollout check %s:\n%s", cr.Conclusion, cr.Summary)
	}
}

// Under latest, a newer version reaching a stage that waits for approval
// supersedes the waiting one and needs its own approval.
func TestLatestSupersedesARunWaitingForApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: strings.Replace(repoConfig(approvalStages), "pipeline: api\n", "pipeline: api\nconcurrency: latest\n", 1),
		decide: always("succeeded")})
	e.gh.SetPermission(repo, "dave", "maintain")
	m1 := e.merge("fix: one")
	rr1 := e.released(m1)
	e.waitWait(rr1.ID, "prod", "waiting for approval")
	m2 := e.merge("fix: two")
	rr2 := e.released(m2)
	e.waitWait(rr2.ID, "prod", "waiting for approval")
	if got := e.waitDone(rr1.ID); stageOf(got, "prod").State != schedule.Superseded {
		t.Fatalf("v0.1.0 at prod %s; want superseded", stageOf(got, "prod").State)
	}
	if reply := e.command(m1.pr, "dave", "/shipbot approve prod"); !strings.Contains(reply.Body, "superseded") {
		t.Errorf("approving the superseded version answered %q", reply.Body)
	}
	e.command(m2.pr, "dave", "/shipbot approve prod")
	e.waitDone(rr2.ID)
	if prods := e.spin.received("api-prod"); len(prods) != 1 || prods[0].str("version") != "0.1.1" {
		t.Errorf("prod triggers %d; want one, of v0.1.1", len(prods))
	}
}

// The case: a 3 s bake whose alarm fires 1 s in, with alarms read
// every 15 s. The reading at the bake's end sees it: the stage rolls back
// instead of passing.
func TestThreeSecondBakeRolledBackByAnAlarmOneSecondIn(t *testing.T) {
	t.Parallel()
	health := newAlarmServer(t)
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-health]
    bake: 3s
    rollback: true
`),
		targets:    health.targets,
		decide:     always("succeeded"),
		alarmEvery: 15 * time.Second,
	})
	first := e.released(e.merge("fix: first"))
	bakeOf := func(id string) store.Execution {
		var x store.Execution
		eventually(t, "prod bakes", func() bool {
			xs := e.executionsAt(id, "prod")
			if len(xs) == 1 && xs[0].Phase == store.PhaseBaking {
				x = xs[0]
				return true
			}
			return false
		})
		return x
	}
	e.clock.set(bakeOf(first.ID).BakeUntil.Add(time.Second))
	e.waitDone(first.ID)

	m := e.merge("fix: second")
	rr := e.released(m)
	x := bakeOf(rr.ID)
	start := x.BakeUntil.Add(-3 * time.Second)
	// The reading at the bake's start is done once the next one is due
	// 15 s later, past the bake's end.
	eventually(t, "the alarm is read at the bake's start", func() bool {
		xs := e.executionsAt(rr.ID, "prod")
		return len(xs) == 1 && xs[0].NextCheck.After(x.BakeUntil)
	})
	reads := health.reads.Load()
	health.firing.Store(true)
	e.clock.set(start.Add(time.Second)) // 1 s in: no reading due before 15 s
	e.idle(10)
	if health.reads.Load() != reads {
		t.Fatalf("the alarm was read 1 s into the bake; the test wants the reading at the end to catch it")
	}
	e.clock.set(x.BakeUntil.Add(10 * time.Millisecond))
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.RolledBack {
		t.Fatalf("prod ended %s; want rolled back by the alarm that fired 1 s into the bake", got)
	}
	xs := e.executionsAt(rr.ID, "prod")
	if len(xs) != 2 || !strings.Contains(xs[0].Reason, "during bake: alarm prod-health is firing") || !xs[1].Rollback || xs[1].Tag != "v0.1.0" {
		t.Errorf("prod executions %+v; want the bake failed, then the rollback to v0.1.0", xs)
	}
}

// errorsExporter serves demo_errors_total as a service would, for a real
// Prometheus to scrape.
type errorsExporter struct{ errors atomic.Int64 }

func (x *errorsExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE demo_errors_total gauge\ndemo_errors_total{service=\"api\"} %d\n", x.errors.Load())
}

// A Prometheus alarm (Debian's Prometheus scraping a loopback exporter)
// holds prod while its query returns series, lets it go when it returns
// none, and rolls a bake back when it fires again.
func TestPrometheusAlarmBlocksStartAndRollsBackBake(t *testing.T) {
	t.Parallel()
	exp := &errorsExporter{}
	exp.errors.Store(2)
	srv := httptest.NewServer(exp)
	t.Cleanup(srv.Close)
	prom := alarmtest.StartPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-errors]
    bake: 30s
    rollback: true
`),
		targets: func(spinURL string) string {
			return defaultTargets(spinURL) + fmt.Sprintf(`alarms:
  prod-errors:
    kind: prometheus
    url: %s
    query: demo_errors_total{service="api"} > 0
`, prom)
		},
		decide: always("succeeded"),
	})
	fires := func(want bool) {
		t.Helper()
		// Prometheus applies its first scrape some seconds after it starts.
		servicetest.Wait{Limit: 30 * time.Second, Interval: 100 * time.Millisecond}.Eventually(t, fmt.Sprintf("Prometheus says firing=%v", want), func() bool {
			st := (&alarm.Checker{}).Firing(context.Background(), e.parts.Engine.Targets.Alarms["prod-errors"])
			return st.Firing == want && !st.Unknown
		})
	}
	fires(true)

	m1 := e.merge("fix: under pressure")
	rr1 := e.released(m1)
	e.waitWait(rr1.ID, "prod", "waiting: alarm prod-errors firing")
	e.idle(10)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) while the query returned series", n)
	}
	exp.errors.Store(0)
	fires(false)
	e.waitStage(rr1.ID, "prod", "active")
	var bake time.Time
	eventually(t, "v0.1.0 bakes in prod", func() bool {
		xs := e.executionsAt(rr1.ID, "prod")
		if len(xs) == 1 && xs[0].Phase == store.PhaseBaking {
			bake = xs[0].BakeUntil
			return true
		}
		return false
	})
	e.clock.set(bake.Add(time.Second))
	e.waitDone(rr1.ID)

	m2 := e.merge("fix: worse")
	rr2 := e.released(m2)
	eventually(t, "v0.1.1 bakes in prod", func() bool {
		xs := e.executionsAt(rr2.ID, "prod")
		return len(xs) == 1 && xs[0].Phase == store.PhaseBaking
	})
	exp.errors.Store(7)
	done := e.waitDone(rr2.ID)
	if got := stageOf(done, "prod").State; got != schedule.RolledBack {
		t.Fatalf("prod ended %s; want rolled back by the query", got)
	}
	xs := e.executionsAt(rr2.ID, "prod")
	if len(xs) != 2 || !strings.Contains(xs[0].Reason, "alarm prod-errors is firing") || xs[1].Tag != "v0.1.0" {
		t.Errorf("prod executions %+v; want the bake failed by prod-errors, then the rollback to v0.1.0", xs)
	}
}
