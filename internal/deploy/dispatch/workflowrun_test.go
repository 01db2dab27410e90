package dispatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/deploytest"
	"github.com/shipbot/shipbot/internal/githubtest"
)

const (
	listRuns = "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"
	getRun   = "GET /repos/{owner}/{repo}/actions/runs/{run_id}"
)

func TestTitleHasKey(t *testing.T) {
	key := "0a1b-qa-1"
	for _, tc := range []struct {
		title string
		want  bool
	}{
		{"0a1b-qa-1", true},
		{"deploy v1.4.2 to qa [0a1b-qa-1]", true},
		{"deploy 0a1b-qa-1", true},
		{"key=0a1b-qa-1.", true},
		{"run-0a1b-qa-1 end", true},     // a dash before: run ids have none
		{"deploy [0a1b-qa-10]", false},  // attempt 10
		{"deploy [0a1b-qa-1-2]", false}, // stage qa-1, attempt 2
		{"deploy [0a1b-qa-1_x-2]", false},
		{"deploy [f0a1b-qa-1]", false}, // another run id ending like ours
		{"deploy v1.4.2 to qa", false},
		{"deploy [0a1b-qa-10] then [0a1b-qa-1]", true},
		{"", false},
	} {
		if got := TitleHasKey(tc.title, key); got != tc.want {
			t.Errorf("TitleHasKey(%q, %q) = %v, want %v", tc.title, key, got, tc.want)
		}
	}
	if TitleHasKey("anything", "") {
		t.Error("an empty key matched")
	}
}

