package pipeline_test

// The harness of the rollout engine's integration tests: the real service
// (webhook intake, inbox worker, merge coordinator, rollout engine,
// reporter, API) on a SQLite file and a loopback port, fed signed
// deliveries, talking to the schema-checked GitHub fake as a GitHub App,
// and triggering an in-test Spinnaker-Echo-like server whose callbacks the
// test controls. Nothing waits for an outcome by sleeping: every wait polls
// the store, the fake or the target against a deadline.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/deploy/deploytest"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

const (
	repo         = "acme/api"
	owner, name  = "acme", "api"
	rolloutCheck = "shipbot/rollout"
	configFile   = ".github/shipbot.yml"

	// waitFor bounds every wait; the tests finish far sooner.
	waitFor = 15 * time.Second

	// The secrets. Distinctive, so that a scan finds any copy of them.
	webhookSecret = "whsec-6b0e1d9f-webhook"
	apiToken      = "apitok-3c8a55d2-freeze"
	qaKey         = "qa-constraint-S3CRET-1c9d77"
	prodKey       = "prod-constraint-S3CRET-84be01"
	prodHMAC      = "prod-signing-S3CRET-2a7710"
)

// secretEnv is the server's environment for ${VAR} in the targets file.
var secretEnv = map[string]string{"QA_KEY": qaKey, "PROD_KEY": prodKey, "PROD_HMAC": prodHMAC}

// repoConfig is a .github/shipbot.yml with the given stages (YAML list
// items, indented by two spaces).
func repoConfig(stages string) string {
	return `version: 1
pipeline: api
release:
  tag_prefix: v
  initial: 0.1.0
  bump: conventional
gate:
  approvals: 1
stages:
` + stages
}

// twoStages is the plain qa → prod pipeline.
const twoStages = `  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
`

// defaultTargets is the targets file for a Spinnaker Echo at spinURL: one
// webhook source per stage, each with its own constraint secret; prod's
// requests are also signed.
func defaultTargets(spinURL string) string {
	return fmt.Sprintf(`targets:
  spinnaker-qa:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${QA_KEY}
    repos: [acme/api]
  spinnaker-prod:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod
    constraints:
      deploy_key: ${PROD_KEY}
    signing_secret: ${PROD_HMAC}
    repos: [acme/api]
`, spinURL)
}

// dispatchTargets are defaultTargets plus a github-dispatch target running
// deploy.yml in the merged repository.
func dispatchTargets(spinURL string) string {
	return defaultTargets(spinURL) + `  deploy-workflow:
    kind: github-dispatch
    workflow: deploy.yml
    repos: [acme/api]
`
}

// The fake GitHub's Actions routes a github-dispatch stage is followed by.
const (
	listRuns = "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"
	getRun   = "GET /repos/{owner}/{repo}/actions/runs/{run_id}"
)

// defaultConstraints are the payloadConstraints of the Spinnaker pipelines
// behind each Echo source, anchored as README tells operators to.
func defaultConstraints() map[string]map[string]string {
	return map[string]map[string]string{
		"api-qa":   {"deploy_key": "^" + regexp.QuoteMeta(qaKey) + "$", "stage": "^qa$"},
		"api-prod": {"deploy_key": "^" + regexp.QuoteMeta(prodKey) + "$", "repository": "acme/api"},
	}
}

// options vary an environment.
type options struct {
	config       string                       // .github/shipbot.yml; default repoConfig(twoStages)
	targets      func(spinURL string) string  // targets file; default defaultTargets
	constraints  map[string]map[string]string // Echo sources' constraints; default defaultConstraints
	decide       func(tr trigger) string      // the target's automatic outcome; nil: the test reports
	apiToken     string                       // SHIPBOT_API_TOKEN; empty disables the write API
	start        func(c *clock)               // sets the engine's clock before the service starts
	env          map[string]string            // ${VAR} values; default secretEnv
	prepare      func(e *env)                 // runs before the service starts
	alarmEvery   time.Duration                // how long an alarm reading is reused; default 50ms
	refreshEvery time.Duration                // how often at most checks refresh a head's preview; default the service's
}

