package pipeline_test

// Integration tests of the rollout engine (issue 4, "Done when"): merges
// go through the real service and walk their stages against an in-test
// Spinnaker Echo that enforces payload constraints the way Echo does, with
// the outcome reported to the callback URL as the test decides.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/alarm/alarmtest"
	"github.com/shipbot/shipbot/internal/deploy/deploytest"

	"github.com/shipbot/shipbot/internal/alarm"
	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

// always reports the same outcome for every deploy.
func always(state string) func(trigger) string { return func(trigger) string { return state } }

// bySource reports per Echo source; sources not listed succeed.
func bySource(states map[string]string) func(trigger) string {
	return func(tr trigger) string {
		if s, ok := states[tr.Source]; ok {
			return s
		}
		return "succeeded"
	}
}

// payloadFields are the trigger payload's fields (design, "Trigger
// payload"), before the target's constraint secrets.
var payloadFields = []string{"attempt", "callback_url", "pull_request", "repository", "run_id", "sha", "stage", "tag", "version"}

// wantPayload is what one trigger must carry.
type wantPayload struct {
	run      string
	sha      string
	pr       int
	stage    string
	version  string
	attempt  int
	rollback bool
	secret   string // the target's deploy_key
	signing  string // the target's signing secret, if any
}

// checkTrigger checks a trigger against the design: exactly the payload's
// fields plus the constraint secret as a top-level field, with their JSON
// types; the Idempotency-Key; the signature; and that Echo's constraints
// matched (the secret travelled where Echo looks for it).
func (e *env) checkTrigger(tr trigger, w wantPayload) {
	e.t.Helper()
	keys := make([]string, 0, len(tr.Payload))
	for k := range tr.Payload {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append(slices.Clone(payloadFields), "deploy_key")
	if w.rollback {
		want = append(want, "rollback")
	}
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		e.t.Errorf("%s trigger fields %v; want exactly %v", w.stage, keys, want)
	}
	for _, k := range []string{"repository", "sha", "version", "tag", "stage", "run_id", "callback_url", "deploy_key"} {
		if _, ok := tr.Payload[k].(string); !ok {
			e.t.Errorf("%s trigger: %s is %T, want a JSON string", w.stage, k, tr.Payload[k])
		}
	}
	integer := func(k string) int64 {
		n, ok := tr.Payload[k].(json.Number)
		if !ok || strings.ContainsAny(n.String(), ".eE") {
			e.t.Errorf("%s trigger: %s is %v (%T), want a JSON integer", w.stage, k, tr.Payload[k], tr.Payload[k])
			return -1
		}
		v, _ := n.Int64()
		return v
	}
	if got := integer("pull_request"); got != int64(w.pr) {
		e.t.Errorf("%s trigger: pull_request %d, want %d", w.stage, got, w.pr)
	}
	if got := integer("attempt"); got != int64(w.attempt) {
		e.t.Errorf("%s trigger: attempt %d, want %d", w.stage, got, w.attempt)
	}
	for k, v := range map[string]string{
		"repository": repo, "sha": w.sha, "version": w.version, "tag": "v" + w.version,
		"stage": w.stage, "run_id": w.run, "deploy_key": w.secret,
	} {
		if got := tr.str(k); got != v {
			e.t.Errorf("%s trigger: %s %q, want %q", w.stage, k, got, v)
		}
	}
	if w.rollback && tr.Payload["rollback"] != true {
		e.t.Errorf("%s trigger: rollback %v, want true", w.stage, tr.Payload["rollback"])
	}
	token, ok := strings.CutPrefix(tr.str("callback_url"), e.base+"/api/v1/callbacks/")
	if _, err := hex.DecodeString(token); !ok || err != nil || len(token) < 32 {
		e.t.Errorf("%s trigger: callback_url %q is not %s/api/v1/callbacks/<128+ bit token>", w.stage, tr.str("callback_url"), e.base)
	}
	if got, want := tr.Header.Get("Idempotency-Key"), fmt.Sprintf("%s-%s-%d", w.run, w.stage, w.attempt); got != want {
		e.t.Errorf("%s trigger: Idempotency-Key %q, want %q", w.stage, got, want)
	}
	sig := tr.Header.Get("X-Shipbot-Signature-256")
	if w.signing == "" {
		if sig != "" {
			e.t.Errorf("%s trigger: unexpected signature %q", w.stage, sig)
		}
	} else {
		m := hmac.New(sha256.New, []byte(w.signing))
		m.Write(tr.Body)
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); sig != want {
			e.t.Errorf("%s trigger: signature %q, want %q", w.stage, sig, want)
		}
	}
	if !tr.Matched {
		e.t.Errorf("%s trigger: Echo's payloadConstraints did not match %s; no pipeline would run", w.stage, tr.Body)
	}
}

// 1. qa then prod, in order, with the design's payload; one check run ends
// success, one sticky comment.
func TestQAThenProd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	m := e.merge("fix: handle empty request bodies")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	for _, s := range []string{"qa", "prod"} {
		if got := stageOf(done, s).State; got != schedule.Passed {
			t.Errorf("stage %s ended %s, want passed", s, got)
		}
	}

	all := e.spin.received("")
	if len(all) != 2 || all[0].Source != "api-qa" || all[1].Source != "api-prod" {
		t.Fatalf("triggers went to %v; want api-qa then api-prod", sources(all))
	}
	qa, prod := all[0], all[1]
	e.checkTrigger(qa, wantPayload{run: rr.ID, sha: m.sha, pr: m.pr, stage: "qa", version: "0.1.0", attempt: 1, secret: qaKey})
	e.checkTrigger(prod, wantPayload{run: rr.ID, sha: m.sha, pr: m.pr, stage: "prod", version: "0.1.0", attempt: 1, secret: prodKey, signing: prodHMAC})
	if qa.str("callback_url") == prod.str("callback_url") {
		t.Error("qa and prod share a callback URL; a token must be valid for one stage execution")
	}
	// A secret only ever goes to its own target.
	if strings.Contains(string(qa.Body), prodKey) || strings.Contains(string(prod.Body), qaKey) {
		t.Error("a target received another target's secret")
	}
	// prod entered only after qa passed (the callback was applied).
	passed, entered := e.obs.index(rr.ID, "qa", "passed"), e.obs.index(rr.ID, "prod", "entered")
	if passed < 0 || entered < 0 || passed > entered {
		t.Fatalf("qa passed at event %d, prod entered at event %d; want qa first", passed, entered)
	}
	if at := e.obs.all()[passed].At; prod.At.Before(at) {
		t.Errorf("prod triggered at %s, before qa passed at %s", prod.At, at)
	}

	cr := e.waitCheck(m.sha)
	if cr.Conclusion != "success" || cr.Title != "v0.1.0: deployed" {
		t.Errorf("rollout check %s %q; want success %q", cr.Conclusion, cr.Title, "v0.1.0: deployed")
	}
	for _, s := range []string{"| qa | v0.1.0 | succeeded |", "| prod | v0.1.0 | succeeded |"} {
		if !strings.Contains(cr.Summary, s) {
			t.Errorf("rollout check summary lacks %q:\n%s", s, cr.Summary)
		}
	}
	e.waitComment(m.pr, "| prod | v0.1.0 | succeeded |")
	if cs := e.gh.Comments(repo, m.pr); len(cs) != 1 || len(e.stickyComments(m.pr)) != 1 {
		t.Errorf("%d comments on #%d (%d sticky); want exactly one sticky comment", len(cs), m.pr, len(e.stickyComments(m.pr)))
	}
	e.stop()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("the happy path logged: %s", line)
		}
	}
}