// The run-name users are told to write titles a run so that PollDispatch
// finds it, for every set of inputs a dispatch carries.
func TestExampleRunNameCarriesTheKey(t *testing.T) {
	runName := deploytest.ExampleRunName(t)
	for _, p := range []deploy.Payload{
		testPayload(),
		{Repository: "acme/api", SHA: "abc", Version: "2.0.0", Tag: "v2.0.0", Stage: "prod-eu_1", RunID: "9f8e7d6c5b4a39281706f5e4d3c2b1a0", Attempt: 12, Rollback: true},
	} {
		in, err := Inputs(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs := map[string]string{}
		for k, v := range in {
			inputs[k] = v.(string)
		}
		title := githubtest.ExpandRunName(runName, inputs)
		if !TitleHasKey(title, p.IdempotencyKey()) {
			t.Errorf("run-name %q titles the run %q, which does not carry %s", runName, title, p.IdempotencyKey())
		}
	}
}

// pollFixture dispatches through the fake GitHub, whose deploy.yml titles
// its runs with the example run-name.
func pollFixture(t *testing.T, conclusion func(map[string]string) string, inProgress int) (*githubtest.Server, *fixture) {
	t.Helper()
	srv, f := newDispatchFixture(t)
	srv.SetWorkflow("acme/api", "deploy.yml", githubtest.WorkflowSpec{
		RunName: deploytest.ExampleRunName(t), Conclusion: conclusion, InProgress: inProgress,
	})
	return srv, f
}

func TestPollDispatchFollowsItsRun(t *testing.T) {
	for _, tc := range []struct {
		conclusion string
		state      deploy.State
	}{
		{"success", deploy.StateSucceeded},
		{"failure", deploy.StateFailed},
		{"cancelled", deploy.StateFailed},
		{"timed_out", deploy.StateFailed},
		{"action_required", deploy.StateFailed},
		{"skipped", deploy.StateFailed},
	} {
		t.Run(tc.conclusion, func(t *testing.T) {
			srv, f := pollFixture(t, func(map[string]string) string { return tc.conclusion }, 1)
			ctx := context.Background()
			since := time.Now()
			p := testPayload()
			if _, err := f.tr.Trigger(ctx, dispatchTarget(), p); err != nil {
				t.Fatal(err)
			}
			d := srv.Dispatches("acme/api")[0]
			srv.ResetRequests()

			// One list finds the run, still in progress.
			got, err := f.PollDispatch(ctx, dispatchTarget(), p, since, 0)
			if err != nil {
				t.Fatal(err)
			}
			wr := srv.WorkflowRuns("acme/api")[0]
			if got.ID != d.RunID || got.State != deploy.StateRunning || got.URL != wr.HTMLURL || got.URL == "" || got.Number != 1 {
				t.Fatalf("search: %+v; want run %d running at %s", got, d.RunID, wr.HTMLURL)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Pattern != listRuns {
				t.Fatalf("search made %v; want one list", patterns(reqs))
			}
			q := reqs[0].Query
			if q.Get("event") != "workflow_dispatch" || !strings.HasPrefix(q.Get("created"), ">=") {
				t.Errorf("search query %v; want event=workflow_dispatch and created=>=…", q)
			}
			if c, err := time.Parse(time.RFC3339, strings.TrimPrefix(q.Get("created"), ">=")); err != nil || c.After(since) {
				t.Errorf("created filter %q is not at or before the dispatch (%v)", q.Get("created"), err)
			}

			// Then one GET per poll, until it completes.
			srv.ResetRequests()
			got, err = f.PollDispatch(ctx, dispatchTarget(), p, since, got.ID)
			if err != nil || got.State != tc.state || got.Conclusion != tc.conclusion || got.URL != wr.HTMLURL {
				t.Fatalf("poll: %+v, %v; want %s (%s)", got, err, tc.state, tc.conclusion)
			}
			if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].Pattern != getRun {
				t.Errorf("poll made %v; want one GET of the run", patterns(reqs))
			}
			if tc.state == deploy.StateFailed && !strings.Contains(got.Reason(), "concluded "+tc.conclusion) {
				t.Errorf("Reason() = %q; want it to name the conclusion", got.Reason())
			}
		})
	}
}

// Two dispatches of one workflow race: each execution finds its own run,
// never the other's, however the runs are ordered, and a run whose key
// merely starts like ours is not ours.
func TestPollDispatchTellsConcurrentRunsApart(t *testing.T) {
	srv, f := pollFixture(t, func(in map[string]string) string {
		if in["attempt"] == "1" {
			return "success"
		}
		return "failure"
	}, 0)
	ctx := context.Background()
	since := time.Now()
	a := testPayload()
	a.Attempt = 1
	decoy := a
	decoy.Attempt = 10 // key run-42-qa-10: starts with run-42-qa-1
	b := testPayload()
	b.RunID, b.Stage, b.Attempt = "run-43", "prod", 2
	for _, p := range []deploy.Payload{b, decoy, a} {
		if _, err := f.tr.Trigger(ctx, dispatchTarget(), p); err != nil {
			t.Fatal(err)
		}
	}
	runOf := map[string]int64{}
	for _, d := range srv.Dispatches("acme/api") {
		runOf[d.Inputs["run_id"]+"-"+d.Inputs["stage"]+"-"+d.Inputs["attempt"]] = d.RunID
	}
	for _, p := range []deploy.Payload{a, b, decoy} {
		got, err := f.PollDispatch(ctx, dispatchTarget(), p, since, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := runOf[p.IdempotencyKey()]; got.ID != want {
			t.Errorf("%s found run %d; want %d", p.IdempotencyKey(), got.ID, want)
		}
	}
	if got, _ := f.PollDispatch(ctx, dispatchTarget(), a, since, 0); got.State != deploy.StateSucceeded {
		t.Errorf("run of attempt 1: %+v; want succeeded", got)
	}
	if got, _ := f.PollDispatch(ctx, dispatchTarget(), b, since, 0); got.State != deploy.StateFailed {
		t.Errorf("run of attempt 2: %+v; want failed", got)
	}
}

// A workflow without the key in its run-name (GitHub then titles runs
// with the workflow's name) is never matched: the search stays pending and
// the stage's timeout decides.
func TestPollDispatchWithoutRunName(t *testing.T) {
	srv, f := newDispatchFixture(t)
	ctx := context.Background()
	since := time.Now()
	if _, err := f.tr.Trigger(ctx, dispatchTarget(), testPayload()); err != nil {
		t.Fatal(err)
	}
	if wr := srv.WorkflowRuns("acme/api"); len(wr) != 1 || wr[0].Title != "deploy" {
		t.Fatalf("runs %+v; want one titled with the workflow's name", wr)
	}
	got, err := f.PollDispatch(ctx, dispatchTarget(), testPayload(), since, 0)
	if err != nil || got.State != deploy.StatePending || got.ID != 0 {
		t.Errorf("got %+v, %v; want pending", got, err)
	}
}

// A dispatch before since (another execution's, earlier) is not searched.
func TestPollDispatchSearchesFromTheExecution(t *testing.T) {
	srv, f := pollFixture(t, nil, 0)
	ctx := context.Background()
	if _, err := f.tr.Trigger(ctx, dispatchTarget(), testPayload()); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	got, err := f.PollDispatch(ctx, dispatchTarget(), testPayload(), later, 0)
	if err != nil || got.ID != 0 {
		t.Errorf("a run created an hour before since was found: %+v, %v", got, err)
	}
	if n := srv.Count(listRuns); n != 1 {
		t.Errorf("%d lists", n)
	}
}

func TestPollDispatchByWorkflowID(t *testing.T) {
	srv, f := newDispatchFixture(t)
	srv.SetWorkflow("acme/api", "123456", githubtest.WorkflowSpec{RunName: deploytest.ExampleRunName(t)})
	tgt := dispatchTarget()
	tgt.Settings = Settings{Workflow: "123456"}
	ctx := context.Background()
	if _, err := f.tr.Trigger(ctx, tgt, testPayload()); err != nil {
		t.Fatal(err)
	}
	got, err := f.PollDispatch(ctx, tgt, testPayload(), time.Now(), 0)
	if err != nil || got.ID != srv.Dispatches("acme/api")[0].RunID || got.State != deploy.StateRunning {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestPollDispatchErrors(t *testing.T) {
	srv, f := pollFixture(t, nil, 0)
	ctx := context.Background()
	p := testPayload()

	// No such workflow (or no actions: read): permanent.
	srv.FailNext(listRuns, 404, 1)
	_, err := f.PollDispatch(ctx, dispatchTarget(), p, time.Now(), 0)
	var e *deploy.Error
	if !errors.As(err, &e) || !deploy.IsPermanent(err) || e.StatusCode != 404 {
		t.Fatalf("404: err = %v; want permanent 404", err)
	}
	if !strings.HasPrefix(err.Error(), "poll workflow run for deploy-workflow: list runs of deploy.yml in acme/api: 404") {
		t.Errorf("error text: %v", err)
	}
	// A run that is gone: permanent.
	if _, err := f.PollDispatch(ctx, dispatchTarget(), p, time.Now(), 99999); !deploy.IsPermanent(err) {
		t.Errorf("unknown run: err = %v; want permanent", err)
	}
	// GitHub failing: transient, ask again later.
	srv.FailNext(getRun, 502, 10)
	if _, err := f.PollDispatch(ctx, dispatchTarget(), p, time.Now(), 1); err == nil || deploy.IsPermanent(err) {
		t.Errorf("502: err = %v; want a transient error", err)
	}
	// Misconfiguration.
	wrong := dispatchTarget()
	wrong.Kind = "webhook"
	if _, err := f.PollDispatch(ctx, wrong, p, time.Now(), 0); !deploy.IsPermanent(err) {
		t.Errorf("webhook target: %v", err)
	}
	f.tr.GitHub = nil
	if _, err := f.PollDispatch(ctx, dispatchTarget(), p, time.Now(), 0); !deploy.IsPermanent(err) {
		t.Errorf("no client: %v", err)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path+r.Query.Encode()+string(r.Body), testSecret) {
			t.Errorf("a constraint secret reached GitHub: %s %s", r.Method, r.Path)
		}
	}
	if strings.Contains(f.logs.String(), testSecret) {
		t.Errorf("secret in logs")
	}
}

func patterns(reqs []githubtest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Pattern)
	}
	return out
}

// README shows the same run-name as the example workflow.
func TestREADMEShowsTheExampleRunName(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "run-name: " + deploytest.ExampleRunName(t); !strings.Contains(string(data), want) {
		t.Errorf("README.md does not show %q", want)
	}
}

// The driver's Poll: pending until the run is found (slowing down after
// two minutes without it), then the run's state and page; the timeout's
// account names what was missing.
func TestDriverPollsTheRun(t *testing.T) {
	srv, f := pollFixture(t, func(map[string]string) string { return "failure" }, 1)
	ctx := context.Background()
	p := testPayload()
	if got := (Driver{}).Learns(&f.tr.Env, dispatchTarget()); got != deploy.ByPolling {
		t.Errorf("Learns = %s", got)
	}
	if got := (Driver{}).Learns(&deploy.Env{}, dispatchTarget()); got != deploy.ByCallback {
		t.Errorf("without GitHub clients: Learns = %s", got)
	}
	now := time.Now()
	c := deploy.Check{Payload: p, Began: now, Triggered: now, Now: now}
	if got, err := (Driver{}).Poll(ctx, &f.tr.Env, dispatchTarget(), c); err != nil || got != (deploy.Status{State: deploy.StatePending}) {
		t.Errorf("before the dispatch: %+v, %v", got, err)
	}
	c.Now = now.Add(3 * time.Minute)
	if got, _ := (Driver{}).Poll(ctx, &f.tr.Env, dispatchTarget(), c); got.Wait != time.Minute {
		t.Errorf("still not found after two minutes: %+v; want a minute's wait", got)
	}
	want := "no callback, and no run of deploy.yml has run-42-qa-1 in its title (its run-name must carry it: see README)"
	if got := (Driver{}).Overdue(dispatchTarget(), c); got != want {
		t.Errorf("Overdue = %q, want %q", got, want)
	}

	if _, err := f.tr.Trigger(ctx, dispatchTarget(), p); err != nil {
		t.Fatal(err)
	}
	run := srv.WorkflowRuns("acme/api")[0]
	got, err := (Driver{}).Poll(ctx, &f.tr.Env, dispatchTarget(), c)
	id := strconv.FormatInt(run.ID, 10)
	if err != nil || got != (deploy.Status{State: deploy.StateRunning, Ref: id, URL: run.HTMLURL}) {
		t.Fatalf("found: %+v, %v", got, err)
	}
	c.Ref = got.Ref
	if got := (Driver{}).Overdue(dispatchTarget(), c); got != "workflow run "+id+" still running" {
		t.Errorf("Overdue = %q", got)
	}
	got, err = (Driver{}).Poll(ctx, &f.tr.Env, dispatchTarget(), c)
	if err != nil || got.State != deploy.StateFailed || !strings.Contains(got.Reason, "concluded failure") {
		t.Errorf("completed: %+v, %v", got, err)
	}
}