// env is one running shipbot with its GitHub and its deploy target.
type env struct {
	t     *testing.T
	gh    *githubtest.Server
	spin  *spinnaker
	st    *store.SQLite
	base  string // the service's URL (SHIPBOT_PUBLIC_URL)
	hook  servicetest.Hook
	parts service.Parts
	clock *clock
	logs  *servicetest.LogBuffer
	obs   *observer
	ids   servicetest.Deliveries
	stop  func()
	// crash kills the process without a graceful shutdown (crashNow).
	crash func()
	// onGitHub, when set, sees each request the process sends GitHub; true
	// crashes the process on it (crashOn).
	onGitHub atomic.Pointer[func(*http.Request) bool]
	// refuse, when set, answers the requests it returns an answer for in
	// GitHub's place (refuseOnGitHub).
	refuse atomic.Pointer[func(*http.Request) *http.Response]

	// What a restart needs: the options, the targets, the database file
	// and the pipelines' spec.
	opts    options
	targets config.Targets
	dbPath  string
	crashed chan struct{} // closed when the process crashed
}

// newEnv starts everything. Cleanups stop the service first (waiting for
// the reporter's last writes), then the target, then check the fake's
// schema log.
func newEnv(t *testing.T, o options) *env {
	t.Helper()
	if o.config == "" {
		o.config = repoConfig(twoStages)
	}
	if o.targets == nil {
		o.targets = defaultTargets
	}
	if o.constraints == nil {
		o.constraints = defaultConstraints()
	}
	if o.env == nil {
		o.env = secretEnv
	}
	e := &env{t: t, obs: &observer{}, clock: &clock{}}
	e.logs = servicetest.NewLogBuffer(t, 0)
	e.gh = servicetest.NewGitHub(t, githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	servicetest.SeedRepo(e.gh, repo, map[string]string{"README.md": "# api\n", configFile: o.config})

	e.spin = newSpinnaker(t, o.constraints)
	e.spin.setDecide(o.decide)

	targets, err := config.ParseTargets("targets.yml", []byte(o.targets(e.spin.srv.URL)), func(k string) (string, bool) {
		v, ok := o.env[k]
		return v, ok
	}, drivers.New().Kinds())
	if err != nil {
		t.Fatalf("targets file: %v", err)
	}
	e.opts, e.targets, e.dbPath = o, targets, servicetest.DBPath(t)
	if o.start != nil {
		o.start(e.clock)
	}
	e.boot()
	return e
}

// restart stops the service and starts a new one on the same database,
// GitHub and target: everything the new process knows is in the database.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.boot()
}

