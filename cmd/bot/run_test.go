package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/internal/action"
	"github.com/shipbot/shipbot/internal/deploy/deploytest"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/servicetest"
)

// The secrets of these tests: each must never reach the job log except in
// an ::add-mask:: command.
const (
	actionToken = "ghs_workflowTokenNeverPrinted0123456789"
	qaKey       = "qa-constraint-Secret-4f9d27b1"
	prodKey     = "prod-constraint-Secret-8c1e55a0"
)

const actionRepoConfig = `version: 1
release:
  tag_prefix: v
  initial: 0.1.0
gate:
  approvals: 1
stages:
  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
`

// actionTargets is the targets input: constraint secrets come from the
// environment, as a workflow's env: block passes them.
func actionTargets(url string) string {
	return fmt.Sprintf(`targets:
  spinnaker-qa:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${SPINNAKER_QA_KEY}
    repos: [acme/api]
  spinnaker-prod:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod
    constraints:
      deploy_key: ${SPINNAKER_PROD_KEY}
    repos: [acme/api]
`, url)
}

// trigger is one request a fake target received.
type trigger struct {
	Path    string
	Payload map[string]any
}

// fakeTarget stands in for Spinnaker's Echo: it answers every trigger at
// once (200 {"eventProcessed":true}) unless told to refuse a stage.
type fakeTarget struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []trigger
	status map[string]int // stage → status to answer instead of 200
	// report, when set, is the outcome each stage reports to its
	// callback_url after answering ("" reports nothing).
	report map[string]string
	wg     sync.WaitGroup
}

func newFakeTarget(t *testing.T) *fakeTarget {
	ft := &fakeTarget{status: map[string]int{}, report: map[string]string{}}
	ft.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		ft.mu.Lock()
		ft.got = append(ft.got, trigger{Path: r.URL.Path, Payload: p})
		code := ft.status[fmt.Sprint(p["stage"])]
		ft.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if code != 0 {
			w.WriteHeader(code)
			fmt.Fprint(w, `{"error":"Bad Request","message":"payload constraints not met"}`)
			return
		}
		fmt.Fprintf(w, `{"eventProcessed":true,"eventId":"evt-%d"}`, len(ft.got))
		ft.mu.Lock()
		state := ft.report[fmt.Sprint(p["stage"])]
		ft.mu.Unlock()
		if callback, _ := p["callback_url"].(string); state != "" {
			ft.wg.Add(1)
			go func() {
				defer ft.wg.Done()
				time.Sleep(50 * time.Millisecond)
				body := fmt.Sprintf(`{"state":%q,"url":"https://spinnaker.example/pipelines/1"}`, state)
				resp, err := http.Post(callback, "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("callback: %v", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("callback answered %s", resp.Status)
				}
			}()
		}
	}))
	t.Cleanup(func() { ft.wg.Wait(); ft.srv.Close() })
	return ft
}

func (ft *fakeTarget) triggers() []trigger {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.got)
}

func (ft *fakeTarget) stages() []string {
	var out []string
	for _, tr := range ft.triggers() {
		out = append(out, fmt.Sprint(tr.Payload["stage"]))
	}
	return out
}

// actionRig is a repository on the fake GitHub with one approved, merged
// pull request, a local target, and the workflow environment of a job that
// runs the action for that merge.
type actionRig struct {
	gh      *githubtest.Server
	target  *fakeTarget
	dir     string
	pr      int
	sha     string // the merge commit
	before  string // main before the merge
	output  string // GITHUB_OUTPUT
	summary string // GITHUB_STEP_SUMMARY
	// freshState: see rigOptions.
	freshState bool
	// env is the job's environment, as the runner sets it for the
	// action's step; clock paces its writes; pollEvery is its engine's.
	env       map[string]string
	clock     pacing.Clock
	pollEvery time.Duration
}

// setenv sets key in the environment of the rig's next jobs.
func (r *actionRig) setenv(key, value string) { r.env[key] = value }

// getenv reads the rig's job environment.
func (r *actionRig) getenv(key string) string { return r.env[key] }

// job is the rig's next job as `bot run` takes it: the environment as
// set now, the rig's pace clock.
func (r *actionRig) job() job {
	env := maps.Clone(r.env)
	return job{lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, paceClock: r.clock,
		pollEvery: r.pollEvery}
}

type rigOptions struct {
	labels   []string
	approved bool
	config   string // .github/shipbot.yml; default actionRepoConfig
	// classic protection readable (an App with Administration: read);
	// false: GITHUB_TOKEN's view, 403 on classic protection, a ruleset
	// protects the branch.
	adminRead bool
	// files are what the pull request changes (default: a placeholder).
	files map[string]string
	// tags are on main before the merge; default v1.4.2.
	tags []string
	// title is the pull request's; default "feat: search".
	title string
	// now is the fake GitHub's clock (merge times, check runs); default
	// the wall clock.
	now func() time.Time
	// freshState starts every job with an empty RUNNER_TEMP, as a new
	// runner does. By default it holds an empty state database, migrated
	// once per test process: the job finds nothing to migrate. Migrating
	// from nothing under -race, 365 ms a job, was a third of these tests'
	// CPU; it is tested where it is the subject (internal/store) and by the
	// tests that set this.
	freshState bool
}

func newActionRig(t *testing.T, o rigOptions) *actionRig {
	t.Helper()
	var ghOpts []githubtest.Option
	if o.now != nil {
		ghOpts = append(ghOpts, githubtest.WithClock(o.now))
	}
	r := &actionRig{gh: githubtest.New(ghOpts...), target: newFakeTarget(t), dir: t.TempDir(), freshState: o.freshState,
		env: map[string]string{}, pollEvery: processJob.pollEvery,
		// A job's writes are paced under GitHub's limits on a clock the
		// test drives: a catch-up of 50 merges needs minutes of write
		// windows.
		clock: pacing.NewVirtualClock(time.Now())}
	t.Cleanup(r.gh.Close)
	gh := r.gh
	gh.AddStaticToken(actionToken)
	if o.config == "" {
		o.config = actionRepoConfig
	}
	gh.AddRepo("acme/api", githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml": o.config}})
	gh.SetPermission("acme/api", "bob", "write")
	if o.adminRead {
		gh.SetBranchProtection("acme/api", "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1})
	} else {
		gh.SetAdministrationReadDenied("acme/api", true)
		gh.AddRuleset("acme/api", githubtest.Ruleset{Name: "main", Branches: []string{"~DEFAULT_BRANCH"},
			PullRequest: &githubtest.PullRequestRule{RequiredApprovingReviewCount: 1}})
	}
	if o.tags == nil {
		o.tags = []string{"v1.4.2"}
	}
	for _, tag := range o.tags {
		gh.AddTag("acme/api", tag, gh.BranchSHA("acme/api", "main"))
	}
	if o.title == "" {
		o.title = "feat: search"
	}
	r.pr = gh.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: o.title, Author: "alice", Labels: o.labels, Files: o.files})
	if o.approved {
		gh.AddReview("acme/api", r.pr, "bob", "APPROVED", gh.PullRequest("acme/api", r.pr).HeadSHA)
	}
	r.before = gh.BranchSHA("acme/api", "main")
	r.sha = gh.Merge("acme/api", r.pr, "alice")
	r.output = filepath.Join(r.dir, "github_output")
	r.summary = filepath.Join(r.dir, "step_summary")
	for _, f := range []string{r.output, r.summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runnerTemp := filepath.Join(r.dir, "runner_temp")
	if err := os.Mkdir(runnerTemp, 0o755); err != nil {
		t.Fatal(err)
	}
	r.prepareState(t, runnerTemp)
	// Everything the runner sets for the action's steps, and the inputs as
	// the action's run step passes them (INPUT_ + the name upper-cased,
	// hyphens kept, as the runner names them for a Docker action).
	for k, v := range map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_EVENT_NAME":   "push",
		"GITHUB_TOKEN":        "",
		"GITHUB_API_URL":      gh.URL(),
		"GITHUB_SERVER_URL":   "https://github.example",
		"GITHUB_REPOSITORY":   "acme/api",
		"GITHUB_SHA":          r.sha,
		"GITHUB_REF":          "refs/heads/main",
		"GITHUB_RUN_ID":       "4242",
		"GITHUB_RUN_ATTEMPT":  "1",
		"GITHUB_WORKSPACE":    filepath.Join(r.dir, "workspace"),
		"GITHUB_OUTPUT":       r.output,
		"GITHUB_STEP_SUMMARY": r.summary,
		"RUNNER_TEMP":         runnerTemp,
		"SPINNAKER_QA_KEY":    qaKey,
		"SPINNAKER_PROD_KEY":  prodKey,
		"INPUT_GITHUB-TOKEN":  actionToken,
		"INPUT_CONFIG":        ".github/shipbot.yml",
		"INPUT_TARGETS":       actionTargets(r.target.srv.URL),
		"INPUT_STAGES":        "",
		"INPUT_DRY-RUN":       "false",
		"INPUT_WAIT":          "true",
		"INPUT_TIMEOUT":       "2m",
	} {
		r.setenv(k, v)
	}
	r.pushEvent(t)
	return r
}