// A rollout's "done" event comes once it is over in full: the run is out
// of its pipeline and its final state is on the pull request. The
// Action's job waits on this event (before it, the job learnt of the end
// at its next look, up to half a second later); what the observer sees is
// read at the moment of the event, in the observer.
func TestDoneComesOnceTheRolloutIsOver(t *testing.T) {
	t.Parallel()
	type atDone struct {
		rollout string
		check   githubtest.CheckRun
		found   bool
		err     error
	}
	seen := make(chan atDone, 1)
	e := newEnv(t, options{decide: always("succeeded"), prepare: func(e *env) {
		observe := e.parts.Engine.Observe
		e.parts.Engine.Observe = func(ev pipeline.Event) {
			observe(ev)
			if ev.What != "done" {
				return
			}
			rr, err := e.st.GetRollout(context.Background(), ev.RunID)
			var at atDone
			for _, cr := range e.gh.CheckRuns(repo, rr.SHA) {
				if cr.Name == rolloutCheck {
					at.check, at.found = cr, true
				}
			}
			at.rollout, at.err = rr.Rollout, err
			seen <- at
		}
	}})
	m := e.merge("fix: one more check")
	e.released(m)
	var at atDone
	select {
	case at = <-seen:
	case <-time.After(waitFor):
		t.Fatalf("no rollout ended within %s", waitFor)
	}
	if at.err != nil || at.rollout != store.RolloutDone {
		t.Errorf("the rollout is %q (%v) at its done event; want done", at.rollout, at.err)
	}
	if !at.found || at.check.Status != "completed" || at.check.Conclusion != "success" {
		t.Errorf("the rollout check run is %+v (found %v) at the rollout's done event; want completed, success", at.check, at.found)
	}
}

func sources(trs []trigger) []string {
	out := make([]string, len(trs))
	for i, tr := range trs {
		out[i] = tr.Source
		if tr.rollback() {
			out[i] += "(rollback)"
		}
	}
	return out
}

// 2. Skip labels skip exactly their stage, also when added after the merge
// but before the stage starts.
func TestSkipLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		label            string
		skipped, trigger string
	}{
		{"no-deploy-to-qa", "qa", "api-prod"},
		{"no-deploy-to-prod", "prod", "api-qa"},
	} {
		t.Run(tc.label+" at merge", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{decide: always("succeeded")})
			m := e.merge("fix: something small", tc.label)
			rr := e.released(m)
			done := e.waitDone(rr.ID)
			for _, s := range []string{"qa", "prod"} {
				want := "passed"
				if s == tc.skipped {
					want = "skipped"
				}
				if got := stageOf(done, s).State.String(); got != want {
					t.Errorf("stage %s ended %s, want %s", s, got, want)
				}
			}
			if got := sources(e.spin.received("")); !slices.Equal(got, []string{tc.trigger}) {
				t.Errorf("triggers went to %v; want only %s", got, tc.trigger)
			}
			if xs := e.executionsAt(rr.ID, tc.skipped); len(xs) != 0 {
				t.Errorf("the skipped stage has executions: %+v", xs)
			}
			cr := e.waitCheck(m.sha)
			if cr.Conclusion != "success" || !strings.Contains(cr.Title, "skipped by label") {
				t.Errorf("rollout check %s %q; want success, naming the skip", cr.Conclusion, cr.Title)
			}
			if !strings.Contains(cr.Summary, fmt.Sprintf("| %s | v0.1.0 | skipped (label) |", tc.skipped)) {
				t.Errorf("rollout check summary does not show %s skipped:\n%s", tc.skipped, cr.Summary)
			}
			e.waitComment(m.pr, "Skipped by label: "+tc.skipped+".")
		})
	}

	t.Run("no-deploy-to-prod added after the merge", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{}) // the test reports qa's outcome itself
		m := e.merge("fix: something small")
		rr := e.released(m)
		qa := e.spin.waitTriggers("api-qa", 1)[0]

		// While qa deploys, someone labels the merged pull request.
		e.gh.AddLabels(repo, m.pr, "no-deploy-to-prod")
		e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, m.pr, "labeled")))
		if labels := e.rollout(rr.ID).Labels; !slices.Contains(labels, "no-deploy-to-prod") {
			t.Fatalf("run labels %v after the labeled delivery", labels)
		}
		e.spin.report(qa, "succeeded")
		done := e.waitDone(rr.ID)
		if q, p := stageOf(done, "qa").State, stageOf(done, "prod").State; q != schedule.Passed || p != schedule.Skipped {
			t.Errorf("qa %s, prod %s; want passed, skipped", q, p)
		}
		if n := len(e.spin.received("api-prod")); n != 0 {
			t.Errorf("prod was triggered %d time(s)", n)
		}
		if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
			t.Errorf("rollout check %s %q; want success", cr.Conclusion, cr.Title)
		}
	})
}

// 3. A failing qa stops the run before prod.
func TestFailingQAStopsBeforeProd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: bySource(map[string]string{"api-qa": "failed"})})
	m := e.merge("fix: something risky")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	if q, p := stageOf(done, "qa").State, stageOf(done, "prod").State; q != schedule.Failed || p != schedule.Pending {
		t.Errorf("qa %s, prod %s; want failed, pending", q, p)
	}
	if got := sources(e.spin.received("")); !slices.Equal(got, []string{"api-qa"}) {
		t.Errorf("triggers went to %v; want only api-qa", got)
	}
	cr := e.waitCheck(m.sha)
	if cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "| qa | v0.1.0 | failed: the deploy system reported failure |") {
		t.Errorf("rollout check %s %q:\n%s\nwant failure with qa's reason", cr.Conclusion, cr.Title, cr.Summary)
	}
	e.waitComment(m.pr, "failed: the deploy system reported failure")
}

const rollbackStages = `  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    rollback: true
`