// boot starts a service process on e's database.
func (e *env) boot() {
	t, o, targets := e.t, e.opts, e.targets
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := servicetest.OpenStore(t, e.dbPath)
	e.st = st
	kill, crashed := servicetest.NewKillSwitch(), make(chan struct{})
	var crashOnce sync.Once
	// A process crashing in the middle of a request to GitHub: the
	// request may have reached GitHub (forward) or not, the database is
	// closed under the process at once, so it records nothing of the
	// answer, and everything it sends from then on fails.
	crashing := func(req *http.Request) error {
		crashOnce.Do(func() {
			_ = st.Close() // errors are expected: the process is dying
			kill.Kill()
			close(crashed)
		})
		return servicetest.ErrCrashed
	}
	toGitHub := servicetest.RoundTripFunc(func(req *http.Request) (*http.Response, error) {
		if f := e.onGitHub.Load(); f != nil && (*f)(req) {
			e.onGitHub.Store(nil)
			return nil, crashing(req)
		}
		if f := e.refuse.Load(); f != nil {
			if resp := (*f)(req); resp != nil {
				return resp, nil
			}
		}
		return http.DefaultTransport.RoundTrip(req)
	})
	apps := servicetest.Apps(t, e.gh, ghclient.Options{Logger: log, Base: kill.Transport(toGitHub)})
	var ln net.Listener
	if e.base == "" {
		ln = servicetest.Listen(t)
		e.base = "http://" + ln.Addr().String()
	} else {
		// A restarted process answers where the last one did: callback
		// URLs already sent point there.
		var err error
		if ln, err = net.Listen("tcp", strings.TrimPrefix(e.base, "http://")); err != nil {
			t.Fatalf("listen again at %s: %v", e.base, err)
		}
	}
	e.parts = service.Bot{
		Store: st, Clients: apps, Log: log, Owner: "test", Targets: targets, PublicURL: e.base,
		TokenKey: []byte(webhookSecret), APIToken: o.apiToken, Version: "test",
		HTTP:       &http.Client{Transport: kill.Transport(http.DefaultTransport)},
		EngineTick: 20 * time.Millisecond, ReportDelay: 20 * time.Millisecond, PairWait: -1,
		ObserveRollout: e.obs.add, PreviewRefreshEvery: o.refreshEvery,
	}.Build()
	eng := e.parts.Engine
	eng.Now = e.clock.Now
	eng.AlarmEvery = 50 * time.Millisecond
	if o.alarmEvery != 0 {
		eng.AlarmEvery = o.alarmEvery
	}
	eng.PollEvery = 100 * time.Millisecond
	eng.Trigger.Retry = deploy.RetryPolicy{MaxAttempts: 3, Budget: 5 * time.Second, AttemptTimeout: 2 * time.Second,
		BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
	if o.prepare != nil {
		o.prepare(e) // on every boot: it sets up this process's parts
	}
	srv := servicetest.Start(t, ln, service.Options{
		Store: st, WebhookSecret: []byte(webhookSecret), Handlers: e.parts.Handlers, Loops: e.parts.Loops,
		Routes: []func(*echo.Echo){e.parts.Routes}, Log: log, Owner: "test", WorkerPoll: 250 * time.Millisecond,
	})
	e.hook = srv.Hook()
	e.hook.Timeout = waitFor
	var once sync.Once
	parts := e.parts
	e.stop = func() {
		once.Do(func() {
			srv.Stop()
			parts.Reporter.Wait()
			if err := st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
			kill.Kill()
		})
	}
	e.crash = func() {
		once.Do(func() {
			crashing(nil)
			srv.Kill() // an error from a dying process means nothing
			parts.Reporter.Wait()
		})
	}
	e.crashed = crashed
	t.Cleanup(e.stop)
}

// crashOn arms a crash of the process at its first request to GitHub that
// match accepts: when forward, the request reaches GitHub first (the
// process dies before it reads the answer). It returns at once; the
// crashed channel closes when the process died.
func (e *env) crashOn(forward bool, match func(*http.Request) bool) {
	f := func(req *http.Request) bool {
		if !match(req) {
			return false
		}
		if forward {
			if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		return true
	}
	e.onGitHub.Store(&f)
}

// refuseOnGitHub makes GitHub answer status and body (JSON) to every
// request match picks, until it is called again with nil.
func (e *env) refuseOnGitHub(match func(*http.Request) bool, status int, body string) {
	if match == nil {
		e.refuse.Store(nil)
		return
	}
	f := func(req *http.Request) *http.Response {
		if !match(req) {
			return nil
		}
		return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: io.NopCloser(strings.NewReader(body)),
			Request: req, ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	}
	e.refuse.Store(&f)
}

// crashAndRestart waits until the armed crash happened (or crashes the
// process now when none is armed), reaps it and starts a new process on
// the same database: the new one knows only what the dead one committed.
func (e *env) crashAndRestart() {
	e.t.Helper()
	if e.onGitHub.Load() != nil {
		select {
		case <-e.crashed:
		case <-time.After(waitFor):
			e.t.Fatal("the armed crash did not happen")
		}
	}
	e.crash()
	e.boot()
}

// clock is the engine's clock: real time shifted by an offset the test
// sets, so bakes and timeouts still pass while a window can be jumped
// into. It counts its readings, which lets a test wait until the engine
// has looked again (and still did nothing) without sleeping.
type clock struct {
	offset atomic.Int64
	reads  atomic.Int64
}

func (c *clock) Now() time.Time {
	c.reads.Add(1)
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// set makes the clock read t now.
func (c *clock) set(t time.Time) { c.offset.Store(int64(time.Until(t))) }

// observer records the engine's events.
type observer struct {
	mu     sync.Mutex
	events []observed
}

type observed struct {
	pipeline.Event
	At time.Time
}

func (o *observer) add(ev pipeline.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, observed{Event: ev, At: time.Now()})
}

func (o *observer) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

// index is the position of the first event of run at stage with what, or -1.
func (o *observer) index(run, stage, what string) int {
	for i, ev := range o.all() {
		if ev.RunID == run && ev.Stage == stage && ev.What == what {
			return i
		}
	}
	return -1
}

// patience is how every wait here polls: every 10ms, for up to waitFor.
var patience = servicetest.Wait{Limit: waitFor, Interval: 10 * time.Millisecond}

// eventually polls cond until it holds or the deadline passes.
var eventually = patience.Eventually

// idle waits until the engine has read its clock n more times, that is
// until it has stepped the pipelines again several times (each step reads
// the clock at least once per pipeline).
func (e *env) idle(n int64) {
	e.t.Helper()
	from := e.clock.reads.Load()
	eventually(e.t, fmt.Sprintf("the engine looked %d more times", n), func() bool { return e.clock.reads.Load() >= from+n })
}

// deliver sends a signed delivery and returns its id.
func (e *env) deliver(event string, body []byte) string {
	e.t.Helper()
	d := e.ids.New(event, body)
	e.hook.SendOK(e.t, d)
	return d.ID
}

// waitDelivery waits until the worker has handled delivery id.
func (e *env) waitDelivery(id string) {
	e.t.Helper()
	patience.Processed(e.t, e.st, id)
}

// merged is one merge.
type merged struct {
	pr  int
	sha string
}

// merge opens a pull request by alice with green CI, has bob approve it,
// merges it and delivers both of GitHub's deliveries for the merge.
func (e *env) merge(title string, labels ...string) merged {
	e.t.Helper()
	return e.mergeFiles(title, nil, labels...)
}

// mergeFiles is merge for a pull request that changes files.
func (e *env) mergeFiles(title string, files map[string]string, labels ...string) merged {
	e.t.Helper()
	n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: title, Author: "alice", Labels: labels, Files: files})
	e.gh.SetStatus(repo, e.gh.PullRequest(repo, n).HeadSHA, "ci/test", "success")
	e.gh.AddReview(repo, n, "bob", "APPROVED", "")
	before := e.gh.BranchSHA(repo, "main")
	sha := e.gh.Merge(repo, n, "alice")
	e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "closed"))
	e.deliver("push", e.gh.PushEvent(owner, name, "refs/heads/main", before, sha))
	return merged{pr: n, sha: sha}
}