func (r *actionRig) writeEvent(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join(r.dir, "event.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	r.setenv("GITHUB_EVENT_NAME", name)
	r.setenv("GITHUB_EVENT_PATH", path)
}

// newJob makes the environment that of a new job on a new runner: run id,
// empty output files, a fresh RUNNER_TEMP.
func (r *actionRig) newJob(t *testing.T, runID string) {
	t.Helper()
	r.setenv("GITHUB_RUN_ID", runID)
	for _, f := range []string{r.output, r.summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runnerTemp := t.TempDir()
	r.prepareState(t, runnerTemp)
	r.setenv("RUNNER_TEMP", runnerTemp)
}

// prepareState puts an empty state database in a job's RUNNER_TEMP unless
// the rig starts jobs fresh (see rigOptions.freshState).
func (r *actionRig) prepareState(t *testing.T, runnerTemp string) {
	t.Helper()
	if !r.freshState {
		servicetest.CreateDB(t, filepath.Join(runnerTemp, "shipbot.db"))
	}
}

// pushEvent makes the job one triggered by the merge's push to main.
func (r *actionRig) pushEvent(t *testing.T) {
	r.writeEvent(t, "push", r.gh.PushEvent("acme", "api", "refs/heads/main", r.before, r.sha))
}

// prClosedEvent makes the job one triggered by pull_request closed.
func (r *actionRig) prClosedEvent(t *testing.T) {
	r.writeEvent(t, "pull_request", r.gh.PullRequestEvent("acme", "api", r.pr, "closed"))
}

// jobLog keeps stdout and stderr apart and, in the order written, together,
// as the runner's log shows them.
type jobLog struct {
	mu       sync.Mutex
	all      bytes.Buffer
	out, err bytes.Buffer
}

type logStream struct {
	l   *jobLog
	own *bytes.Buffer
}

func (s logStream) Write(p []byte) (int, error) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.own.Write(p)
	return s.l.all.Write(p)
}

// result is one `bot run` as the runner sees it afterwards.
type result struct {
	code           int
	stdout, stderr string
	log            string // both streams, interleaved as written
	outputs        map[string]string
	summary        string
}

// runJob runs `bot run` exactly as the action's run step does.
func (r *actionRig) runJob(t *testing.T) result {
	t.Helper()
	l := &jobLog{}
	code := exitCode("run", r.job().run(context.Background(), nil, logStream{l, &l.out}, logStream{l, &l.err}), logStream{l, &l.err})
	// Read without l.mu on purpose: nothing may write to the job's
	// streams once it returned, and under -race a late write fails the
	// test here (one did: the engine's last report of a finished rollout,
	// scheduled after the reporter's flush, before pipeline.Engine.Wait).
	res := result{code: code, stdout: l.out.String(), stderr: l.err.String(), log: l.all.String()}
	res.outputs = parseOutputs(t, r.output)
	sum, err := os.ReadFile(r.summary)
	if err != nil {
		t.Fatal(err)
	}
	res.summary = string(sum)
	checkSecrets(t, res.log)
	return res
}

// parseOutputs reads a GITHUB_OUTPUT file as the runner does: name=value
// lines, and name<<DELIMITER ... DELIMITER blocks.
func parseOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				t.Fatalf("GITHUB_OUTPUT: %s<<%s never closed:\n%s", name, delim, data)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("GITHUB_OUTPUT: malformed line %q:\n%s", line, data)
		}
		if _, dup := out[name]; dup {
			t.Errorf("GITHUB_OUTPUT: %s written twice:\n%s", name, data)
		}
		out[name] = val
	}
	return out
}

// checkSecrets fails the test when a secret shows in the job log other
// than in an ::add-mask:: command, or when a mask comes after anything
// else was printed (the runner hides a value only from its mask on).
func checkSecrets(t *testing.T, log string) {
	t.Helper()
	seenOther := false
	for i, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "::add-mask::") {
			if seenOther {
				t.Errorf("log line %d: a mask after other output: %q", i+1, line)
			}
			continue
		}
		if line != "" {
			seenOther = true
		}
		for _, s := range []string{actionToken, qaKey, prodKey} {
			if strings.Contains(line, s) {
				t.Errorf("log line %d shows a secret: %q", i+1, line)
			}
		}
	}
}

func masked(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if v, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			out = append(out, v)
		}
	}
	return out
}

// annotations returns the workflow commands of one kind ("error",
// "notice", "warning") in the log, as "title: message".
func annotations(log, kind string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		rest, ok := strings.CutPrefix(line, "::"+kind)
		if !ok || !(strings.HasPrefix(rest, "::") || strings.HasPrefix(rest, " ")) {
			continue
		}
		props, msg, _ := strings.Cut(strings.TrimPrefix(rest, " "), "::")
		title := strings.TrimPrefix(props, "title=")
		out = append(out, title+": "+msg)
	}
	return out
}

func hasAnnotation(log, kind, substr string) bool {
	for _, a := range annotations(log, kind) {
		if strings.Contains(a, substr) {
			return true
		}
	}
	return false
}

// wantSummary checks the step summary holds each of wants.
func wantSummary(t *testing.T, res result, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(res.summary, want) {
			t.Errorf("step summary lacks %q:\n%s", want, res.summary)
		}
	}
}

func wantOutputs(t *testing.T, res result, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := res.outputs[k]; !ok || got != v {
			t.Errorf("output %s = %q (set: %v); want %q", k, got, ok, v)
		}
	}
}

func (r *actionRig) writes() []string {
	var out []string
	for _, req := range r.gh.Requests() {
		if req.Method != http.MethodGet {
			out = append(out, req.Pattern)
		}
	}
	return out
}

func TestRunHandsOffEveryStage(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{
		"version": "1.5.0", "tag": "v1.5.0", "deployed": "qa,prod", "skipped": "",
		"run-url": "https://github.example/acme/api/actions/runs/4242",
	})
	// Both stages triggered once, in order, each with its own constraint
	// secret and only that one.
	trs := r.target.triggers()
	if got := r.target.stages(); !slices.Equal(got, []string{"qa", "prod"}) {
		t.Fatalf("triggered stages %v; want [qa prod]", got)
	}
	for i, key := range []string{qaKey, prodKey} {
		p := trs[i].Payload
		if p["deploy_key"] != key || p["tag"] != "v1.5.0" || p["sha"] != r.sha || p["repository"] != "acme/api" {
			t.Errorf("trigger %d payload: %v", i, p)
		}
	}
	// The release and what the PR shows.
	if tags := r.gh.Tags("acme/api"); !slices.ContainsFunc(tags, func(tg githubtest.Tag) bool { return tg.Name == "v1.5.0" }) {
		t.Errorf("no tag v1.5.0: %v", tags)
	}
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout"); !ok || cr.Conclusion != "success" {
		t.Errorf("shipbot/rollout check run: %+v (found %v)", cr, ok)
	}
	if len(r.gh.Comments("acme/api", r.pr)) != 1 {
		t.Errorf("want one sticky comment, got %d", len(r.gh.Comments("acme/api", r.pr)))
	}
	// The step summary's stage table.
	wantSummary(t, res, "Released **v1.5.0**", "| stage | state |", "| qa | passed (handed off) |", "| prod | passed (handed off) |")
	if !hasAnnotation(res.stdout, "notice", "released v1.5.0") {
		t.Errorf("no notice for the release:\n%s", res.stdout)
	}
	if errs := annotations(res.stdout, "error"); len(errs) > 0 {
		t.Errorf("errors annotated on success: %v", errs)
	}
	// Every secret is masked, first.
	for _, s := range []string{actionToken, qaKey, prodKey} {
		if !slices.Contains(masked(res.stdout), s) {
			t.Errorf("%q not masked:\n%s", s, res.stdout)
		}
	}
	// GITHUB_TOKEN cannot read classic branch protection: the log says
	// which permission is missing and that rulesets stood in.
	if !hasAnnotation(res.stdout, "warning", "Administration") || !hasAnnotation(res.stdout, "warning", "ruleset") {
		t.Errorf("no warning naming the missing permission:\n%s", res.stdout)
	}
}

// A wave stage triggers each target with its own key and shows a row per
// target under the stage in the step summary.
func TestRunWaveShowsEveryTarget(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, config: strings.Replace(actionRepoConfig,
		"    target: spinnaker-prod\n", "    targets: [spinnaker-qa, spinnaker-prod]\n", 1)})
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	trs := r.target.triggers()
	if len(trs) != 3 {
		t.Fatalf("%d triggers; want qa, then prod's two targets", len(trs))
	}
	var targets []string
	for _, tr := range trs[1:] {
		if tr.Payload["stage"] != "prod" {
			t.Errorf("trigger %v; want prod", tr.Payload)
		}
		targets = append(targets, fmt.Sprint(tr.Payload["target"]))
	}
	slices.Sort(targets)
	if want := []string{"spinnaker-prod", "spinnaker-qa"}; !slices.Equal(targets, want) {
		t.Errorf("prod triggers' targets %v; want %v", targets, want)
	}
	wantSummary(t, res, "| prod | passed (handed off) |", "| ↳ spinnaker-qa | passed (handed off) |", "| ↳ spinnaker-prod | passed (handed off) |")
}