// 4. A failing prod with rollback: true redeploys the previous version,
// as a new attempt; without a previous version the stage fails, saying so.
func TestRollback(t *testing.T) {
	t.Parallel()
	t.Run("to the previous version", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{config: repoConfig(rollbackStages), decide: func(tr trigger) string {
			if tr.Source == "api-prod" && tr.str("tag") == "v0.1.1" && !tr.rollback() {
				return "failed"
			}
			return "succeeded"
		}})
		m1, m2, rr2, prods := secondRolledBack(e)
		e.checkTrigger(prods[1], wantPayload{run: rr2.ID, sha: m2.sha, pr: m2.pr, stage: "prod", version: "0.1.1", attempt: 1, secret: prodKey, signing: prodHMAC})
		// The rollback: the previous version (its tag and merge commit),
		// "rollback": true, the next attempt, so a new key and callback.
		e.checkTrigger(prods[2], wantPayload{run: rr2.ID, sha: m1.sha, pr: m2.pr, stage: "prod", version: "0.1.0", attempt: 2,
			rollback: true, secret: prodKey, signing: prodHMAC})
		if prods[2].str("callback_url") == prods[1].str("callback_url") {
			t.Error("the rollback reuses the failed attempt's callback URL")
		}
		xs := e.executionsAt(rr2.ID, "prod")
		if len(xs) != 2 || xs[0].Outcome != "failed" || xs[0].Rollback || !xs[1].Rollback || xs[1].Outcome != "succeeded" || xs[1].Tag != "v0.1.0" {
			t.Errorf("prod executions of v0.1.1: %+v; want a failed attempt 1 and a successful rollback to v0.1.0", xs)
		}
		cr := e.waitCheck(m2.sha)
		if cr.Conclusion != "failure" || cr.Title != "v0.1.1: rolled back" || !strings.Contains(cr.Summary, "rolled back to v0.1.0") {
			t.Errorf("rollout check %s %q:\n%s\nwant failure, rolled back to v0.1.0", cr.Conclusion, cr.Title, cr.Summary)
		}
		if cr := e.waitCheck(m1.sha); cr.Conclusion != "success" {
			t.Errorf("rollout check of v0.1.0: %s", cr.Conclusion)
		}
	})

	t.Run("the rollback fails too", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{config: repoConfig(rollbackStages), decide: func(tr trigger) string {
			if tr.Source == "api-prod" && (tr.str("tag") == "v0.1.1" || tr.rollback()) {
				return "failed"
			}
			return "succeeded"
		}})
		e.waitDone(e.released(e.merge("fix: first")).ID)
		m2 := e.merge("fix: second")
		rr2 := e.released(m2)
		done := e.waitDone(rr2.ID)
		if got := stageOf(done, "prod").State; got != schedule.Failed {
			t.Fatalf("prod ended %s; want failed", got)
		}
		if got := sources(e.spin.received("api-prod")); !slices.Equal(got, []string{"api-prod", "api-prod", "api-prod(rollback)"}) {
			t.Fatalf("prod triggers %v; want v0.1.0, v0.1.1, then one rollback", got)
		}
		const why = "rollback failed: the deploy system reported failure"
		if cr := e.waitCheck(m2.sha); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, why) {
			t.Errorf("rollout check %s:\n%s\nwant failure saying %q", cr.Conclusion, cr.Summary, why)
		}
	})

	t.Run("nothing to roll back to", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{config: repoConfig(rollbackStages), decide: bySource(map[string]string{"api-prod": "failed"})})
		m := e.merge("fix: first")
		rr := e.released(m)
		done := e.waitDone(rr.ID)
		if got := stageOf(done, "prod").State; got != schedule.Failed {
			t.Fatalf("prod ended %s; want failed", got)
		}
		if got := sources(e.spin.received("api-prod")); len(got) != 1 {
			t.Errorf("prod triggers %v; want one, no rollback", got)
		}
		const why = "nothing to roll back to (no earlier version deployed here)"
		if xs := e.executionsAt(rr.ID, "prod"); len(xs) != 1 || !strings.Contains(xs[0].Reason, why) {
			t.Errorf("prod executions %+v; want one failed saying %q", xs, why)
		}
		if cr := e.waitCheck(m.sha); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, why) {
			t.Errorf("rollout check %s:\n%s\nwant failure saying %q", cr.Conclusion, cr.Summary, why)
		}
	})
}

// 5. A target that never reports fails the stage after its timeout; so
// does a trigger Echo accepted (200 eventProcessed) although no pipeline's
// constraints matched, since Echo's answer proves nothing about a deploy.
func TestTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	cfg := repoConfig(`  - name: qa
    target: spinnaker-qa
    timeout: 300ms
  - name: prod
    target: spinnaker-prod
`)
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"never reports", options{config: cfg}},
		{"Echo matched no pipeline", options{config: cfg, decide: always("succeeded"), constraints: map[string]map[string]string{
			// The operator's pipeline expects another key: nothing runs.
			"api-qa": {"deploy_key": "^another-key$"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.o)
			m := e.merge("fix: slow deploy")
			rr := e.released(m)
			qa := e.spin.waitTriggers("api-qa", 1)[0]
			done := e.waitDone(rr.ID)
			if got := stageOf(done, "qa").State; got != schedule.Failed {
				t.Fatalf("qa ended %s; want failed", got)
			}
			xs := e.executionsAt(rr.ID, "qa")
			const why = "no outcome reported within 300ms"
			if len(xs) != 1 || xs[0].Reason != why {
				t.Fatalf("qa executions %+v; want one failed with %q", xs, why)
			}
			if xs[0].EventID != qa.EventID {
				t.Errorf("the execution keeps event id %q; Echo answered %q", xs[0].EventID, qa.EventID)
			}
			// FinishedAt is stored in whole milliseconds.
			if took := xs[0].FinishedAt.Sub(qa.At); took < timeout-time.Millisecond {
				t.Errorf("qa failed %s after its trigger; the timeout is %s", took, timeout)
			}
			if n := len(e.spin.received("api-prod")); n != 0 {
				t.Errorf("prod was triggered %d time(s)", n)
			}
			if cr := e.waitCheck(m.sha); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "| qa | v0.1.0 | failed: "+why+" |") {
				t.Errorf("rollout check %s:\n%s\nwant failure saying %q", cr.Conclusion, cr.Summary, why)
			}
			// The report that comes too late changes nothing.
			if code, body := e.spin.send(qa, "succeeded"); code != http.StatusOK || !strings.Contains(body, "ignored") {
				t.Errorf("late report: %d %s; want 200 ignored", code, body)
			}
			if got := e.stage(rr.ID, "qa").State; got != schedule.Failed {
				t.Errorf("after the late report qa is %s", got)
			}
		})
	}
}

// 6. Outside its window a stage waits, saying when the window opens;
// inside, it proceeds.
// prodWindowed deploys to prod only from 10:00 to 11:00 UTC; monday9 is an
// hour before the window opens.
const prodWindowed = `  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    window: "daily 10:00-11:00 UTC"
`

var monday9 = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC) // a Monday

func TestWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{
		config: repoConfig(prodWindowed),
		decide: always("succeeded"),
		start:  func(c *clock) { c.set(monday9) },
	})
	m := e.merge("feat: new endpoint")
	rr := e.released(m)
	e.waitStage(rr.ID, "qa", "passed")
	const wait = "waiting for the deploy window, opens Mon 2030-01-07 10:00 UTC"
	e.waitWait(rr.ID, "prod", wait)
	e.waitCheckText(m.sha, "| prod | v0.1.0 | "+wait+" |")
	e.waitComment(m.pr, wait)
	e.idle(25)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) outside its window", n)
	}
	if got := e.stage(rr.ID, "prod"); got.State != schedule.Pending || got.Wait.Text() != wait {
		t.Fatalf("prod %s %q while the window is closed", got.State, got.Wait.Text())
	}
	// The wait is news once, not on every pass the engine makes over it
	// (a window's opening read back from the store must equal the one
	// worked out again).
	waits := 0
	for _, ev := range e.obs.all() {
		if ev.RunID == rr.ID && ev.Stage == "prod" && ev.What == "waiting" {
			waits++
		}
	}
	if waits != 1 {
		t.Errorf("prod's wait for the window was recorded %d times over 25 passes; want once", waits)
	}

	opened := time.Now()
	e.clock.set(monday9.Add(time.Hour + 5*time.Second))
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.Passed {
		t.Errorf("prod ended %s; want passed", got)
	}
	if prods := e.spin.received("api-prod"); len(prods) != 1 || prods[0].At.Before(opened) {
		t.Errorf("prod triggers %v; want one, after the window opened at %v", prods, opened)
	}
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// 7a. A firing alert in a real Alertmanager blocks prod from starting;
// resolving it releases prod.
func TestAlertmanagerBlocksStart(t *testing.T) {
	t.Parallel()
	am := alarmtest.Start(t)
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-high-severity]
`),
		targets: func(spinURL string) string {
			return defaultTargets(spinURL) + fmt.Sprintf(`alarms:
  prod-high-severity:
    kind: alertmanager
    url: %s
    filter: ['severity="high"', 'service="api"']