// released waits until the merge is released and in its pipeline, and
// returns its run.
func (e *env) released(m merged) store.RolloutRun {
	e.t.Helper()
	var rr store.RolloutRun
	eventually(e.t, "the merge "+m.sha[:7]+" is released into its pipeline", func() bool {
		r, err := e.st.RunBySHA(context.Background(), repo, m.sha)
		if err != nil || r.Open() {
			return false
		}
		if r.State != store.RunReleased {
			e.t.Fatalf("merge %s ended %s, not released: %s", m.sha[:7], r.State, r.Summary)
		}
		rr, err = e.st.GetRollout(context.Background(), r.ID)
		return err == nil && rr.Rollout != ""
	})
	return rr
}

func (e *env) rollout(id string) store.RolloutRun {
	e.t.Helper()
	rr, err := e.st.GetRollout(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return rr
}

func stageOf(rr store.RolloutRun, stage string) store.StageRow {
	for _, s := range rr.Stages {
		if s.Name == stage {
			return s
		}
	}
	return store.StageRow{}
}

// stage is the stored state of a run's stage.
func (e *env) stage(id, stage string) store.StageRow {
	e.t.Helper()
	return stageOf(e.rollout(id), stage)
}

// waitStage waits until the stage's state is state and returns the row.
func (e *env) waitStage(id, stage, state string) store.StageRow {
	e.t.Helper()
	var row store.StageRow
	eventually(e.t, fmt.Sprintf("stage %s is %s", stage, state), func() bool {
		row = e.stage(id, stage)
		return row.State.String() == state
	})
	return row
}

// waitWait waits until the stage waits with text containing want.
func (e *env) waitWait(id, stage, want string) store.StageRow {
	e.t.Helper()
	var row store.StageRow
	eventually(e.t, fmt.Sprintf("stage %s waits with %q", stage, want), func() bool {
		row = e.stage(id, stage)
		return row.State == schedule.Pending && strings.Contains(row.Wait.Text(), want)
	})
	return row
}

// waitDone waits until the run's rollout ended.
func (e *env) waitDone(id string) store.RolloutRun {
	e.t.Helper()
	var rr store.RolloutRun
	eventually(e.t, "the rollout of run "+id+" is done", func() bool {
		rr = e.rollout(id)
		return rr.Rollout == store.RolloutDone
	})
	return rr
}

func (e *env) executions(id string) []store.Execution {
	e.t.Helper()
	xs, err := e.st.Executions(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return xs
}

// executionsAt lists a run's executions at one stage, by attempt.
func (e *env) executionsAt(id, stage string) []store.Execution {
	var out []store.Execution
	for _, x := range e.executions(id) {
		if x.StageName == stage {
			out = append(out, x)
		}
	}
	return out
}

// check returns the single shipbot/rollout check run on sha, if any.
func (e *env) check(sha string) (githubtest.CheckRun, bool) {
	e.t.Helper()
	var found []githubtest.CheckRun
	for _, cr := range e.gh.CheckRuns(repo, sha) {
		if cr.Name == rolloutCheck {
			found = append(found, cr)
		}
	}
	if len(found) > 1 {
		e.t.Fatalf("%d %s check runs on %s; want one", len(found), rolloutCheck, sha[:7])
	}
	if len(found) == 0 {
		return githubtest.CheckRun{}, false
	}
	return found[0], true
}

// waitCheck waits until the rollout check run on sha is completed and
// returns it.
func (e *env) waitCheck(sha string) githubtest.CheckRun {
	e.t.Helper()
	var cr githubtest.CheckRun
	eventually(e.t, "the rollout check run on "+sha[:7]+" completes", func() bool {
		var ok bool
		cr, ok = e.check(sha)
		return ok && cr.Status == "completed"
	})
	return cr
}

// waitCheckText waits until the rollout check run's summary contains want.
func (e *env) waitCheckText(sha, want string) githubtest.CheckRun {
	e.t.Helper()
	var cr githubtest.CheckRun
	eventually(e.t, fmt.Sprintf("the rollout check run on %s says %q", sha[:7], want), func() bool {
		var ok bool
		cr, ok = e.check(sha)
		return ok && strings.Contains(cr.Summary, want)
	})
	return cr
}

// stickyComments are the bot's sticky comments on pull request pr.
func (e *env) stickyComments(pr int) []githubtest.Comment {
	var out []githubtest.Comment
	for _, c := range e.gh.Comments(repo, pr) {
		if strings.HasPrefix(c.Body, report.Marker) {
			out = append(out, c)
		}
	}
	return out
}

// waitComment waits until the sticky comment of pr contains want.
func (e *env) waitComment(pr int, want string) githubtest.Comment {
	e.t.Helper()
	var c githubtest.Comment
	eventually(e.t, fmt.Sprintf("the sticky comment on #%d says %q", pr, want), func() bool {
		cs := e.stickyComments(pr)
		if len(cs) == 0 {
			return false
		}
		c = cs[len(cs)-1]
		return strings.Contains(c.Body, want)
	})
	return c
}

// post sends an HTTP request to the service and returns status and body.
func (e *env) post(method, path, bearer, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// spinnaker is a Spinnaker-Echo-like webhook endpoint
// (/webhooks/webhook/{source}), like internal/deploy's fakeEcho: it answers
// 200 {"eventProcessed":true,"eventId":…} to every well-formed event,
// whether or not the pipeline behind the source matched its
// payloadConstraints (unanchored, case-sensitive regex finds on top-level
// fields or JSON paths, every key required), and records whether one did.
// Only a matched event deploys, and only a deploy reports to the callback
// URL: automatically when decide says so, else when the test calls report.
type spinnaker struct {
	t           testing.TB
	srv         *httptest.Server
	constraints map[string]map[string]string

	mu       sync.Mutex
	triggers []trigger
	decide   func(trigger) string
	// answer, when set, replaces the answer to a trigger (status, body).
	answer func(trigger) (int, string)
	// callbackFirst reports the automatic outcome before answering the
	// trigger, as a downstream that deploys synchronously would.
	callbackFirst bool
	// delay is how long an automatic outcome takes after the answer: a
	// deploy that lasts longer than the reporter gathers changes makes its
	// start and its end two changes the PR shows.
	delay time.Duration

	n      atomic.Int64
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// trigger is one request the target received.
type trigger struct {
	Source  string
	Header  http.Header
	Body    []byte
	Payload map[string]any // numbers as json.Number
	EventID string
	Matched bool // a Spinnaker pipeline would have started
	At      time.Time
}

func (tr trigger) str(key string) string {
	s, _ := tr.Payload[key].(string)
	return s
}

func (tr trigger) rollback() bool { return tr.Payload["rollback"] == true }

func newSpinnaker(t testing.TB, constraints map[string]map[string]string) *spinnaker {
	s := &spinnaker{t: t, constraints: constraints}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.cancel()
		s.wg.Wait()
		s.srv.Close()
	})
	return s
}

func (s *spinnaker) setDecide(f func(trigger) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decide = f
}

// setDelay makes automatic reports go out d after the trigger is answered.
func (s *spinnaker) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// setCallbackFirst makes automatic reports go out before the trigger is
// answered.
func (s *spinnaker) setCallbackFirst(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbackFirst = v
}

func (s *spinnaker) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tr := trigger{Header: r.Header.Clone(), Body: body, At: time.Now()}
	source, ok := strings.CutPrefix(r.URL.Path, "/webhooks/webhook/")
	if r.Method != http.MethodPost || !ok {
		http.Error(w, `{"error":"Not Found"}`, http.StatusNotFound)
		return
	}
	tr.Source = source
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&tr.Payload); err != nil {
		s.record(tr)
		http.Error(w, `{"error":"Bad Request","message":"malformed JSON"}`, http.StatusBadRequest)
		return
	}
	tr.EventID = fmt.Sprintf("evt-%04d", s.n.Add(1))
	if c, ok := s.constraints[source]; ok {
		tr.Matched = deploytest.ConstraintsMatch(c, tr.Payload)
	}
	s.record(tr)

	s.mu.Lock()
	decide, answer, first, delay := s.decide, s.answer, s.callbackFirst, s.delay
	s.mu.Unlock()
	state := ""
	if tr.Matched && decide != nil {
		state = decide(tr)
	}
	if state != "" && first {
		s.report(tr, state)
	}
	w.Header().Set("Content-Type", "application/json")
	if answer != nil {
		status, text := answer(tr)
		w.WriteHeader(status)
		io.WriteString(w, text)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"eventProcessed": true, "eventId": tr.EventID})
	if state != "" && !first {
		// Like Echo, the pipeline runs after the answer.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			s.send(tr, state)
		}()
	}
}