// A job takes no /shipbot commands, so a stage with approval: true fails
// as soon as the run reaches it, saying why, instead of holding the job to
// its timeout while the PR asks for a comment nobody reads.
func TestRunStageNeedingApprovalFailsAtOnce(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, config: strings.Replace(actionRepoConfig,
		"    target: spinnaker-prod\n", "    target: spinnaker-prod\n    approval: true\n", 1)})
	start := time.Now()
	res := r.runJob(t) // input timeout 2m
	if res.code == 0 {
		t.Fatalf("a rollout stopped before prod exited 0\n%s", res.log)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: the job waited for an approval it cannot take", d)
	}
	if got := r.target.stages(); !slices.Equal(got, []string{"qa"}) {
		t.Errorf("triggered %v; want qa only", got)
	}
	const why = "needs approval (approval: true), which the Action cannot take: /shipbot approve reaches shipbot only as a GitHub App (bot serve)"
	wantSummary(t, res, "| prod | failed | "+why+" |")
	if !hasAnnotation(res.stdout, "error", "stage prod failed: "+why) {
		t.Errorf("no ::error:: saying why prod failed:\n%s", res.stdout)
	}
	cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout")
	if !ok || cr.Conclusion != "failure" || !strings.Contains(cr.Summary, "| prod | v1.5.0 | failed: "+why+" |") || strings.Contains(cr.Summary, "waiting for approval") {
		t.Errorf("rollout check run %s:\n%s\nwant failure, prod failed for want of an approval", cr.Conclusion, cr.Summary)
	}
}

func TestRunFromPullRequestClosedEvent(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, adminRead: true})
	r.prClosedEvent(t)
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"version": "1.5.0", "tag": "v1.5.0", "deployed": "qa,prod"})
	if got := annotations(res.stdout, "warning"); len(got) > 0 {
		t.Errorf("protection was readable, yet warnings: %v", got)
	}
	// The push of the same merge runs the workflow again, on a new runner
	// (fresh state): the version is not cut twice, the tag on the commit is
	// reused.
	r.pushEvent(t)
	r.newJob(t, "4243")
	res = r.runJob(t)
	if res.code != 0 {
		t.Fatalf("second run: exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"version": "1.5.0", "tag": "v1.5.0"})
	if n := r.gh.Count("POST /repos/{owner}/{repo}/releases"); n != 1 {
		t.Errorf("%d releases created; want 1", n)
	}
	// Without shared state, the deployments on GitHub say the stages
	// went out already: nothing goes out again.
	if got := r.target.stages(); !slices.Equal(got, []string{"qa", "prod"}) {
		t.Errorf("triggered %v", got)
	}
	// On a runner that kept the state file (self-hosted), the merge is
	// known as handled: nothing is triggered again.
	before := len(r.target.triggers())
	runnerTemp := r.getenv("RUNNER_TEMP")
	r.newJob(t, "4244")
	r.setenv("RUNNER_TEMP", runnerTemp)
	res = r.runJob(t)
	if res.code != 0 {
		t.Fatalf("third run: exit %d\n%s", res.code, res.log)
	}
	if !hasAnnotation(res.stdout, "notice", "handled already") {
		t.Errorf("no notice that the merge was handled:\n%s", res.stdout)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0"})
	if n := len(r.target.triggers()); n != before {
		t.Errorf("%d more triggers for a merge handled already", n-before)
	}
}

func TestRunSkipsALabelledStage(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, labels: []string{"no-deploy-to-prod"}})
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa", "skipped": "prod"})
	if got := r.target.stages(); !slices.Equal(got, []string{"qa"}) {
		t.Errorf("triggered %v; want only qa", got)
	}
	if !strings.Contains(res.summary, "| prod | skipped |") {
		t.Errorf("summary:\n%s", res.summary)
	}
}

func TestRunRefusedByTheGate(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: false})
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("a refused merge exited 0\n%s", res.log)
	}
	wantOutputs(t, res, map[string]string{"version": "", "tag": "", "deployed": "", "skipped": ""})
	if !hasAnnotation(res.stdout, "error", "approval") {
		t.Errorf("no ::error:: with the reason:\n%s", res.stdout)
	}
	if !strings.Contains(res.summary, "Refused by the merge gate") {
		t.Errorf("summary:\n%s", res.summary)
	}
	for _, tg := range r.gh.Tags("acme/api") {
		if tg.Name != "v1.4.2" {
			t.Errorf("a refused merge was tagged %s", tg.Name)
		}
	}
	if n := len(r.target.triggers()); n != 0 {
		t.Errorf("%d triggers sent for a refused merge", n)
	}
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout"); !ok || cr.Conclusion != "action_required" {
		t.Errorf("shipbot/rollout: %+v (found %v)", cr, ok)
	}
}

func TestRunFailedStage(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.target.status["qa"] = http.StatusBadRequest
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("a failed stage exited 0\n%s", res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "", "skipped": ""})
	if got := r.target.stages(); !slices.Equal(got, []string{"qa"}) {
		t.Errorf("triggered %v; prod must not follow a failed qa", got)
	}
	if !hasAnnotation(res.stdout, "error", "stage qa failed: trigger stage qa via spinnaker-qa: 400 Bad Request") ||
		!hasAnnotation(res.stdout, "error", "not reached: prod") {
		t.Errorf("no ::error:: naming the stage and why:\n%s", res.stdout)
	}
	wantSummary(t, res, "| qa | failed | trigger stage qa via spinnaker-qa: 400 Bad Request", "| prod | not reached |")
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout"); !ok || cr.Conclusion != "failure" {
		t.Errorf("shipbot/rollout: %+v (found %v)", cr, ok)
	}
}

func TestRunOnlyTheStagesAskedFor(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.setenv("INPUT_STAGES", " qa ")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa", "skipped": "prod"})
	if got := r.target.stages(); !slices.Equal(got, []string{"qa"}) {
		t.Errorf("triggered %v; want only qa", got)
	}
}

func TestRunUnknownStageInput(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.setenv("INPUT_STAGES", "qa,prdo")
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("a stages input naming no stage exited 0\n%s", res.log)
	}
	if !hasAnnotation(res.stdout, "error", "input stages names prdo, which .github/shipbot.yml at") ||
		!hasAnnotation(res.stdout, "error", "(its stages: qa,prod)") {
		t.Errorf("no ::error:: naming the unknown stage:\n%s", res.stdout)
	}
	// Refused before anything happened: no release, no trigger.
	if w := r.writes(); len(w) > 0 {
		t.Errorf("wrote to GitHub: %v", w)
	}
	if n := len(r.target.triggers()); n != 0 {
		t.Errorf("%d triggers", n)
	}
}

func TestRunDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, labels: []string{"no-deploy-to-prod"}, freshState: true})
	r.setenv("INPUT_DRY-RUN", "true")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"version": "1.5.0", "tag": "v1.5.0", "deployed": "", "skipped": "prod"})
	if w := r.writes(); len(w) > 0 {
		t.Errorf("a dry run wrote to GitHub: %v", w)
	}
	if r.gh.Count("*") == 0 {
		t.Error("the dry run read nothing from GitHub")
	}
	if n := len(r.target.triggers()); n != 0 {
		t.Errorf("a dry run sent %d triggers", n)
	}
	for _, want := range []string{"version:  v1.5.0", "skipped (label no-deploy-to-prod)"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, res.stdout)
		}
	}
	if !strings.Contains(res.summary, "dry run") || !strings.Contains(res.summary, "v1.5.0") {
		t.Errorf("summary:\n%s", res.summary)
	}
	if _, err := os.Stat(filepath.Join(r.getenv("RUNNER_TEMP"), "shipbot.db")); err == nil {
		t.Error("a dry run created the state file")
	}
}

func TestRunDryRunRefused(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: false})
	r.setenv("INPUT_DRY-RUN", "true")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("a dry run exits 0 whatever it forecasts: exit %d\n%s", res.code, res.log)
	}
	if !strings.Contains(res.stdout, "REFUSED") {
		t.Errorf("dry run output:\n%s", res.stdout)
	}
	wantOutputs(t, res, map[string]string{"version": "", "tag": ""})
	if w := r.writes(); len(w) > 0 {
		t.Errorf("a dry run wrote to GitHub: %v", w)
	}
}

func TestRunIgnoresOtherEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		event func(r *actionRig) (string, []byte)
	}{
		{"pull_request opened", func(r *actionRig) (string, []byte) {
			pr := r.gh.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: "fix: x"})
			return "pull_request", r.gh.PullRequestEvent("acme", "api", pr, "opened")
		}},
		{"pull_request closed unmerged", func(r *actionRig) (string, []byte) {
			pr := r.gh.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: "fix: x"})
			r.gh.ClosePullRequest("acme/api", pr)
			return "pull_request", r.gh.PullRequestEvent("acme", "api", pr, "closed")
		}},
		{"push of a tag", func(r *actionRig) (string, []byte) {
			return "push", r.gh.PushEvent("acme", "api", "refs/tags/v1.4.2", strings.Repeat("0", 40), r.before)
		}},
		{"push to another branch", func(r *actionRig) (string, []byte) {
			r.gh.AddBranch("acme/api", "feature", "")
			sha := r.gh.AddCommit("acme/api", "feature", "wip", map[string]string{"x": "y"})
			return "push", r.gh.PushEvent("acme", "api", "refs/heads/feature", r.sha, sha)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []string{"false", "true"} {
				r := newActionRig(t, rigOptions{approved: true})
				r.setenv("INPUT_DRY-RUN", dry)
				name, body := tc.event(r)
				r.writeEvent(t, name, body)
				r.gh.ResetRequests()
				res := r.runJob(t)
				if res.code != 0 {
					t.Fatalf("dry-run %s: exit %d\n%s", dry, res.code, res.log)
				}
				if !hasAnnotation(res.stdout, "notice", "nothing to do") {
					t.Errorf("dry-run %s: no notice:\n%s", dry, res.stdout)
				}
				if w := r.writes(); len(w) > 0 {
					t.Errorf("dry-run %s: wrote to GitHub: %v", dry, w)
				}
				if n := len(r.target.triggers()); n != 0 {
					t.Errorf("dry-run %s: %d triggers", dry, n)
				}
				wantOutputs(t, res, map[string]string{"tag": "", "deployed": ""})
			}
		})
	}
}