`, am)
		},
		decide: always("succeeded"),
	})
	now := time.Now()
	matching := map[string]string{"alertname": "HighErrorRate", "severity": "high", "service": "api"}
	started := now.Add(-time.Minute)
	alarmtest.PostAlert(t, am, matching, started, now.Add(time.Hour))
	// One matcher missed: never blocks.
	alarmtest.PostAlert(t, am, map[string]string{"alertname": "WebDown", "severity": "high", "service": "web"}, started, now.Add(time.Hour))
	// Nothing in Alertmanager's API promises the alert is visible at once.
	eventually(t, "Alertmanager reports the alert", func() bool {
		st := (&alarm.Checker{}).Firing(context.Background(), e.parts.Engine.Targets.Alarms["prod-high-severity"])
		return st.Firing && !st.Unknown
	})

	m := e.merge("fix: under pressure")
	rr := e.released(m)
	e.waitStage(rr.ID, "qa", "passed")
	const wait = "waiting: alarm prod-high-severity firing"
	e.waitWait(rr.ID, "prod", wait)
	e.waitCheckText(m.sha, wait)
	e.idle(25)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) while the alarm fires", n)
	}

	resolved := time.Now()
	alarmtest.PostAlert(t, am, matching, started, time.Now().Add(-time.Second))
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.Passed {
		t.Errorf("prod ended %s; want passed", got)
	}
	if prods := e.spin.received("api-prod"); len(prods) != 1 || prods[0].At.Before(resolved) {
		t.Errorf("prod triggers: %d; want one, after the alert resolved", len(prods))
	}
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// 7b. An alarm that fires during the bake rolls the stage back.
func TestAlarmDuringBakeRollsBack(t *testing.T) {
	t.Parallel()
	const bake = 2 * time.Second
	health := newAlarmServer(t)
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-health]
    bake: 2s
    rollback: true
`),
		targets: health.targets,
		decide: func(tr trigger) string {
			if tr.Source == "api-prod" && tr.str("tag") == "v0.1.1" && !tr.rollback() {
				// The new version is bad: the alarm goes off once it is out.
				health.firing.Store(true)
			}
			return "succeeded"
		},
	})
	m1, m2, rr2, prods := secondRolledBack(e)
	e.checkTrigger(prods[2], wantPayload{run: rr2.ID, sha: m1.sha, pr: m2.pr, stage: "prod", version: "0.1.0", attempt: 2,
		rollback: true, secret: prodKey, signing: prodHMAC})
	xs := e.executionsAt(rr2.ID, "prod")
	if len(xs) != 2 || xs[0].Outcome != "failed" || !strings.Contains(xs[0].Reason, "during bake: alarm prod-health is firing") {
		t.Fatalf("prod executions %+v; want attempt 1 failed during bake", xs)
	}
	// The alarm, not the end of the bake, ended it.
	if took := xs[0].FinishedAt.Sub(prods[1].At); took >= bake {
		t.Errorf("the bake ended %s after the trigger; the alarm should have cut it short of %s", took, bake)
	}
	if cr := e.waitCheck(m2.sha); cr.Conclusion != "failure" || cr.Title != "v0.1.1: rolled back" {
		t.Errorf("rollout check %s %q; want failure, rolled back", cr.Conclusion, cr.Title)
	}
}

// 7b'. The alarms are read once more when the bake ends, before the stage
// passes: an alarm that fires between two readings of a bake (here the
// only reading before the end is at its start) still rolls it back.
func TestAlarmReadAtTheEndOfTheBake(t *testing.T) {
	t.Parallel()
	health := newAlarmServer(t)
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-health]
    bake: 10m
`),
		targets:    health.targets,
		decide:     always("succeeded"),
		alarmEvery: time.Hour, // no reading between the bake's start and its end
	})
	m := e.merge("fix: looks fine at first")
	rr := e.released(m)
	eventually(t, "prod bakes, its alarm read at the start", func() bool {
		xs := e.executionsAt(rr.ID, "prod")
		return len(xs) == 1 && xs[0].Phase == store.PhaseBaking && health.reads.Load() > 0
	})
	reads := health.reads.Load()
	health.firing.Store(true)
	e.clock.set(time.Now().Add(11 * time.Minute)) // the bake is over
	e.parts.Engine.Wake()
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.Failed {
		t.Errorf("prod ended %s with its alarm firing at the end of the bake; want failed", got)
	}
	xs := e.executionsAt(rr.ID, "prod")
	if len(xs) != 1 || !strings.Contains(xs[0].Reason, "during bake: alarm prod-health is firing") {
		t.Errorf("prod executions %+v; want one failed during bake", xs)
	}
	if health.reads.Load() <= reads {
		t.Error("the alarm was not read at the end of the bake")
	}
}

// 7c. The alarms are read afresh right before a stage starts: a reading
// taken while the run waited for something else (here a freeze) is not
// trusted when the stage frees up, however recent.
func TestAlarmCheckedRightBeforeStart(t *testing.T) {
	t.Parallel()
	health := newAlarmServer(t)
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    alarms: [prod-health]
`),
		targets:    health.targets,
		alarmEvery: time.Minute, // readings are reused for a minute of engine time
	})
	ctx := context.Background()
	const key = "acme/api:api"
	m := e.merge("fix: calm before the storm")
	rr := e.released(m)
	qa := e.spin.waitTriggers("api-qa", 1)[0]
	if err := e.st.Freeze(ctx, key, "release train", "test"); err != nil {
		t.Fatal(err)
	}
	e.spin.report(qa, "succeeded")
	e.waitWait(rr.ID, "prod", "waiting: pipeline frozen (release train)")
	eventually(t, "the engine read the alarm while prod waited", func() bool { return health.reads.Load() > 0 })

	health.firing.Store(true)
	if _, err := e.st.Unfreeze(ctx, key, "alice"); err != nil {
		t.Fatal(err)
	}
	e.parts.Engine.Wake()
	e.waitWait(rr.ID, "prod", "waiting: alarm prod-health firing")
	e.idle(25)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) on a stale alarm reading while the alarm fires", n)
	}

	// Quiet again; a minute later the engine reads it again and starts.
	health.firing.Store(false)
	e.clock.set(time.Now().Add(2 * time.Minute))
	e.spin.report(e.spin.waitTriggers("api-prod", 1)[0], "succeeded")
	if got := stageOf(e.waitDone(rr.ID), "prod").State; got != schedule.Passed {
		t.Errorf("prod ended %s", got)
	}
}