func (s *spinnaker) record(tr trigger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggers = append(s.triggers, tr)
}

// received lists the triggers of source ("" for all), oldest first.
func (s *spinnaker) received(source string) []trigger {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []trigger
	for _, tr := range s.triggers {
		if source == "" || tr.Source == source {
			out = append(out, tr)
		}
	}
	return out
}

// waitTriggers waits until source received at least n triggers and
// returns them.
func (s *spinnaker) waitTriggers(source string, n int) []trigger {
	s.t.Helper()
	var got []trigger
	eventually(s.t, fmt.Sprintf("%s received %d trigger(s)", source, n), func() bool {
		got = s.received(source)
		return len(got) >= n
	})
	return got
}

// send posts the outcome to the trigger's callback URL and returns the
// status, or 0 when it could not be sent.
func (s *spinnaker) send(tr trigger, state string) (int, string) {
	body, _ := json.Marshal(map[string]string{"state": state, "url": s.srv.URL + "/pipelines/" + tr.EventID})
	return s.post(tr.str("callback_url"), string(body))
}

func (s *spinnaker) post(url, body string) (int, string) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// report posts the outcome of tr as the test decides, and requires that
// the service recorded it.
func (s *spinnaker) report(tr trigger, state string) {
	s.t.Helper()
	if code, body := s.send(tr, state); code != http.StatusAccepted {
		s.t.Fatalf("callback %s for %s/%s: %d %s", state, tr.Source, tr.str("tag"), code, body)
	}
}

// alarmServer is an http-kind alarm: GET answers {"firing": bool}.
type alarmServer struct {
	srv    *httptest.Server
	firing atomic.Bool
	reads  atomic.Int64
}

func newAlarmServer(t testing.TB) *alarmServer {
	a := &alarmServer{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.reads.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"firing": %t}`, a.firing.Load())
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// targets is the default targets file plus the alarm prod-health, which
// reads this server.
func (a *alarmServer) targets(spinURL string) string {
	return defaultTargets(spinURL) + fmt.Sprintf("alarms:\n  prod-health:\n    kind: http\n    url: %s/health\n", a.srv.URL)
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMain: the package's tests mostly wait on the engine's tick,
// simulated deploys and a real Prometheus (servicetest.WaitingTestsParallel).
func TestMain(m *testing.M) {
	servicetest.WaitingTestsParallel()
	os.Exit(m.Run())
}