func TestRunEnvironmentErrors(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.setenv("GITHUB_EVENT_PATH", "")
	res := r.runJob(t)
	if res.code != 2 || !hasAnnotation(res.stdout, "error", "GITHUB_EVENT_PATH") {
		t.Errorf("missing GITHUB_EVENT_PATH: exit %d\n%s", res.code, res.log)
	}
	r.pushEvent(t)
	r.setenv("INPUT_TARGETS", "targets:\n  qa:\n    kind: nope\n")
	res = r.runJob(t)
	if res.code != 2 || !hasAnnotation(res.stdout, "error", "invalid targets") {
		t.Errorf("invalid targets: exit %d\n%s", res.code, res.log)
	}
	if !slices.Contains(masked(res.stdout), actionToken) {
		t.Errorf("token not masked before the targets error:\n%s", res.stdout)
	}
	if code := run([]string{"run", "extra"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("bot run extra: exit %d; want 2", code)
	}
}

// A secret that the target echoes back in an error must not reach the log.
func TestRunSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := bufio.NewReader(req.Body).ReadString(0)
		http.Error(w, "rejected payload: "+body+" token "+req.Header.Get("Authorization"), http.StatusBadRequest)
	}))
	t.Cleanup(echo.Close)
	r.setenv("INPUT_TARGETS", actionTargets(echo.URL))
	res := r.runJob(t) // checkSecrets inspects the log
	if res.code == 0 {
		t.Fatalf("exit 0\n%s", res.log)
	}
	// Nor the step summary, nor what GitHub is told.
	shown := []string{res.summary}
	for _, cr := range r.gh.CheckRuns("acme/api", r.sha) {
		shown = append(shown, cr.Title+cr.Summary+cr.Text)
	}
	for _, c := range r.gh.Comments("acme/api", r.pr) {
		shown = append(shown, c.Body)
	}
	if !strings.Contains(res.summary, "400 Bad Request") {
		t.Errorf("the summary does not say why qa failed:\n%s", res.summary)
	}
	for _, text := range shown {
		for _, s := range []string{actionToken, qaKey, prodKey} {
			if strings.Contains(text, s) {
				t.Errorf("a secret is shown:\n%s", text)
			}
		}
	}
}

// A target's error body is outside text: the step summary (GitHub
// Markdown) shows it escaped, its table intact.
func TestRunStepSummaryEscapesTargetErrors(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "<!-- hide | col |\n![p](https://evil.example/p.png) @acme/security-team", http.StatusBadRequest)
	}))
	t.Cleanup(echo.Close)
	r.setenv("INPUT_TARGETS", actionTargets(echo.URL))
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("exit 0\n%s", res.log)
	}
	for _, bad := range []string{"<!--", "![", "@acme", "https://evil"} {
		if strings.Contains(res.summary, bad) {
			t.Errorf("the step summary has %q:\n%s", bad, res.summary)
		}
	}
	want := "400 Bad Request from " + echo.URL + "/webhooks/webhook/api-qa: &lt;!-- hide \\| col \\| !\\[p\\](https:\u200b//evil.example/p.png) @\u200bacme/security-team"
	want = strings.Replace(want, "http://", "http:\u200b//", 1)
	if !strings.Contains(res.summary, want) {
		t.Errorf("the step summary does not show the error escaped as %q:\n%s", want, res.summary)
	}
}

// takeCallbacks makes the job one on a self-hosted runner that the deploy
// system can reach: SHIPBOT_PUBLIC_URL and SHIPBOT_LISTEN.
func (r *actionRig) takeCallbacks(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r.setenv("SHIPBOT_LISTEN", addr)
	r.setenv("SHIPBOT_PUBLIC_URL", "http://"+addr)
}

func TestRunWaitsForCallbacks(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.takeCallbacks(t)
	r.target.report["qa"], r.target.report["prod"] = "succeeded", "failed"
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("prod reported failure, yet exit 0\n%s", res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa", "skipped": ""})
	wantSummary(t, res, "| qa | passed |", "| prod | failed | the deploy system reported failure")
	if strings.Contains(res.summary, "handed off") {
		t.Errorf("a stage that could wait was handed off:\n%s", res.summary)
	}
	if !hasAnnotation(res.stdout, "error", "stage prod failed") {
		t.Errorf("no ::error:: for prod:\n%s", res.stdout)
	}
}

func TestRunWaitFalseHandsOff(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.takeCallbacks(t)
	r.setenv("INPUT_WAIT", "false")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"deployed": "qa,prod"})
	if !strings.Contains(res.summary, "| prod | passed (handed off) |") {
		t.Errorf("summary:\n%s", res.summary)
	}
}