// 8. A stage's bake delays the next stage.
func TestBakeDelaysPromotion(t *testing.T) {
	t.Parallel()
	// Long enough that the check run (written at most once a second per
	// run) shows the bake before it ends, even on a loaded machine.
	const bake = 3 * time.Second
	e := newEnv(t, options{config: repoConfig(`  - name: qa
    target: spinnaker-qa
    bake: 3s
  - name: prod
    target: spinnaker-prod
`)})
	m := e.merge("feat: careful")
	rr := e.released(m)
	qa := e.spin.waitTriggers("api-qa", 1)[0]
	reported := time.Now()
	e.spin.report(qa, "succeeded")
	eventually(t, "qa bakes", func() bool {
		xs := e.executionsAt(rr.ID, "qa")
		return len(xs) == 1 && xs[0].Phase == store.PhaseBaking
	})
	e.waitCheckText(m.sha, "| qa | v0.1.0 | baking until ")
	// qa has its outcome: a report now is acknowledged and ignored.
	if code, body := e.spin.send(qa, "failed"); code != http.StatusOK || !strings.Contains(body, "ignored") {
		t.Errorf("report during the bake: %d %s; want 200 ignored", code, body)
	}
	if got := e.stage(rr.ID, "qa").State; got != schedule.Active {
		t.Errorf("qa is %s while baking; want active (it holds the stage)", got)
	}
	prod := e.spin.waitTriggers("api-prod", 1)[0]
	// The bake's end is stored in whole milliseconds.
	if waited := prod.At.Sub(reported); waited < bake-time.Millisecond {
		t.Errorf("prod triggered %s after qa succeeded; the bake is %s", waited, bake)
	}
	if passed, entered := e.obs.index(rr.ID, "qa", "passed"), e.obs.index(rr.ID, "prod", "entered"); passed < 0 || passed > entered {
		t.Errorf("qa passed at event %d, prod entered at %d", passed, entered)
	}
	e.spin.report(prod, "succeeded")
	e.waitDone(rr.ID)
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// snapshot is what callbacks could change about a run.
func (e *env) snapshot(id string) string {
	e.t.Helper()
	var b strings.Builder
	for _, s := range e.rollout(id).Stages {
		fmt.Fprintf(&b, "%s:%s:%s;", s.Name, s.State, s.Wait)
	}
	for _, x := range e.executions(id) {
		fmt.Fprintf(&b, "%s/%s/%d:%s:%s:%s:%s;", x.ID, x.StageName, x.Attempt, x.Phase, x.Outcome, x.Reason, x.URL)
	}
	return b.String()
}

// 9. Callback misuse changes nothing; a valid report moves the stage.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	m := e.merge("fix: callbacks")
	rr := e.released(m)
	qa := e.spin.waitTriggers("api-qa", 1)[0]
	eventually(t, "qa is deploying", func() bool {
		xs := e.executionsAt(rr.ID, "qa")
		return len(xs) == 1 && xs[0].Phase == store.PhaseDeploying
	})
	before := e.snapshot(rr.ID)
	unchanged := func(what string) {
		t.Helper()
		if after := e.snapshot(rr.ID); after != before {
			t.Errorf("%s changed the run:\nbefore %s\nafter  %s", what, before, after)
		}
	}
	qaURL := qa.str("callback_url")

	for _, token := range []string{randomHex(32), "nope"} {
		code, body := e.spin.post(e.base+"/api/v1/callbacks/"+token, `{"state":"succeeded"}`)
		if code != http.StatusNotFound {
			t.Errorf("unknown token: %d %s; want 404", code, body)
		}
	}
	unchanged("an unknown token")
	for _, body := range []string{`{"state":`, `not json`, `{"state":"done"}`, `{"state":"succeeded","url":"javascript:alert(1)"}`} {
		if code, ans := e.spin.post(qaURL, body); code != http.StatusBadRequest {
			t.Errorf("callback %s: %d %s; want 400", body, code, ans)
		}
	}
	unchanged("a malformed report")
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) before qa's outcome", n)
	}

	const link = "https://spinnaker.example/#/applications/api/executions/01"
	if code, body := e.spin.post(qaURL, `{"state":"succeeded","url":"`+link+`"}`); code != http.StatusAccepted {
		t.Fatalf("valid report: %d %s; want 202", code, body)
	}
	e.waitStage(rr.ID, "qa", "passed")
	prod := e.spin.waitTriggers("api-prod", 1)[0]
	if xs := e.executionsAt(rr.ID, "qa"); len(xs) != 1 || xs[0].Outcome != "succeeded" || xs[0].URL != link {
		t.Errorf("qa execution %+v; want succeeded with the reported URL", xs)
	}
	eventually(t, "prod is deploying", func() bool {
		xs := e.executionsAt(rr.ID, "prod")
		return len(xs) == 1 && xs[0].Phase == store.PhaseDeploying
	})

	// A second report for qa, which already has its outcome.
	before = e.snapshot(rr.ID)
	code, body := e.spin.post(qaURL, `{"state":"failed"}`)
	if code != http.StatusOK || !strings.Contains(body, "ignored") {
		t.Errorf("second report: %d %s; want 200 ignored", code, body)
	}
	e.idle(20)
	unchanged("a second report")
	if n := len(e.spin.received("")); n != 2 {
		t.Errorf("%d triggers after the second report; want 2", n)
	}

	e.spin.report(prod, "succeeded")
	e.waitDone(rr.ID)
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// 9b. A downstream that reports before it answers the trigger (a webhook
// that deploys synchronously) must not lose its report.
func TestCallbackBeforeTriggerAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
    timeout: 5s
  - name: prod
    target: spinnaker-prod
    timeout: 5s
`),
		decide:  always("succeeded"),
		prepare: func(e *env) { e.spin.setCallbackFirst(true) },
	})
	m := e.merge("fix: fast downstream")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	for _, s := range []string{"qa", "prod"} {
		if got := stageOf(done, s).State; got != schedule.Passed {
			xs := e.executionsAt(rr.ID, s)
			t.Errorf("stage %s ended %s (%+v); want passed", s, got, xs)
		}
	}
}

// 10. Freezing a pipeline through the API holds new stage starts until it
// is unfrozen; the API wants the bearer token.
func TestFreeze(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{apiToken: apiToken})
	path := "/api/v1/pipelines/" + url.PathEscape(repo) + "/freeze"
	const key = "acme/api:api"
	frozen := func() bool {
		_, f, err := e.st.Frozen(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	m := e.merge("fix: during an incident")
	rr := e.released(m)
	qa := e.spin.waitTriggers("api-qa", 1)[0]

	for _, bearer := range []string{"", "wrong-token"} {
		if code, body := e.post(http.MethodPost, path, bearer, `{"reason":"incident 42"}`); code != http.StatusUnauthorized {
			t.Errorf("freeze with bearer %q: %d %s; want 401", bearer, code, body)
		}
	}
	if frozen() {
		t.Fatal("frozen without a valid token")
	}
	code, body := e.post(http.MethodPost, path, apiToken, `{"reason":"incident 42","actor":"carol"}`)
	if code != http.StatusOK || !strings.Contains(body, `"frozen"`) || !frozen() {
		t.Fatalf("freeze: %d %s (frozen %v); want 200 frozen", code, body, frozen())
	}

	// What is active carries on; the next stage does not start.
	e.spin.report(qa, "succeeded")
	e.waitStage(rr.ID, "qa", "passed")
	const wait = "waiting: pipeline frozen (incident 42)"
	e.waitWait(rr.ID, "prod", wait)
	e.waitCheckText(m.sha, wait)
	e.idle(25)
	if n := len(e.spin.received("api-prod")); n != 0 {
		t.Fatalf("prod triggered %d time(s) while frozen", n)
	}

	if code, _ := e.post(http.MethodDelete, path, "", ""); code != http.StatusUnauthorized || !frozen() {
		t.Errorf("unfreeze without a token: %d, frozen %v; want 401 and still frozen", code, frozen())
	}
	if code, body := e.post(http.MethodPost, "/api/v1/pipelines/"+url.PathEscape(repo)+"/unfreeze", apiToken, ""); code != http.StatusOK || frozen() {
		t.Fatalf("unfreeze: %d %s", code, body)
	}
	prod := e.spin.waitTriggers("api-prod", 1)[0]
	e.spin.report(prod, "succeeded")
	done := e.waitDone(rr.ID)
	if got := stageOf(done, "prod").State; got != schedule.Passed {
		t.Errorf("prod ended %s", got)
	}

	// Without SHIPBOT_API_TOKEN the write API is off.
	off := newEnv(t, options{})
	if code, body := off.post(http.MethodPost, path, apiToken, ""); code != http.StatusForbidden {
		t.Errorf("freeze with the write API disabled: %d %s; want 403", code, body)
	}
}

// 11. No secret reaches GitHub or the logs, even when a target quotes the
// payload back in an error.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	// A misconfigured receiver that answers 400, quoting what it got.
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "rejected: signature %s, body ", r.Header.Get("X-Shipbot-Signature-256"))
		buf := make([]byte, 4096)
		n, _ := r.Body.Read(buf)
		b.Write(buf[:n])
		http.Error(w, b.String(), http.StatusBadRequest)
	}))
	t.Cleanup(leaky.Close)
	e := newEnv(t, options{
		config: repoConfig(twoStages + `  - name: edge
    target: leaky
`),
		targets: func(spinURL string) string {
			return defaultTargets(spinURL) + fmt.Sprintf(`  leaky:
    kind: webhook
    url: %s/deploy
    constraints:
      edge_key: ${QA_KEY}
    signing_secret: ${PROD_HMAC}
    repos: [acme/api]
`, leaky.URL)
		},
		decide: always("succeeded"),
	})
	m := e.merge("fix: keep secrets")
	rr := e.released(m)
	done := e.waitDone(rr.ID)
	if q, p, x := stageOf(done, "qa").State, stageOf(done, "prod").State, stageOf(done, "edge").State; q != schedule.Passed || p != schedule.Passed || x != schedule.Failed {
		t.Fatalf("stages qa %s, prod %s, edge %s; want passed, passed, failed", q, p, x)
	}
	cr := e.waitCheck(m.sha)
	// The target's answer, quoting the payload, is shown with its secrets
	// scrubbed (and escaped for Markdown): the scan below has something to
	// find if scrubbing failed.
	if !strings.Contains(cr.Summary, "400 Bad Request") || !strings.Contains(cr.Summary, `"edge_key":"\[REDACTED\]"`) {
		t.Errorf("the edge failure does not show the target's scrubbed answer:\n%s", cr.Summary)
	}
	e.waitComment(m.pr, "400 Bad Request")
	e.stop() // every write and log line is out

	secrets := map[string]string{
		"qa constraint": qaKey, "prod constraint": prodKey, "signing secret": prodHMAC, "webhook secret": webhookSecret,
	}
	for _, tr := range e.spin.received("") {
		tok := tr.str("callback_url")
		secrets["callback token of "+tr.Source] = tok[strings.LastIndexByte(tok, '/')+1:]
	}
	reqs := e.gh.Requests()
	if len(reqs) == 0 {
		t.Fatal("the fake GitHub received nothing")
	}
	for _, r := range reqs {
		text := r.Path + "?" + r.Query.Encode() + "\n" + string(r.Body)
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s reached GitHub in %s %s: %s", what, r.Method, r.Path, r.Body)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "trigger accepted") || !strings.Contains(logs, "trigger failed") {
		t.Fatalf("the logs do not show the triggers; is the capture wired?\n%s", logs)
	}
	for what, s := range secrets {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, s) {
				t.Errorf("the %s is in a log line: %s", what, line)
			}
		}
	}
}

// 12. A stage whose target cannot be used fails with a clear reason, and
// nothing is sent anywhere.
func TestUnusableTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, target, why string
	}{
		{"unknown target", "nope", `unknown target "nope"`},
		{"repository not allowed", "other-team", `target "other-team" does not allow repository acme/api`},
		{"unset variable", "needs-env", `target "needs-env": environment variable MISSING_KEY is not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{
				config: repoConfig(fmt.Sprintf(`  - name: qa
    target: %s
  - name: prod
    target: spinnaker-prod
`, tc.target)),
				targets: func(spinURL string) string {
					return defaultTargets(spinURL) + fmt.Sprintf(`  other-team:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/web-qa
    constraints:
      deploy_key: ${QA_KEY}
    repos: [acme/web]
  needs-env:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${MISSING_KEY}
    repos: [acme/api]
`, spinURL)
				},
				decide: always("succeeded"),
			})
			m := e.merge("fix: wherever")
			rr := e.released(m)
			done := e.waitDone(rr.ID)
			if q, p := stageOf(done, "qa").State, stageOf(done, "prod").State; q != schedule.Failed || p != schedule.Pending {
				t.Errorf("qa %s, prod %s; want failed, pending", q, p)
			}
			if xs := e.executionsAt(rr.ID, "qa"); len(xs) != 1 || !strings.Contains(xs[0].Reason, tc.why) {
				t.Errorf("qa executions %+v; want one failed saying %q", xs, tc.why)
			}
			if got := e.spin.received(""); len(got) != 0 {
				t.Errorf("triggers were sent: %v", sources(got))
			}
			if cr := e.waitCheck(m.sha); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, tc.why) {
				t.Errorf("rollout check %s:\n%s\nwant failure saying %q", cr.Conclusion, cr.Summary, tc.why)
			}
		})
	}
}

// A stage handed off (Action mode without waiting: nobody here can learn
// the outcome) passes as soon as its trigger is accepted: it neither bakes
// nor watches alarms over a deploy whose outcome is the downstream's.
func TestHandedOffStagePassesWithoutBaking(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{
		config: repoConfig(`  - name: qa
    target: spinnaker-qa
    bake: 10m
  - name: prod
    target: spinnaker-prod
`),
		prepare: func(e *env) { e.parts.Engine.HandOff = func(config.Target) bool { return true } },
	})
	m := e.merge("feat: hand off")
	rr := e.released(m)
	done := e.waitDone(rr.ID) // waitDone gives up long before a 10m bake
	for _, st := range done.Stages {
		if st.State != schedule.Passed {
			t.Errorf("stage %s ended %s; want passed", st.Name, st.State)
		}
	}
	if i := e.obs.index(rr.ID, "qa", "baking"); i >= 0 {
		t.Errorf("a handed-off stage baked: %+v", e.obs.all()[i])
	}
	xs := e.executionsAt(rr.ID, "qa")
	const why = "handed off to spinnaker-qa; bake 10m0s not watched"
	if len(xs) != 1 || xs[0].Outcome != "succeeded" || xs[0].Reason != why || xs[0].Phase != store.PhaseFinished || !xs[0].BakeUntil.IsZero() {
		t.Fatalf("qa executions %+v; want one finished, succeeded, %q, never baking", xs, why)
	}
	if i := e.obs.index(rr.ID, "qa", "passed"); i < 0 || e.obs.all()[i].Detail != why {
		t.Errorf("no passed event saying %q: %+v", why, e.obs.all())
	}
	if got := e.spin.received(""); len(got) != 2 {
		t.Errorf("%d triggers; want qa and prod", len(got))
	}
	if cr := e.waitCheck(m.sha); cr.Conclusion != "success" {
		t.Errorf("rollout check %s %q", cr.Conclusion, cr.Title)
	}
}

// dispatchStages deploy qa, or qa and prod, through deploy.yml.
const (
	dispatchQA = `  - name: qa
    target: deploy-workflow
  - name: prod
    target: spinnaker-prod
`
	dispatchBoth = `  - name: qa
    target: deploy-workflow
  - name: prod
    target: deploy-workflow
`
)