func TestRunTimesOut(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.takeCallbacks(t) // a stage waits for a callback that never comes
	r.setenv("INPUT_TIMEOUT", "1500ms")
	start := time.Now()
	res := r.runJob(t)
	if res.code == 0 {
		t.Fatalf("a rollout that did not finish exited 0\n%s", res.log)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s for a 1.5s timeout", d)
	}
	if !hasAnnotation(res.stdout, "error", "did not finish within 1.5s") || !hasAnnotation(res.stdout, "error", "unfinished: qa, prod") {
		t.Errorf("no timeout error:\n%s", res.stdout)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": ""})
}

// actionMetadata is what action/action.yml declares.
type actionMetadata struct {
	Inputs map[string]struct {
		Default  *string `yaml:"default"`
		Required bool    `yaml:"required"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Uses  string            `yaml:"uses"`
			Run   string            `yaml:"run"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"runs"`
	Branding map[string]string `yaml:"branding"`
}

// The action's metadata and `bot run` agree: every input declared is one
// bot run reads, and the composite action's run step hands each one over
// as INPUT_<NAME> (a Docker action's names, which bot run reads); the
// defaults parse; the outputs declared are exactly those bot run writes,
// each the run step's.
func TestActionMetadataMatchesBotRun(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "action", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var md actionMetadata
	if err := yaml.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	if md.Runs.Using != "composite" {
		t.Fatalf("runs.using %q; want composite (README: why)", md.Runs.Using)
	}
	// Every step that runs a script names its shell (a composite action
	// must), and every action it uses is pinned by commit.
	runStep := -1
	for i, st := range md.Runs.Steps {
		if st.Run != "" && st.Shell != "bash" {
			t.Errorf("step %d (%s): shell %q; want bash", i, st.ID, st.Shell)
		}
		if st.Uses != "" && !regexp.MustCompile(`@[0-9a-f]{40}$`).MatchString(st.Uses) {
			t.Errorf("step %d uses %s: not pinned by commit SHA", i, st.Uses)
		}
		if st.ID == "run" {
			runStep = i
		}
	}
	if runStep < 0 || !strings.Contains(md.Runs.Steps[runStep].Run, `"$BOT" run`) {
		t.Fatalf("no step with id run that runs bot run: %+v", md.Runs.Steps)
	}
	run := md.Runs.Steps[runStep]
	for name := range md.Inputs {
		// "INPUT_DRY-RUN=$SHIPBOT_IN_DRY_RUN", the variable set from the input.
		m := regexp.MustCompile(`"INPUT_` + regexp.QuoteMeta(strings.ToUpper(name)) + `=\$(\w+)"`).FindStringSubmatch(run.Run)
		if m == nil {
			t.Errorf("the run step does not pass input %s as INPUT_%s", name, strings.ToUpper(name))
			continue
		}
		if got, want := run.Env[m[1]], "${{ inputs."+name+" }}"; got != want {
			t.Errorf("the run step's %s is %q; want %q", m[1], got, want)
		}
	}
	for name, out := range md.Outputs {
		if want := "${{ steps.run.outputs." + name + " }}"; out.Value != want {
			t.Errorf("output %s: value %q; want %q", name, out.Value, want)
		}
	}
	if md.Branding["icon"] == "" || md.Branding["color"] == "" {
		t.Errorf("branding: %v", md.Branding)
	}
	wantInputs := []string{"config", "dry-run", "github-token", "stages", "targets", "timeout", "wait"}
	if got := slices.Sorted(maps.Keys(md.Inputs)); !slices.Equal(got, wantInputs) {
		t.Errorf("inputs %v; want %v", got, wantInputs)
	}
	if d := md.Inputs["github-token"].Default; d == nil || *d != "${{ github.token }}" {
		t.Errorf("github-token default %v; want ${{ github.token }}", d)
	}
	// Feed the declared defaults to ReadEnv the way the runner would, and
	// record which INPUT_ variables it asks for.
	asked := map[string]bool{}
	env := map[string]string{"GITHUB_EVENT_PATH": "/e.json", "GITHUB_REPOSITORY": "acme/api"}
	for name, in := range md.Inputs {
		if in.Required {
			t.Errorf("input %s is required; every input has a default", name)
		}
		if in.Default != nil {
			env["INPUT_"+strings.ToUpper(name)] = *in.Default
		}
	}
	e, err := action.ReadEnv(func(k string) string { asked[k] = true; return env[k] }, os.ReadFile)
	if err != nil {
		t.Fatalf("the declared defaults do not parse: %v", err)
	}
	if e.DryRun || !e.Wait || e.Timeout != 30*time.Minute || len(e.Stages) != 0 || len(e.Targets) != 0 {
		t.Errorf("defaults read as %+v", e)
	}
	for name := range md.Inputs {
		if name == "config" {
			continue // read, and only warned about
		}
		if !asked["INPUT_"+strings.ToUpper(name)] {
			t.Errorf("input %s is declared but bot run never reads INPUT_%s", name, strings.ToUpper(name))
		}
	}
	if !asked["INPUT_CONFIG"] {
		t.Error("input config is never read")
	}
	// The outputs a real run writes.
	r := newActionRig(t, rigOptions{approved: true})
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	if got, want := slices.Sorted(maps.Keys(res.outputs)), slices.Sorted(maps.Keys(md.Outputs)); !slices.Equal(got, want) {
		t.Errorf("bot run writes outputs %v; action.yml declares %v", got, want)
	}
}

// A RUNNER_TEMP that cannot hold the state file (not mounted into the
// container, or not writable) is no reason to fail: the state is the job's
// own and goes to a temporary directory.
func TestRunStateDirFallback(t *testing.T) {
	r := newActionRig(t, rigOptions{approved: true})
	notADir := filepath.Join(r.dir, "file")
	os.WriteFile(notADir, []byte("x"), 0o644)
	r.setenv("RUNNER_TEMP", notADir)
	t.Setenv("TMPDIR", t.TempDir())
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa,prod"})
}

// A token without contents: write cannot tag: the step fails with an
// annotation saying what GitHub answered, and nothing is triggered.
func TestRunGitHubRefusesTheTag(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true})
	r.gh.FailNext("POST /repos/{owner}/{repo}/git/refs", http.StatusForbidden, 10)
	r.gh.FailNext("POST /repos/{owner}/{repo}/releases", http.StatusForbidden, 10)
	res := r.runJob(t)
	if res.code != 1 {
		t.Fatalf("exit %d; want 1\n%s", res.code, res.log)
	}
	if !hasAnnotation(res.stdout, "error", "403") {
		t.Errorf("no ::error:: with GitHub's answer:\n%s", res.stdout)
	}
	if n := len(r.target.triggers()); n != 0 {
		t.Errorf("%d triggers without a release", n)
	}
	// The PR says so, in the comment alone: a shipbot/rollout check run
	// would mark the merge handled, and the next merge's job would not
	// catch it up to try again.
	if crs := r.gh.CheckRuns("acme/api", r.sha); len(crs) != 0 {
		t.Errorf("check runs %+v on the merge whose release was refused; want none", crs)
	}
	cs := r.gh.Comments("acme/api", r.pr)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "GitHub refused the release **v1.5.0**: 403") ||
		!strings.Contains(cs[0].Body, "The job failed on it: re-running the job, or the job of the repository's next merge, tries again.") {
		t.Errorf("comments %+v; want one saying GitHub refused the release and the job failed", cs)
	}
}

// A stage handed off passes once its trigger is accepted: a bake would
// hold the job for the bake time over a deploy whose outcome it does not
// know (here it would outlast the 2m timeout and fail the step).
func TestRunHandOffSkipsTheBake(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, config: strings.Replace(actionRepoConfig,
		"    target: spinnaker-qa\n", "    target: spinnaker-qa\n    bake: 10m\n", 1)})
	start := time.Now()
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the job took %s", d)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa,prod", "skipped": ""})
	wantSummary(t, res,
		"| qa | passed (handed off) | handed off to spinnaker-qa; bake 10m0s not watched: the deploy system owns the outcome |",
		"| prod | passed (handed off) | handed off to spinnaker-prod: the deploy system owns the outcome |",
	)
	if !hasAnnotation(res.stdout, "notice", "deployed: qa,prod (handed off: qa,prod)") {
		t.Errorf("the notice does not say the stages were handed off:\n%s", res.stdout)
	}
}

const dispatchRepoConfig = `version: 1
release:
  tag_prefix: v
  initial: 0.1.0
gate:
  approvals: 1
stages:
  - name: qa
    target: deploy-workflow
  - name: prod
    target: deploy-workflow
`

const dispatchTargetsInput = `targets:
  deploy-workflow:
    kind: github-dispatch
    workflow: deploy.yml
    repos: [acme/api]
`

// newDispatchRig is a job whose stages dispatch deploy.yml, which the fake
// GitHub runs with the example run-name: each run stays in progress for
// two polls, then concludes as conclusion says for its stage. Polling is
// fast, for the test.
func newDispatchRig(t *testing.T, conclusion map[string]string) *actionRig {
	t.Helper()
	r := newActionRig(t, rigOptions{approved: true, config: dispatchRepoConfig})
	r.pollEvery = 50 * time.Millisecond
	r.setenv("INPUT_TARGETS", dispatchTargetsInput)
	r.gh.SetWorkflow("acme/api", "deploy.yml", githubtest.WorkflowSpec{
		RunName: deploytest.ExampleRunName(t), InProgress: 2,
		Conclusion: func(in map[string]string) string {
			if strings.HasPrefix(in["run_id"], "decoy") {
				return "failure"
			}
			return conclusion[in["stage"]]
		},
	})
	return r
}

// runOf is the fake's workflow run started by the dispatch for stage.
func (r *actionRig) runOf(t *testing.T, stage string) githubtest.WorkflowRun {
	t.Helper()
	var id int64
	for _, d := range r.gh.Dispatches("acme/api") {
		if d.Inputs["stage"] == stage && !strings.HasPrefix(d.Inputs["run_id"], "decoy") {
			id = d.RunID
		}
	}
	for _, w := range r.gh.WorkflowRuns("acme/api") {
		if w.ID == id {
			return w
		}
	}
	t.Fatalf("no workflow run for stage %s", stage)
	return githubtest.WorkflowRun{}
}

const (
	listRunsRoute = "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"
	getRunRoute   = "GET /repos/{owner}/{repo}/actions/runs/{run_id}"
)

// In wait mode a github-dispatch stage is not handed off: the job follows
// the workflow run its dispatch started to its conclusion, even while
// other dispatches of the same workflow (another job's, with another key
// in their titles) run and fail beside it.
func TestRunWaitsForDispatchedWorkflowRuns(t *testing.T) {
	t.Parallel()
	r := newDispatchRig(t, map[string]string{"qa": "success", "prod": "success"})
	// Another job dispatches deploy.yml right after each of ours: its runs
	// are newer, look alike (same stage, same attempt) and fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, d := range r.gh.Dispatches("acme/api") {
				if strings.HasPrefix(d.Inputs["run_id"], "decoy") || d.RunID <= int64(seen) {
					continue
				}
				seen = int(d.RunID)
				in := maps.Clone(d.Inputs)
				in["run_id"] = "decoy" + strings.Repeat("0", 27)
				body, _ := json.Marshal(map[string]any{"ref": d.Ref, "inputs": in})
				req, _ := http.NewRequest(http.MethodPost, r.gh.URL()+"repos/acme/api/actions/workflows/deploy.yml/dispatches", bytes.NewReader(body))
				req.Header.Set("Authorization", "token "+actionToken)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	res := r.runJob(t)
	close(stop)
	wg.Wait()
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa,prod", "skipped": ""})
	wantSummary(t, res, "| qa | passed |", "| prod | passed |")
	if strings.Contains(res.summary, "handed off") {
		t.Errorf("a stage that could be followed was handed off:\n%s", res.summary)
	}
	decoys := 0
	for _, d := range r.gh.Dispatches("acme/api") {
		if strings.HasPrefix(d.Inputs["run_id"], "decoy") {
			decoys++
		}
	}
	if decoys != 2 {
		t.Errorf("%d decoy dispatches; the test wanted one beside each stage", decoys)
	}
	// The PR links each stage's own run.
	c := r.gh.Comments("acme/api", r.pr)
	if len(c) != 1 {
		t.Fatalf("%d comments", len(c))
	}
	for _, stage := range []string{"qa", "prod"} {
		if w := r.runOf(t, stage); w.Conclusion != "success" || !strings.Contains(c[0].Body, "[execution]("+w.HTMLURL+")") ||
			!strings.Contains(res.summary, "| "+stage+" | passed | [execution]("+w.HTMLURL+") |") {
			t.Errorf("%s: run %+v; the sticky comment and the step summary should link it:\n%s\n%s", stage, w, c[0].Body, res.summary)
		}
	}
	// Per stage: one list found the run, then one GET per poll until it
	// completed (in progress twice: the list, one GET; completed on the
	// second GET).
	if lists, gets := r.gh.Count(listRunsRoute), r.gh.Count(getRunRoute); lists != 2 || gets != 4 {
		t.Errorf("%d lists and %d GETs for two stages; want 2 and 4", lists, gets)
	}
}

// A dispatched run that fails fails its stage, naming the conclusion, and
// the step.
func TestRunDispatchedWorkflowRunFails(t *testing.T) {
	t.Parallel()
	r := newDispatchRig(t, map[string]string{"qa": "success", "prod": "cancelled"})
	res := r.runJob(t)
	if res.code != 1 {
		t.Fatalf("exit %d; want 1\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa", "skipped": ""})
	const why = "deploy run #2 concluded cancelled"
	wantSummary(t, res,
		"| qa | passed | [execution]("+r.runOf(t, "qa").HTMLURL+") |",
		"| prod | failed | "+why+" [execution]("+r.runOf(t, "prod").HTMLURL+") |",
	)
	if !hasAnnotation(res.stdout, "error", "stage prod failed: "+why) {
		t.Errorf("no ::error:: naming the conclusion:\n%s", res.stdout)
	}
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout"); !ok || cr.Conclusion != "failure" {
		t.Errorf("shipbot/rollout: %+v (found %v)", cr, ok)
	}
}

// wait: false still hands a github-dispatch stage off at once.
func TestRunWaitFalseHandsOffDispatches(t *testing.T) {
	t.Parallel()
	r := newDispatchRig(t, map[string]string{"qa": "failure", "prod": "failure"})
	r.setenv("INPUT_WAIT", "false")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"deployed": "qa,prod"})
	if !strings.Contains(res.summary, "| qa | passed (handed off) |") {
		t.Errorf("summary:\n%s", res.summary)
	}
	if n := r.gh.Count(listRunsRoute) + r.gh.Count(getRunRoute); n != 0 {
		t.Errorf("%d workflow run reads without waiting", n)
	}
}

// A re-run of the job (a fresh runner: no state of the first) and the
// second trigger of the same merge (push and pull_request workflows both
// configured) find the deployments the first job made on GitHub and
// deploy nothing twice; the release is the first job's.
func TestRunTwiceDeploysOnce(t *testing.T) {
	t.Parallel()
	// Every job on a new runner: its state database made from nothing.
	r := newActionRig(t, rigOptions{approved: true, freshState: true})
	first := r.runJob(t)
	if first.code != 0 {
		t.Fatalf("first job: exit %d\n%s", first.code, first.log)
	}
	for _, rerun := range []struct {
		name  string
		event func(t *testing.T)
	}{{"re-run of the push job", r.pushEvent}, {"the pull_request job of the same merge", r.prClosedEvent}} {
		r.newJob(t, "4243")
		rerun.event(t)
		res := r.runJob(t)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\n%s", rerun.name, res.code, res.log)
		}
		if got := r.target.stages(); !slices.Equal(got, []string{"qa", "prod"}) {
			t.Fatalf("%s: triggered stages %v; want only the first job's [qa prod]", rerun.name, got)
		}
		wantOutputs(t, res, map[string]string{"version": "1.5.0", "tag": "v1.5.0", "deployed": "qa,prod"})
		if !strings.Contains(res.summary, "deployed before") {
			t.Errorf("%s: the step summary does not say the stages were deployed before:\n%s", rerun.name, res.summary)
		}
	}
	if n := len(r.gh.Releases("acme/api")); n != 1 {
		t.Errorf("%d releases; want 1", n)
	}
}

// monorepoConfig is the `pipelines:` form: api (qa, prod) and web (prod),
// each started by its own directory; Markdown starts neither.
const monorepoConfig = `version: 1
gate:
  approvals: 1
pipelines:
  - name: api
    paths: ["services/api/**"]
    ignore: ["**/*.md"]
    stages:
      - name: qa
        target: spinnaker-qa
      - name: prod
        target: spinnaker-prod
  - name: web
    paths: ["services/web/**"]
    ignore: ["**/*.md"]
    stages:
      - name: prod
        target: spinnaker-prod
`

// newMonorepoRig is a monorepo whose api pipeline released api/v1.3.0 and
// whose web pipeline never released, merging a feat: PR that changes files.
func newMonorepoRig(t *testing.T, files ...string) *actionRig {
	t.Helper()
	fs := map[string]string{}
	for _, f := range files {
		fs[f] = "change\n"
	}
	return newActionRig(t, rigOptions{approved: true, config: monorepoConfig, files: fs, tags: []string{"api/v1.3.0"}})
}

// triggered lists the stages the fake target was triggered for, as
// <pipeline>/<stage>.
func (r *actionRig) triggered() []string {
	var out []string
	for _, tr := range r.target.triggers() {
		out = append(out, fmt.Sprint(tr.Payload["pipeline"])+"/"+fmt.Sprint(tr.Payload["stage"]))
	}
	return out
}

func (r *actionRig) tagNames() []string {
	var out []string
	for _, tg := range r.gh.Tags("acme/api") {
		out = append(out, tg.Name)
	}
	slices.Sort(out)
	return out
}

// A merge that touches one pipeline of a monorepo releases and rolls out
// that one only; version and tag are its own.
func TestRunMonorepoOnePipeline(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/web/index.html")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{
		"version": "0.1.0", "tag": "web/v0.1.0",
		"versions": `{"web":"0.1.0"}`, "tags": `{"web":"web/v0.1.0"}`,
		"deployed": "web/prod", "skipped": "",
		"run-url": "https://github.example/acme/api/actions/runs/4242",
	})
	if got := r.tagNames(); !slices.Equal(got, []string{"api/v1.3.0", "web/v0.1.0"}) {
		t.Errorf("tags %v; want web/v0.1.0 added only", got)
	}
	if got := r.triggered(); !slices.Equal(got, []string{"web/prod"}) {
		t.Errorf("triggered %v; want [web/prod]", got)
	}
	wantSummary(t, res, "### web", "Released **web/v0.1.0**.", "| prod | passed (handed off) |")
	if strings.Contains(res.summary, "### api") {
		t.Errorf("the summary shows a pipeline the merge did not run:\n%s", res.summary)
	}
	if !hasAnnotation(res.stdout, "notice", "pipeline web: released web/v0.1.0; deployed: prod") {
		t.Errorf("no notice for web's release:\n%s", res.stdout)
	}
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout: web"); !ok || cr.Conclusion != "success" {
		t.Errorf("shipbot/rollout: web: %+v (found %v)", cr, ok)
	}
}

// A merge that touches both pipelines waits for both rollouts and reports
// each: versions and tags by pipeline, a summary section per pipeline.
func TestRunMonorepoTwoPipelines(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/api/main.go", "services/web/index.html")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	t.Logf("outputs:\n%s", readFile(t, r.output))
	t.Logf("step summary:\n%s", res.summary)
	wantOutputs(t, res, map[string]string{
		"version": "", "tag": "",
		"versions": `{"api":"1.4.0","web":"0.1.0"}`, "tags": `{"api":"api/v1.4.0","web":"web/v0.1.0"}`,
		"deployed": "api/qa,api/prod,web/prod", "skipped": "",
	})
	var versions map[string]string
	if err := json.Unmarshal([]byte(res.outputs["versions"]), &versions); err != nil || len(versions) != 2 {
		t.Errorf("versions is not a JSON object of two: %q (%v)", res.outputs["versions"], err)
	}
	if got := r.tagNames(); !slices.Equal(got, []string{"api/v1.3.0", "api/v1.4.0", "web/v0.1.0"}) {
		t.Errorf("tags %v", got)
	}
	got := r.triggered()
	slices.Sort(got)
	if want := []string{"api/prod", "api/qa", "web/prod"}; !slices.Equal(got, want) {
		t.Errorf("triggered %v; want %v", got, want)
	}
	wantSummary(t, res, "Released **api/v1.4.0**, **web/v0.1.0**.",
		"### api\n\nReleased **api/v1.4.0**.\n\n| stage | state | detail |\n|---|---|---|\n| qa | passed (handed off) |",
		"| prod | passed (handed off) | handed off to spinnaker-prod",
		"### web\n\nReleased **web/v0.1.0**.\n\n| stage | state | detail |\n|---|---|---|\n| prod | passed (handed off) |")
	if strings.Index(res.summary, "### api") > strings.Index(res.summary, "### web") {
		t.Errorf("sections out of file order:\n%s", res.summary)
	}
	for _, p := range []string{"api", "web"} {
		if !hasAnnotation(res.stdout, "notice", "pipeline "+p+": released "+p+"/v") {
			t.Errorf("no notice for %s:\n%s", p, res.stdout)
		}
		if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout: "+p); !ok || cr.Conclusion != "success" {
			t.Errorf("shipbot/rollout: %s: %+v (found %v)", p, cr, ok)
		}
	}
	if errs := annotations(res.stdout, "error"); len(errs) > 0 {
		t.Errorf("errors annotated on success: %v", errs)
	}
}

// One pipeline's failing stage fails the step, naming the pipeline; the
// other pipeline rolls out all the same.
func TestRunMonorepoOnePipelineFails(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/api/main.go", "services/web/index.html")
	r.target.status["qa"] = http.StatusBadRequest // only api has qa
	res := r.runJob(t)
	if res.code != 1 {
		t.Fatalf("exit %d; want 1\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{
		"versions": `{"api":"1.4.0","web":"0.1.0"}`, "deployed": "web/prod", "skipped": "",
	})
	if !hasAnnotation(res.stdout, "error", "pipeline api (api/v1.4.0): stage qa failed: trigger stage qa via spinnaker-qa: 400 Bad Request") ||
		!hasAnnotation(res.stdout, "error", "not reached: prod") {
		t.Errorf("no ::error:: naming the pipeline and the stage:\n%s", res.stdout)
	}
	if hasAnnotation(res.stdout, "error", "pipeline web") {
		t.Errorf("web is annotated as failed:\n%s", res.stdout)
	}
	if !hasAnnotation(res.stdout, "notice", "pipeline web: released web/v0.1.0; deployed: prod") {
		t.Errorf("no notice for web:\n%s", res.stdout)
	}
	got := r.triggered()
	slices.Sort(got)
	if want := []string{"api/qa", "web/prod"}; !slices.Equal(got, want) {
		t.Errorf("triggered %v; want %v (api/prod must not follow a failed api/qa)", got, want)
	}
	wantSummary(t, res, "### api", "| qa | failed | trigger stage qa via spinnaker-qa: 400 Bad Request", "| prod | not reached |",
		"### web", "| prod | passed (handed off) |")
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout: api"); !ok || cr.Conclusion != "failure" {
		t.Errorf("shipbot/rollout: api: %+v (found %v)", cr, ok)
	}
	if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout: web"); !ok || cr.Conclusion != "success" {
		t.Errorf("shipbot/rollout: web: %+v (found %v)", cr, ok)
	}
}

// A merge whose files start no pipeline releases nothing: a notice, exit 0.
func TestRunMonorepoNoPipelineAffected(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/api/README.md", "docs/guide.md")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{
		"version": "", "tag": "", "versions": "{}", "tags": "{}", "deployed": "", "skipped": "",
	})
	if !hasAnnotation(res.stdout, "notice", "no pipeline affected: nothing released") {
		t.Errorf("no notice:\n%s", res.stdout)
	}
	if errs := annotations(res.stdout, "error"); len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
	wantSummary(t, res, "No pipeline affected: nothing released")
	if got := r.tagNames(); !slices.Equal(got, []string{"api/v1.3.0"}) {
		t.Errorf("tags %v; nothing may be released", got)
	}
	if n := len(r.gh.Releases("acme/api")); n != 0 {
		t.Errorf("%d releases", n)
	}
	if n := len(r.target.triggers()); n != 0 {
		t.Errorf("%d triggers", n)
	}
}

// The stages input names <pipeline>/<stage>, or a bare stage of every
// pipeline that has it; a name no pipeline has fails before anything.
func TestRunMonorepoStagesInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stages            string
		deployed, skipped string
	}{
		{"api/qa", "api/qa", "api/prod,web/prod"},
		{"prod", "api/prod,web/prod", "api/qa"},
		{"api/qa, web/prod", "api/qa,web/prod", "api/prod"},
	} {
		t.Run(tc.stages, func(t *testing.T) {
			r := newMonorepoRig(t, "services/api/main.go", "services/web/index.html")
			r.setenv("INPUT_STAGES", tc.stages)
			res := r.runJob(t)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.log)
			}
			wantOutputs(t, res, map[string]string{"deployed": tc.deployed, "skipped": tc.skipped})
			got := r.triggered()
			slices.Sort(got)
			want := strings.Split(tc.deployed, ",")
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("triggered %v; want %v", got, want)
			}
			if !strings.Contains(res.summary, "| skipped | not in input stages |") {
				t.Errorf("the summary does not say why a stage was skipped:\n%s", res.summary)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		r := newMonorepoRig(t, "services/api/main.go")
		r.setenv("INPUT_STAGES", "web/qa,prod")
		res := r.runJob(t)
		if res.code != 2 {
			t.Fatalf("exit %d; want 2\n%s", res.code, res.log)
		}
		if !hasAnnotation(res.stdout, "error", "input stages names web/qa, which") ||
			!hasAnnotation(res.stdout, "error", "(its stages: api/qa,api/prod,web/prod)") {
			t.Errorf("no ::error:: naming the unknown stage:\n%s", res.stdout)
		}
		if w := r.writes(); len(w) > 0 {
			t.Errorf("wrote to GitHub: %v", w)
		}
	})
}

// A re-run job (a fresh runner) finds each pipeline's deployments, in its
// <pipeline>/<stage> environments, and deploys nothing twice.
func TestRunMonorepoTwiceDeploysOnce(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/api/main.go", "services/web/index.html")
	if first := r.runJob(t); first.code != 0 {
		t.Fatalf("first job: exit %d\n%s", first.code, first.log)
	}
	before := len(r.target.triggers())
	r.newJob(t, "4243")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", res.code, res.log)
	}
	if n := len(r.target.triggers()) - before; n != 0 {
		t.Errorf("the re-run triggered %d stages again: %v", n, r.triggered())
	}
	wantOutputs(t, res, map[string]string{"tags": `{"api":"api/v1.4.0","web":"web/v0.1.0"}`, "deployed": "api/qa,api/prod,web/prod"})
	wantSummary(t, res, "deployed before: deployment", "to api/qa", "to web/prod")
	if n := len(r.gh.Releases("acme/api")); n != 2 {
		t.Errorf("%d releases; want 2", n)
	}
}

// A dry run of a monorepo merge forecasts each pipeline.
func TestRunMonorepoDryRun(t *testing.T) {
	t.Parallel()
	r := newMonorepoRig(t, "services/api/main.go", "services/web/index.html")
	r.setenv("INPUT_DRY-RUN", "true")
	r.setenv("INPUT_STAGES", "qa")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{
		"version": "", "tag": "", "versions": `{"api":"1.4.0","web":"0.1.0"}`,
		"deployed": "", "skipped": "api/prod,web/prod",
	})
	wantSummary(t, res, "### api", "### web", "| qa | spinnaker-qa | deploy |", "| prod | spinnaker-prod | skip (label no-deploy-to-web/prod) |")
	if w := r.writes(); len(w) > 0 {
		t.Errorf("a dry run wrote to GitHub: %v", w)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A re-run finds a wave's deployments in each target's own environment
// (<stage>/<target>) and triggers none of them again.
func TestRunWaveTwiceDeploysOnce(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, config: strings.Replace(actionRepoConfig,
		"    target: spinnaker-prod\n", "    targets: [spinnaker-qa, spinnaker-prod]\n", 1)})
	if first := r.runJob(t); first.code != 0 {
		t.Fatalf("first job: exit %d\n%s", first.code, first.log)
	}
	before := len(r.target.triggers())
	r.newJob(t, "4243")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", res.code, res.log)
	}
	if n := len(r.target.triggers()) - before; n != 0 {
		t.Errorf("the re-run triggered %d targets again", n)
	}
	wantOutputs(t, res, map[string]string{"tag": "v1.5.0", "deployed": "qa,prod"})
}

// landedMerge is a merged pull request and its merge commit.
type landedMerge struct {
	pr  int
	sha string
}

// mergeMore merges one approved pull request per title after the rig's,
// each with its own merge commit on main, and makes the job the one for
// the push of the last: the jobs of the others never ran (GitHub's
// concurrency group cancelled them). It returns every merge, the rig's
// first.
func (r *actionRig) mergeMore(t *testing.T, titles ...string) []landedMerge {
	t.Helper()
	out := []landedMerge{{r.pr, r.sha}}
	for _, title := range titles {
		n := r.gh.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: title, Author: "alice"})
		r.gh.AddReview("acme/api", n, "bob", "APPROVED", r.gh.PullRequest("acme/api", n).HeadSHA)
		r.before = r.gh.BranchSHA("acme/api", "main")
		r.pr, r.sha = n, r.gh.Merge("acme/api", n, "alice")
		out = append(out, landedMerge{n, r.sha})
	}
	r.setenv("GITHUB_SHA", r.sha)
	r.pushEvent(t)
	return out
}

// tagsAt maps each tag to the commit it points at.
func (r *actionRig) tagsAt() map[string]string {
	out := map[string]string{}
	for _, tg := range r.gh.Tags("acme/api") {
		out[tg.Name] = tg.SHA
	}
	return out
}

// rolledOutInOrder checks that every stage took the versions oldest first
// (want), and that each version reached a stage only after the stages
// before it (stages, in pipeline order).
func (r *actionRig) rolledOutInOrder(t *testing.T, stages, want []string) {
	t.Helper()
	byStage := map[string][]string{}
	for _, tr := range r.target.triggers() {
		stage, tag := fmt.Sprint(tr.Payload["stage"]), fmt.Sprint(tr.Payload["tag"])
		if i := slices.Index(stages, stage); i > 0 && !slices.Contains(byStage[stages[i-1]], tag) {
			t.Errorf("%s reached %s before %s", tag, stage, stages[i-1])
		}
		byStage[stage] = append(byStage[stage], tag)
	}
	for _, stage := range stages {
		if !slices.Equal(byStage[stage], want) {
			t.Errorf("stage %s deployed %v; want %v, in that order", stage, byStage[stage], want)
		}
	}
}

// GitHub's concurrency group keeps one job running and one pending, and
// cancels the older pending job when a newer merge queues: of three
// merges, only the third's job runs. It releases and rolls out all three,
// in branch order, each with its own version and its own report on its
// pull request, however long ago they merged; the outputs are its own
// merge's.
func TestRunCatchesUpMergesWhoseJobsNeverRan(t *testing.T) {
	t.Parallel()
	for _, event := range []string{"push", "pull_request"} {
		t.Run(event, func(t *testing.T) {
			r := newActionRig(t, rigOptions{approved: true, title: "fix: one", tags: []string{"v1.2.3"},
				now: func() time.Time { return time.Now().Add(-time.Hour) }})
			merges := r.mergeMore(t, "fix: two", "feat: three")
			if event == "pull_request" {
				r.prClosedEvent(t)
			}
			res := r.runJob(t)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.log)
			}
			want := []string{"v1.2.4", "v1.2.5", "v1.3.0"}
			tags := r.tagsAt()
			for i, m := range merges {
				if tags[want[i]] != m.sha {
					t.Errorf("%s is on %s; want merge #%d's commit %s", want[i], tags[want[i]], m.pr, m.sha)
				}
				if cr, ok := r.gh.CheckRun("acme/api", m.sha, "shipbot/rollout"); !ok || cr.Conclusion != "success" {
					t.Errorf("merge #%d: shipbot/rollout %+v (found %v)", m.pr, cr, ok)
				}
				if n := len(r.gh.Comments("acme/api", m.pr)); n != 1 {
					t.Errorf("merge #%d: %d comments; want its sticky comment", m.pr, n)
				}
			}
			r.rolledOutInOrder(t, []string{"qa", "prod"}, want)
			wantOutputs(t, res, map[string]string{"version": "1.3.0", "tag": "v1.3.0", "deployed": "qa,prod"})
			names := fmt.Sprintf("#%d (%s), #%d (%s)", merges[0].pr, short(merges[0].sha), merges[1].pr, short(merges[1].sha))
			if !hasAnnotation(res.stdout, "notice", names) {
				t.Errorf("no notice naming the earlier merges %s:\n%s", names, res.stdout)
			}
			if !hasAnnotation(res.stdout, "notice", fmt.Sprintf("merge #%d (%s): released v1.2.4", merges[0].pr, short(merges[0].sha))) {
				t.Errorf("no notice of the first merge's release:\n%s", res.stdout)
			}
			wantSummary(t, res, "Released **v1.3.0**", "also handled 2 earlier merges",
				fmt.Sprintf("## shipbot: earlier merge #%d (%s)", merges[0].pr, short(merges[0].sha)), "Released **v1.2.4**",
				fmt.Sprintf("## shipbot: earlier merge #%d (%s)", merges[1].pr, short(merges[1].sha)), "Released **v1.2.5**")
			if errs := annotations(res.stdout, "error"); len(errs) > 0 {
				t.Errorf("errors annotated on success: %v", errs)
			}
		})
	}
}

// A merge whose own job ran is the newest one handled: the next job looks
// back no further (its shipbot/rollout check run says so) and neither
// releases nor deploys it again.
func TestRunLeavesAMergeItsOwnJobHandled(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{approved: true, title: "fix: one", tags: []string{"v1.2.3"}})
	if first := r.runJob(t); first.code != 0 {
		t.Fatalf("first job: exit %d\n%s", first.code, first.log)
	}
	r.newJob(t, "4243")
	r.mergeMore(t, "feat: two")
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	var got []string
	for _, tr := range r.target.triggers() {
		got = append(got, fmt.Sprint(tr.Payload["stage"], " ", tr.Payload["tag"]))
	}
	if want := []string{"qa v1.2.4", "prod v1.2.4", "qa v1.3.0", "prod v1.3.0"}; !slices.Equal(got, want) {
		t.Errorf("triggered %v; want %v", got, want)
	}
	if n := len(r.gh.Releases("acme/api")); n != 2 {
		t.Errorf("%d releases; want 2", n)
	}
	if strings.Contains(res.summary, "earlier merge") || hasAnnotation(res.stdout, "notice", "earlier merge") {
		t.Errorf("the second job handled the first merge again:\n%s\n%s", res.summary, res.stdout)
	}
}

// Past the cap (maxCatchUp commits, the job's own included) the job
// handles the newest merges, in order, and says in a warning which commit
// and those before it it left.
func TestRunCatchUpStopsAtTheCap(t *testing.T) {
	t.Parallel()
	if maxCatchUp != 50 {
		t.Fatalf("maxCatchUp = %d; the documented cap is 50", maxCatchUp)
	}
	const oneStage = `version: 1
release:
  tag_prefix: v
gate:
  approvals: 1
stages:
  - name: prod
    target: spinnaker-prod
`
	r := newActionRig(t, rigOptions{approved: true, title: "fix: 1", tags: []string{"v1.0.0"}, config: oneStage})
	titles := make([]string, maxCatchUp) // 51 merges in all, no job ran for any but the last
	for i := range titles {
		titles[i] = fmt.Sprintf("fix: %d", i+2)
	}
	merges := r.mergeMore(t, titles...)
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	oldest := merges[0]
	if _, ok := r.gh.CheckRun("acme/api", oldest.sha, "shipbot/rollout"); ok {
		t.Errorf("the merge past the cap (#%d) was handled", oldest.pr)
	}
	tags := r.tagsAt()
	var want []string
	for i, m := range merges[1:] {
		tag := fmt.Sprintf("v1.0.%d", i+1)
		want = append(want, tag)
		if tags[tag] != m.sha {
			t.Errorf("%s is on %s; want merge #%d's commit %s", tag, tags[tag], m.pr, m.sha)
		}
	}
	if len(tags) != 1+maxCatchUp {
		t.Errorf("%d tags; want v1.0.0 and the %d releases this job cut", len(tags), maxCatchUp)
	}
	r.rolledOutInOrder(t, []string{"prod"}, want)
	if !hasAnnotation(res.stdout, "warning", "more than 50 commits") || !hasAnnotation(res.stdout, "warning", short(oldest.sha)) {
		t.Errorf("no warning about the cap naming %s:\n%s", short(oldest.sha), strings.Join(annotations(res.stdout, "warning"), "\n"))
	}
	wantOutputs(t, res, map[string]string{"version": "1.0.50", "tag": "v1.0.50"})
}

// An earlier merge the job catches up with is judged on its own: refused,
// it releases nothing, its refusal is an error naming it, and the step
// fails; the job's own merge still releases and rolls out.
func TestRunCatchUpReportsAnEarlierRefusal(t *testing.T) {
	t.Parallel()
	r := newActionRig(t, rigOptions{title: "fix: unreviewed", tags: []string{"v1.2.3"}}) // not approved
	merges := r.mergeMore(t, "feat: two")
	res := r.runJob(t)
	if res.code != 1 {
		t.Fatalf("exit %d; want 1 for the refused earlier merge\n%s", res.code, res.log)
	}
	name := fmt.Sprintf("merge #%d (%s)", merges[0].pr, short(merges[0].sha))
	if !hasAnnotation(res.stdout, "error", name+": ") {
		t.Errorf("no error naming %s:\n%s", name, strings.Join(annotations(res.stdout, "error"), "\n"))
	}
	if cr, ok := r.gh.CheckRun("acme/api", merges[0].sha, "shipbot/rollout"); !ok || cr.Conclusion != "action_required" {
		t.Errorf("the refused merge's shipbot/rollout: %+v (found %v)", cr, ok)
	}
	if got := r.tagNames(); !slices.Equal(got, []string{"v1.2.3", "v1.3.0"}) {
		t.Errorf("tags %v; want only the second merge's release", got)
	}
	r.rolledOutInOrder(t, []string{"qa", "prod"}, []string{"v1.3.0"})
	wantOutputs(t, res, map[string]string{"version": "1.3.0", "tag": "v1.3.0", "deployed": "qa,prod"})
	wantSummary(t, res, "## shipbot: earlier "+name, "Refused by the merge gate")
}

// A merge of more files than GitHub lists may touch any pipeline: bot run
// runs every one and says why, in the step summary and on each pipeline's
// check run.
func TestRunMonorepoTooManyFilesRunsEveryPipeline(t *testing.T) {
	t.Parallel()
	files := make([]string, 3500)
	for i := range files {
		files[i] = fmt.Sprintf("docs/gen/f%04d.txt", i)
	}
	r := newMonorepoRig(t, files...)
	res := r.runJob(t)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.log)
	}
	wantOutputs(t, res, map[string]string{"tags": `{"api":"api/v1.4.0","web":"web/v0.1.0"}`})
	const why = "GitHub lists at most 3,000 files of a pull request"
	wantSummary(t, res, why)
	for _, p := range []string{"api", "web"} {
		if cr, ok := r.gh.CheckRun("acme/api", r.sha, "shipbot/rollout: "+p); !ok || !strings.Contains(cr.Summary, why) {
			t.Errorf("shipbot/rollout: %s (found %v) does not say why it runs:\n%s", p, ok, cr.Summary)
		}
	}
	if n := r.gh.Count("GET /repos/{owner}/{repo}/pulls/{pull_number}/files"); n != 30 {
		t.Errorf("the files list cost %d calls; want 30", n)
	}
}