// dispatchRun is the workflow run that the dispatch of execution x
// started, as the fake recorded it.
func (e *env) dispatchRun(x store.Execution) githubtest.WorkflowRun {
	e.t.Helper()
	var id int64
	for _, d := range e.gh.Dispatches(repo) {
		if d.Inputs["run_id"] == x.RolloutID && d.Inputs["stage"] == x.StageName && d.Inputs["attempt"] == strconv.Itoa(x.Attempt) {
			if id != 0 {
				e.t.Fatalf("execution %s/%s/%d was dispatched twice", x.RolloutID, x.StageName, x.Attempt)
			}
			id = d.RunID
		}
	}
	for _, w := range e.gh.WorkflowRuns(repo) {
		if w.ID == id {
			return w
		}
	}
	e.t.Fatalf("no workflow run for execution %s/%s/%d", x.RolloutID, x.StageName, x.Attempt)
	return githubtest.WorkflowRun{}
}

// foundRun waits until the run's execution at stage knows its workflow run.
func (e *env) foundRun(id, stage string) store.Execution {
	e.t.Helper()
	var x store.Execution
	eventually(e.t, "stage "+stage+" finds its workflow run", func() bool {
		xs := e.executionsAt(id, stage)
		if len(xs) == 0 {
			return false
		}
		x = xs[len(xs)-1]
		return x.EventID != ""
	})
	return x
}

// A github-dispatch stage follows the workflow run its dispatch started,
// found by the idempotency key in the run's title (the example workflow's
// run-name): success passes the stage, any other conclusion fails it
// naming the conclusion, and the run's page is the execution's link on the
// PR. One list finds the run, then one GET per poll.
func TestDispatchStageFollowsTheWorkflowRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ conclusion, state, reason string }{
		{"success", "passed", ""},
		{"failure", "failed", "deploy run #1 concluded failure"},
	} {
		t.Run(tc.conclusion, func(t *testing.T) {
			t.Parallel()
			runName := deploytest.ExampleRunName(t)
			e := newEnv(t, options{
				config: repoConfig(dispatchQA), targets: dispatchTargets, decide: always("succeeded"),
				prepare: func(e *env) {
					e.gh.SetWorkflow(repo, "deploy.yml", githubtest.WorkflowSpec{RunName: runName, InProgress: 2,
						Conclusion: func(map[string]string) string { return tc.conclusion }})
				},
			})
			m := e.merge("feat: dispatched")
			rr := e.released(m)
			e.waitStage(rr.ID, "qa", tc.state)
			xs := e.executionsAt(rr.ID, "qa")
			if len(xs) != 1 {
				t.Fatalf("%d qa executions", len(xs))
			}
			x := xs[0]
			w := e.dispatchRun(x)
			if x.EventID != strconv.FormatInt(w.ID, 10) || x.URL != w.HTMLURL || x.URL == "" || x.Reason != tc.reason {
				t.Errorf("qa execution event %q url %q reason %q; want run %d, %s, %q", x.EventID, x.URL, x.Reason, w.ID, w.HTMLURL, tc.reason)
			}
			if n := len(e.gh.Dispatches(repo)); n != 1 {
				t.Errorf("%d dispatches; want 1", n)
			}
			done := e.waitDone(rr.ID)
			if lists, gets := e.gh.Count(listRuns), e.gh.Count(getRun); lists != 1 || gets != 2 {
				t.Errorf("%d lists and %d GETs of the run; want 1 list (the run is found at once) and one GET per poll after (2: it completed on the second)", lists, gets)
			}
			cr := e.waitCheck(m.sha)
			if !strings.Contains(cr.Summary, "[execution]("+w.HTMLURL+")") {
				t.Errorf("the rollout check does not link the workflow run %s:\n%s", w.HTMLURL, cr.Summary)
			}
			if tc.conclusion == "success" {
				if got := stageOf(done, "prod").State; got != schedule.Passed || cr.Conclusion != "success" {
					t.Errorf("prod %s, check %s; want passed, success", got, cr.Conclusion)
				}
				return
			}
			if n := len(e.spin.received("")); n != 0 || cr.Conclusion != "failure" || !strings.Contains(cr.Summary, tc.reason) {
				t.Errorf("prod triggered %d time(s); check %s:\n%s", n, cr.Conclusion, cr.Summary)
			}
		})
	}
}

// Two dispatches of one workflow at once (v0.1.0 deploying to prod while
// v0.2.0 deploys to qa): each execution finds its own run and takes its
// own outcome.
func TestConcurrentDispatchesFindTheirOwnRuns(t *testing.T) {
	t.Parallel()
	runName := deploytest.ExampleRunName(t)
	e := newEnv(t, options{
		config: repoConfig(dispatchBoth), targets: dispatchTargets,
		prepare: func(e *env) {
			// Runs start and stay in progress until the test ends them.
			e.gh.SetWorkflow(repo, "deploy.yml", githubtest.WorkflowSpec{RunName: runName,
				Conclusion: func(map[string]string) string { return "" }})
		},
	})
	m1 := e.merge("feat: one")
	rr1 := e.released(m1)
	qa1 := e.foundRun(rr1.ID, "qa")
	e.gh.SetWorkflowRunStatus(repo, e.dispatchRun(qa1).ID, "completed", "success")
	e.waitStage(rr1.ID, "qa", "passed")

	m2 := e.merge("fix: two")
	rr2 := e.released(m2)
	prod1 := e.foundRun(rr1.ID, "prod")
	qa2 := e.foundRun(rr2.ID, "qa")
	if e.stage(rr1.ID, "prod").State != schedule.Active || e.stage(rr2.ID, "qa").State != schedule.Active {
		t.Fatalf("want v0.1.0 in prod and v0.2.0 in qa at once")
	}
	wProd1, wQA2 := e.dispatchRun(prod1), e.dispatchRun(qa2)
	if prod1.EventID != strconv.FormatInt(wProd1.ID, 10) || qa2.EventID != strconv.FormatInt(wQA2.ID, 10) || wProd1.ID == wQA2.ID {
		t.Fatalf("prod of v0.1.0 follows run %s (its own: %d); qa of v0.2.0 follows %s (its own: %d)",
			prod1.EventID, wProd1.ID, qa2.EventID, wQA2.ID)
	}
	// The later dispatch ends first, and badly.
	e.gh.SetWorkflowRunStatus(repo, wQA2.ID, "completed", "failure")
	e.waitStage(rr2.ID, "qa", "failed")
	if got := e.stage(rr1.ID, "prod").State; got != schedule.Active {
		t.Errorf("v0.1.0's prod is %s after v0.2.0's qa run failed; want still active", got)
	}
	e.gh.SetWorkflowRunStatus(repo, wProd1.ID, "completed", "success")
	e.waitStage(rr1.ID, "prod", "passed")
	xs := e.executionsAt(rr2.ID, "qa")
	if len(xs) != 1 || !strings.Contains(xs[0].Reason, "concluded failure") || xs[0].URL != wQA2.HTMLURL {
		t.Errorf("v0.2.0 qa executions %+v; want failed by its own run %s", xs, wQA2.HTMLURL)
	}
	xs = e.executionsAt(rr1.ID, "prod")
	if len(xs) != 1 || xs[0].URL != wProd1.HTMLURL {
		t.Errorf("v0.1.0 prod executions %+v; want its own run %s", xs, wProd1.HTMLURL)
	}
	if n := len(e.gh.Dispatches(repo)); n != 3 {
		t.Errorf("%d dispatches; want 3", n)
	}
}

// A dispatched workflow whose run-name lacks the key is never found: the
// stage's timeout applies, and says what is missing.
func TestDispatchWithoutRunNameTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(`  - name: qa
    target: deploy-workflow
    timeout: 400ms
`), targets: dispatchTargets})
	m := e.merge("fix: no run-name")
	rr := e.released(m)
	e.waitStage(rr.ID, "qa", "failed")
	xs := e.executionsAt(rr.ID, "qa")
	if len(xs) != 1 || !strings.HasPrefix(xs[0].Reason, "no outcome reported within 400ms: no callback, and no run of deploy.yml has "+rr.ID+"-qa-1 in its title") ||
		!strings.Contains(xs[0].Reason, "run-name") {
		t.Fatalf("qa executions %+v; want a timeout naming the missing key", xs)
	}
	if xs[0].EventID != "" {
		t.Errorf("a run was taken for ours: %q", xs[0].EventID)
	}
	if n := e.gh.Count(listRuns); n < 1 || e.gh.Count(getRun) != 0 {
		t.Errorf("%d lists, %d GETs; want searches only", n, e.gh.Count(getRun))
	}
}

// A workflow whose runs cannot be read (no such workflow, no actions:
// read) stops the polling at once: the stage waits for a callback or its
// timeout, which then says why it learned nothing.
func TestDispatchPollingRefusedTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: repoConfig(`  - name: qa
    target: deploy-workflow
    timeout: 500ms
`), targets: dispatchTargets})
	e.gh.FailNext(listRuns, http.StatusNotFound, 100)
	m := e.merge("fix: unreadable runs")
	rr := e.released(m)
	e.waitStage(rr.ID, "qa", "failed")
	xs := e.executionsAt(rr.ID, "qa")
	const want = "no outcome reported within 500ms: workflow run polling stopped: poll workflow run for deploy-workflow: list runs of deploy.yml in acme/api: 404"
	if len(xs) != 1 || !strings.HasPrefix(xs[0].Reason, want) {
		t.Fatalf("qa executions %+v; want a timeout starting %q", xs, want)
	}
	if n := e.gh.Count(listRuns); n != 1 {
		t.Errorf("%d searches; a permanent error should stop them after one", n)
	}
}

// secondRolledBack merges v0.1.0, which deploys, then v0.1.1, which the
// environment's target or alarms make fail in prod, and waits until prod
// rolled v0.1.1 back. It returns the merges, v0.1.1's run and prod's
// triggers: v0.1.0, v0.1.1, the rollback.
func secondRolledBack(e *env) (m1, m2 merged, rr2 store.RolloutRun, prods []trigger) {
	e.t.Helper()
	m1 = e.merge("fix: first")
	e.waitDone(e.released(m1).ID)
	m2 = e.merge("fix: second")
	rr2 = e.released(m2)
	done := e.waitDone(rr2.ID)
	if got := stageOf(done, "prod").State; got != schedule.RolledBack {
		e.t.Fatalf("prod of v0.1.1 ended %s; want rolled-back", got)
	}
	prods = e.spin.received("api-prod")
	if got := sources(prods); !slices.Equal(got, []string{"api-prod", "api-prod", "api-prod(rollback)"}) {
		e.t.Fatalf("prod triggers %v; want v0.1.0, v0.1.1, then the rollback", got)
	}
	return m1, m2, rr2, prods
}

// peersAtStop is the other replicas as a stopping engine sees them: it
// records whether the pipeline's lease was free when a wake-up came once
// the engine was stopping. It probes by taking the lease for a peer, which
// it does only then: before, the engine must keep it.
type peersAtStop struct {
	st       store.Leases
	lease    string
	stopping atomic.Bool
	mu       sync.Mutex
	free     []bool
}

func (p *peersAtStop) Notify(ctx context.Context, channel, payload string) error {
	if channel != "shipbot_wake" || !p.stopping.Load() {
		return nil
	}
	free, err := p.st.AcquireLease(ctx, p.lease, "peer", time.Second)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, free)
	return nil
}

func (p *peersAtStop) Listen(ctx context.Context, channel string) (<-chan string, error) {
	ch := make(chan string)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// TestStoppingEngineWakesItsPeers: a replica stopped gracefully gives its
// pipelines' leases up and then wakes the other replicas, so that one of
// them drives the pipeline at once rather than at its next tick.
func TestStoppingEngineWakesItsPeers(t *testing.T) {
	t.Parallel()
	var peers *peersAtStop
	e := newEnv(t, options{prepare: func(e *env) {
		peers = &peersAtStop{st: e.st, lease: "pipeline:" + repo + ":api"}
		e.parts.Engine.Peers = peers
	}})
	m := e.merge("fix: one more check")
	rr := e.released(m)
	e.waitStage(rr.ID, "qa", "active") // the engine keeps the pipeline's lease; the test reports nothing
	// The probe names the lease the engine keeps: while it runs, a peer
	// cannot take it.
	if free, err := e.st.AcquireLease(context.Background(), peers.lease, "peer", time.Second); err != nil || free {
		t.Fatalf("a peer took %s while the engine drives the pipeline (%v): the probe names another lease", peers.lease, err)
	}
	peers.stopping.Store(true)
	e.stop()
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if !slices.Contains(peers.free, true) {
		t.Errorf("wake-ups sent while stopping found the lease free: %v; want one once it was given up", peers.free)
	}
}

// finalGate is a FinalReporter whose final writes wait for the test, and
// which counts the changes it is told of.
type finalGate struct {
	release chan struct{} // closed to let RolloutFinal return
	fail    bool          // RolloutFinal then fails
	mu      sync.Mutex
	changed int
}

func (f *finalGate) RolloutChanged(context.Context, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed++
}

func (f *finalGate) RolloutFinal(context.Context, string) error {
	<-f.release
	if f.fail {
		return errors.New("GitHub is down")
	}
	return nil
}

func (f *finalGate) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// A job steps the engine itself and then stops; Engine.Wait is how it
// knows the engine's background work on a finished rollout (its final
// report, its exit from the pipeline, the report that exit asks for) is
// over before it flushes its reporter. A final report that failed does not
// hold Wait for its 10 s retry wait.
func TestEngineWaitCoversAFinishedRollout(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("final write fails=%v", fail), func(t *testing.T) {
			ctx := context.Background()
			st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "db"))
			t.Cleanup(func() { st.Close() })
			run, _, err := st.CreateRun(ctx, store.Run{Repo: repo, SHA: "abc", Installation: 1, Branch: "main", Source: "push"})
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := st.StartRollout(ctx, run.ID, pipeline.PipelineKey(repo, "api"), store.Release{Version: "0.1.0", Tag: "v0.1.0"},
				[]byte(repoConfig(twoStages)), nil, []string{"qa", "prod"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetStageStatesFrom(ctx, id, 0, schedule.Passed); err != nil {
				t.Fatal(err)
			}
			gate := &finalGate{release: make(chan struct{}), fail: fail}
			eng := &pipeline.Engine{Store: st, Reporter: gate, Owner: "job", Log: slog.New(slog.DiscardHandler)}
			eng.Step(ctx) // the run is done: its final report starts in the background
			waited := make(chan struct{})
			go func() {
				eng.Wait()
				close(waited)
			}()
			select {
			case <-waited:
				t.Fatal("Wait returned while the final report was being written")
			case <-time.After(50 * time.Millisecond):
			}
			close(gate.release)
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				t.Fatal("Wait did not return; a failed final report holds it for its retry wait")
			}
			rr, err := st.GetRollout(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if fail {
				if rr.Rollout != store.RolloutActive || gate.changes() != 0 {
					t.Errorf("rollout %s, %d reports after a failed final write; want it kept for the next process, none", rr.Rollout, gate.changes())
				}
				return
			}
			if rr.Rollout != store.RolloutDone || gate.changes() != 1 {
				t.Errorf("when Wait returned: rollout %s, %d reports of its exit; want done and one", rr.Rollout, gate.changes())
			}
		})
	}
}
