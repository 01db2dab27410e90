package service_test

// The rig: the real service (service.Bot{...}.Build() served by
// service.New) on a SQLite file, talking as a GitHub App to the GitHub
// fake, and deploying through a simulated Spinnaker (target) that records
// every trigger and calls back. A stable front URL stands for the service
// across restarts, as a load balancer would, so callback URLs issued by one
// process reach the next. Nothing here sleeps to wait for a result: every
// wait polls against a deadline.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the tests' own reads of a PostgreSQL rig
	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/pgtest"
)

const (
	repo        = "acme/api"
	owner, name = "acme", "api"
	pipeKey     = "acme/api:api"
	// deployKey is the targets' payload-constraint secret.
	deployKey = "constraint-secret-5d1e9b"
	tokenAPI  = "POST /app/installations/{installation_id}/access_tokens"
)

// repoConfig is the repository's .github/shipbot.yml: two stages, patch
// bumps (so the Nth merge is v0.1.N-1), the given concurrency mode.
func repoConfig(concurrency string) string {
	return `version: 1
pipeline: api
concurrency: ` + concurrency + `
release:
  tag_prefix: v
  initial: 0.1.0
  bump: patch
gate:
  approvals: 1
  require_protected_branch: true
  require_checks: true
stages:
  - name: qa
    target: sim-qa
  - name: prod
    target: sim-prod
`
}

const targetsFile = `targets:
  sim-qa:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${DEPLOY_KEY}
    repos: [%[2]s]
  sim-prod:
    kind: spinnaker
    url: %[1]s/webhooks/webhook/api-prod
    constraints:
      deploy_key: ${DEPLOY_KEY}
    repos: [%[2]s]
`

// rigOptions vary the set-up.
type rigOptions struct {
	concurrency string // queue (default) or latest
	schema      bool   // validate the fake's answers against GitHub's OpenAPI schema
	// The target's deploy time is uniform in [minDelay, maxDelay].
	minDelay, maxDelay time.Duration
	reportDelay        time.Duration // the reporter's coalescing delay; 0 = the default
	logLevel           slog.Level
	// direct serves the one process without the front: its own address
	// is the public URL. Only for tests that never restart it (the front's
	// proxy hop costs CPU that a burst under -race has none of to spare).
	direct bool
	// sameSecond stops the fake's clock: every merge happens in the same
	// second, as in a burst, and GitHub's whole-second merge times all tie.
	sameSecond bool
	// engineTick is the engines' tick; 0 takes the default (1 s). A long
	// tick leaves the engines to wake-ups alone.
	engineTick time.Duration
	// postgres runs the processes on a fresh PostgreSQL database (pgtest)
	// instead of a SQLite file; then several may run at once, replicas
	// behind the front, which spreads requests over them in turn.
	postgres bool
	// pressed, when set and true, tells the reporter the installation's
	// write budget is short, whatever the pacer says.
	pressed *atomic.Bool
	// repos are more repositories beside acme/api, each in an
	// installation of its own, with the same configuration and targets.
	repos []string
	// wallClock rolls GitHub's write limits on the wall clock, for load
	// that runs in real time.
	wallClock bool
}

// Every rig's fake enforces GitHub's secondary limits at GitHub's values
// (80 writes a minute, 500 an hour, 100 in flight per installation), and
// every process paces its writes under them, as bot serve does. Both
// windows roll on one virtual clock that moves only when the pacer waits
// for a slot: hours of GitHub's hourly limit pass in the seconds a burst
// takes, and the fake judges each write on the same clock the pacer did.

type rig struct {
	tb      testing.TB
	opts    rigOptions
	gh      *githubtest.Server
	dbPath  string // the SQLite file; "" on PostgreSQL
	dbURL   string // the PostgreSQL database; "" on SQLite
	secret  []byte
	target  *target
	front   *front
	targets config.Targets
	logs    *servicetest.LogBuffer
	logFile io.Writer
	ids     servicetest.Deliveries
	gen     atomic.Int64
	clock   pacing.Clock // the write limits' clock

	url string // where the service is reached: the front, or the process (direct)
}

func newRig(tb testing.TB, o rigOptions) *rig {
	tb.Helper()
	if o.concurrency == "" {
		o.concurrency = "queue"
	}
	var ghOpts []githubtest.Option
	if o.schema {
		ghOpts = append(ghOpts, githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	}
	if o.sameSecond {
		now := time.Now().Truncate(time.Second)
		ghOpts = append(ghOpts, githubtest.WithClock(func() time.Time { return now }))
	}
	var clock pacing.Clock = pacing.NewVirtualClock(time.Now())
	if o.wallClock {
		clock = pacing.WallClock{}
	}
	ghOpts = append(ghOpts, githubtest.WithSecondaryLimits(githubtest.SecondaryLimits{Now: clock.Now}))
	// Cleanups run last-in first-out: every process stops (registered
	// later, by start) before the target and the front close (registered
	// below), and those before the fake's schema log is checked and the
	// logs' tail is dumped.
	r := &rig{
		tb:     tb,
		opts:   o,
		logs:   servicetest.NewLogBuffer(tb, 64<<10),
		gh:     servicetest.NewGitHub(tb, ghOpts...),
		secret: []byte("webhook-secret-and-token-key"),
		clock:  clock,
	}
	if o.postgres {
		r.dbURL = pgtest.NewDatabase(tb, "").URL
		st, err := store.OpenPostgres(context.Background(), r.dbURL)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := st.Migrate(context.Background()); err != nil {
			tb.Fatal(err)
		}
		st.Close()
	} else {
		r.dbPath = servicetest.DBPath(tb)
	}
	if f := os.Getenv("SHIPBOT_TEST_LOG"); f != "" {
		if fh, err := os.Create(f + "." + strings.ReplaceAll(tb.Name(), "/", "_")); err == nil {
			r.logFile = fh
			tb.Cleanup(func() { fh.Close() })
		}
	}
	r.target = newTarget(tb, deployKey, o.minDelay, o.maxDelay)
	r.front = newFront()
	r.url = r.front.srv.URL
	targets, err := config.ParseTargets("targets.yml", fmt.Appendf(nil, targetsFile, r.target.srv.URL, strings.Join(append([]string{repo}, o.repos...), ", ")), func(k string) (string, bool) {
		if k == "DEPLOY_KEY" {
			return deployKey, true
		}
		return "", false
	}, drivers.New().Kinds())
	if err != nil {
		tb.Fatal(err)
	}
	r.targets = targets
	tb.Cleanup(func() {
		r.target.close()
		r.front.srv.Close()
	})
	servicetest.SeedRepo(r.gh, repo, map[string]string{
		"README.md":           "# api\n",
		".github/shipbot.yml": repoConfig(o.concurrency),
	})
	for _, full := range o.repos {
		account, _, _ := strings.Cut(full, "/")
		inst := r.gh.AddInstallation(account)
		r.gh.AddRepo(full, githubtest.RepoSpec{InstallationID: inst, Files: map[string]string{
			"README.md":           "# " + full + "\n",
			".github/shipbot.yml": repoConfig(o.concurrency),
		}})
		r.gh.SetPermission(full, "alice", "write")
		r.gh.SetPermission(full, "bob", "write")
		r.gh.SetBranchProtection(full, "main", githubtest.BranchProtection{
			RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci/test"},
		})
	}
	return r
}

// proc is one shipbot process.
type proc struct {
	r     *rig
	owner string
	st    store.Store
	parts service.Parts
	srv   *servicetest.Server
	kill  *servicetest.KillSwitch
	back  *backend
	once  sync.Once
}

// pressure is the pacer's word on an installation's write budget, or the
// test's.
type pressure struct {
	pacer   *pacing.Pacer
	pressed *atomic.Bool
}

func (p pressure) Pressed(inst int64) bool {
	return (p.pressed != nil && p.pressed.Load()) || p.pacer.Pressed(inst)
}

// start runs a new process on the rig's database, as `bot serve` wires it,
// and points the front at it.
func (r *rig) start() *proc {
	tb := r.tb
	tb.Helper()
	owner := fmt.Sprintf("bot-%d", r.gen.Add(1))
	var logw io.Writer = r.logs
	if r.logFile != nil {
		logw = io.MultiWriter(r.logs, r.logFile)
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: r.opts.logLevel})).With("proc", owner)
	var st store.Store
	if r.dbURL != "" {
		pg, err := store.OpenPostgres(context.Background(), r.dbURL)
		if err != nil {
			tb.Fatal(err)
		}
		st = pg
	} else {
		st = servicetest.OpenStore(tb, r.dbPath)
	}
	ln := servicetest.Listen(tb)
	public := r.front.srv.URL
	if r.opts.direct {
		if r.gen.Load() > 1 {
			tb.Fatal("rig: a direct rig runs one process only")
		}
		public = "http://" + ln.Addr().String()
		r.url = public
	}
	kill := servicetest.NewKillSwitch()
	pacer := &pacing.Pacer{Ledger: st, Clock: r.clock}
	apps := servicetest.Apps(tb, r.gh, ghclient.Options{Base: kill.Transport(http.DefaultTransport), Logger: log, Pacer: pacer})
	parts := service.Bot{
		Store: st, Clients: apps, Log: log, Owner: owner, Targets: r.targets,
		// The version is the replica's name: it goes into the triggers'
		// User-Agent, so the target knows which replica sent each.
		PublicURL: public, TokenKey: r.secret, Version: owner,
		HTTP:        &http.Client{Transport: kill.Transport(http.DefaultTransport)},
		ReportDelay: r.opts.reportDelay, EngineTick: r.opts.engineTick, Pressure: pressure{pacer, r.opts.pressed},
	}.Build()
	srv := servicetest.Start(tb, ln, service.Options{
		Store: st, WebhookSecret: r.secret, Handlers: parts.Handlers, Loops: parts.Loops,
		Routes: []func(*echo.Echo){parts.Routes}, Log: log, Owner: owner,
	})
	p := &proc{r: r, owner: owner, st: st, parts: parts, srv: srv, kill: kill}
	p.back = r.front.attach(srv.URL)
	tb.Cleanup(p.stop)
	return p
}

// stop shuts the process down gracefully (SIGTERM): the front stops
// sending it new requests, Serve finishes what is in flight, pending
// reports are written, the store closes.
func (p *proc) stop() {
	p.once.Do(func() {
		p.r.front.detach(p.back, false)
		p.srv.Stop()
		p.parts.Reporter.Wait()
		if err := p.st.Close(); err != nil {
			p.r.tb.Errorf("%s: close store: %v", p.owner, err)
		}
		p.kill.Kill()
	})
}

// crash kills the process without a graceful shutdown, as far as one
// process can do that to a part of itself: its database handle is closed
// under it, so whatever it was about to write is lost; then no answer
// reaches it from GitHub or a target any more (requests in flight are cut,
// new ones fail), and no request reaches it from outside (in-flight ones
// are cut too). Its goroutines are then reaped.
func (p *proc) crash() {
	p.once.Do(func() {
		// The database first: a process that learns its requests failed
		// must not get to record that (a dead one would not).
		_ = p.st.Close() // errors are expected: the process is dying
		p.kill.Kill()
		p.r.front.detach(p.back, true)
		p.srv.Kill() // an error from a dying process means nothing
		p.parts.Reporter.Wait()
		// Its leases and inbox claims stay behind, as a dead process
		// leaves them: on SQLite the next process takes them over at
		// start (its file lock proves this one gone), on PostgreSQL the
		// other replicas wait for them to expire.
	})
}

// testDB is the rig's database opened directly, for the tests' own reads
// of what the service persisted. Queries are written for SQLite (? for
// parameters); on PostgreSQL they are rebound ($1, $2…).
type testDB struct {
	*sql.DB
	pg bool
}

// openDB opens a SQLite rig's database.
func openDB(tb testing.TB, path string) *testDB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	return &testDB{DB: db}
}

// openDB opens the rig's database, SQLite or PostgreSQL.
func (r *rig) openDB() *testDB {
	r.tb.Helper()
	if r.dbURL == "" {
		return openDB(r.tb, r.dbPath)
	}
	db, err := sql.Open("pgx", r.dbURL)
	if err != nil {
		r.tb.Fatal(err)
	}
	return &testDB{DB: db, pg: true}
}

func (d *testDB) rebind(q string) string {
	if !d.pg {
		return q
	}
	q = strings.ReplaceAll(q, "INDEXED BY rollouts_active ", "")
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (d *testDB) Query(q string, args ...any) (*sql.Rows, error) {
	return d.DB.Query(d.rebind(q), args...)
}
func (d *testDB) QueryRow(q string, args ...any) *sql.Row { return d.DB.QueryRow(d.rebind(q), args...) }

// front is the service's stable public URL, as a load balancer would be:
// it forwards each request to the next of the processes attached, in turn,
// and answers 503 while none is.
type front struct {
	srv *httptest.Server

	mu       sync.Mutex
	backends []*backend
	next     int
	// pinned, when set, takes every request whose path starts with
	// pinPrefix instead of the next in turn.
	pinned    *backend
	pinPrefix string
}

type backend struct {
	proxy  *httputil.ReverseProxy
	ctx    context.Context // cancelled when the process crashes
	cancel context.CancelFunc
}

// noBackend marks the front's own answer: the request reached no process.
const noBackend = "no shipbot process is running"

func newFront() *front {
	f := &front{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := f.pick(r.URL.Path)
		if b == nil {
			http.Error(w, noBackend, http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(b.ctx, cancel)
		defer stop()
		b.proxy.ServeHTTP(w, r.WithContext(ctx))
	}))
	return f
}

// pick is the backend a request for path goes to: the pinned one, or the
// next in turn.
func (f *front) pick(path string) *backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pinned != nil && strings.HasPrefix(path, f.pinPrefix) {
		return f.pinned
	}
	if len(f.backends) == 0 {
		return nil
	}
	f.next = (f.next + 1) % len(f.backends)
	return f.backends[f.next]
}

// pin sends every request whose path starts with prefix to b.
func (f *front) pin(prefix string, b *backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinned, f.pinPrefix = b, prefix
}

func (f *front) attach(target string) *backend {
	u, _ := url.Parse(target)
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{proxy: httputil.NewSingleHostReverseProxy(u), ctx: ctx, cancel: cancel}
	b.proxy.ErrorLog = nil
	b.proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, "backend: "+err.Error(), http.StatusBadGateway)
	}
	f.mu.Lock()
	f.backends = append(f.backends, b)
	f.mu.Unlock()
	return b
}

// detach stops sending new requests to b; cut also severs the ones in
// flight (a crash), whose clients then see 502.
func (f *front) detach(b *backend, cut bool) {
	f.mu.Lock()
	f.backends = slices.DeleteFunc(f.backends, func(x *backend) bool { return x == b })
	f.mu.Unlock()
	if cut {
		b.cancel()
	}
}

// delivery is one webhook delivery.
type delivery = servicetest.Delivery

// merged is one merge and the two deliveries GitHub sends for it.
type merged struct {
	pr          int
	sha, before string
	closed      delivery
	push        delivery
}

// approvedMerge opens a pull request by alice with green CI, has bob
// approve it, merges it and builds its deliveries.
func (r *rig) approvedMerge(title string) merged { return r.approvedMergeIn(repo, title) }

// approvedMergeIn is approvedMerge in another of the rig's repositories.
func (r *rig) approvedMergeIn(full, title string) merged {
	o, nm, _ := strings.Cut(full, "/")
	n := r.gh.OpenPullRequest(full, githubtest.PullRequestSpec{Title: title, Author: "alice"})
	head := r.gh.PullRequest(full, n).HeadSHA
	r.gh.SetStatus(full, head, "ci/test", "success")
	r.gh.AddReview(full, n, "bob", "APPROVED", "")
	before := r.gh.BranchSHA(full, "main")
	sha := r.gh.Merge(full, n, "alice")
	return merged{
		pr: n, sha: sha, before: before,
		closed: r.ids.New("pull_request", r.gh.PullRequestEvent(o, nm, n, "closed")),
		push:   r.ids.New("push", r.gh.PushEvent(o, nm, "refs/heads/main", before, sha)),
	}
}

// send delivers d through the front until the service acknowledges it,
// as GitHub's redelivery would after a failure.
func (r *rig) send(d delivery) {
	r.tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, err := servicetest.Hook{URL: r.url + servicetest.WebhookPath, Secret: r.secret}.Post(ctx, d)
		cancel()
		if code == http.StatusAccepted || code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Errorf("delivery %s (%s) never acknowledged: %d %v", d.ID, d.Event, code, err)
			return
		}
		time.Sleep(20 * time.Millisecond) // GitHub's redelivery, much sped up
	}
}

// sendAll fires the deliveries concurrently and returns how long it took
// until every one was acknowledged.
func (r *rig) sendAll(ds []delivery) time.Duration {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r.send(d)
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	return time.Since(start)
}

// waitLimit bounds every wait; tests finish far sooner.
const waitLimit = 90 * time.Second

// eventually polls cond every 5ms until it holds or waitLimit passes.
var eventually = servicetest.Wait{Limit: waitLimit}.Eventually

// dbRun is a run as the database holds it.
type dbRun struct {
	id, sha, state, tag, rollout string
	order                        int64
	stages                       []string // state per stage index
}

// runs reads every run of the repository with its stage states.
func runsIn(tb testing.TB, db *testDB) map[string]*dbRun {
	tb.Helper()
	// A run's rollout (one pipeline per repository here) has the run's id.
	rows, err := db.Query(`SELECT r.id, r.sha, r.state, r.tag, coalesce(o.state, ''), coalesce(o.rollout_order, 0)
		FROM runs r LEFT JOIN rollouts o ON o.id = r.id WHERE r.repo = ?`, repo)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]*dbRun{}
	byID := map[string]*dbRun{}
	for rows.Next() {
		var r dbRun
		if err := rows.Scan(&r.id, &r.sha, &r.state, &r.tag, &r.rollout, &r.order); err != nil {
			tb.Fatal(err)
		}
		out[r.sha] = &r
		byID[r.id] = &r
	}
	rows.Close()
	rows, err = db.Query(`SELECT rollout_id, idx, state FROM stage_states ORDER BY rollout_id, idx`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state string
		var idx int
		if err := rows.Scan(&id, &idx, &state); err != nil {
			tb.Fatal(err)
		}
		if r := byID[id]; r != nil {
			for len(r.stages) <= idx {
				r.stages = append(r.stages, "")
			}
			r.stages[idx] = state
		}
	}
	return out
}

// rolloutsDone counts the runs whose rollout ended.
func rolloutsDone(tb testing.TB, db *testDB) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM rollouts o JOIN runs r ON r.id = o.run_id WHERE r.repo = ? AND o.state = 'done'`, repo).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// waitRolloutsDone waits until n rollouts ended.
func (r *rig) waitRolloutsDone(db *testDB, n int, limit time.Duration) {
	r.tb.Helper()
	// Queries of the service's database compete with it for the CPU: look
	// at the active rollouts (a small index) first, and count the finished
	// ones (a table scan) only when none is active.
	servicetest.Wait{Limit: limit, Interval: 50 * time.Millisecond}.Eventually(r.tb, fmt.Sprintf("%d rollouts are done", n), func() bool {
		var active int
		if err := db.QueryRow(`SELECT count(*) FROM rollouts INDEXED BY rollouts_active WHERE state = 'active'`).Scan(&active); err != nil {
			r.tb.Fatal(err)
		}
		return active == 0 && rolloutsDone(r.tb, db) >= n
	})
}

// dbExecution is a stage execution as the database holds it.
type dbExecution struct {
	id, runID, stage, version, phase, outcome string
	idx, attempt                              int
	rollback                                  bool
	created, finished                         int64 // unix ms
}

func executionsIn(tb testing.TB, db *testDB) []dbExecution {
	tb.Helper()
	rows, err := db.Query(`SELECT id, rollout_id, stage, version, phase, outcome, idx, attempt, rollback, created_at, finished_at
		FROM executions ORDER BY created_at, id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []dbExecution
	for rows.Next() {
		var e dbExecution
		if err := rows.Scan(&e.id, &e.runID, &e.stage, &e.version, &e.phase, &e.outcome, &e.idx, &e.attempt, &e.rollback, &e.created, &e.finished); err != nil {
			tb.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// checkExecutionsDB checks from the executions table that no stage ever
// held two executions at once (each started no earlier than the one before
// it finished) and that versions entered each stage in increasing order.
func checkExecutionsDB(tb testing.TB, execs []dbExecution) {
	tb.Helper()
	byStage := map[string][]dbExecution{}
	for _, e := range execs {
		byStage[e.stage] = append(byStage[e.stage], e)
	}
	for stage, es := range byStage {
		sort.SliceStable(es, func(i, j int) bool {
			if es[i].created != es[j].created {
				return es[i].created < es[j].created
			}
			// Same millisecond: only possible if the first had finished.
			return es[i].finished != 0 && (es[j].finished == 0 || es[i].finished <= es[j].finished)
		})
		last := ""
		for i, e := range es {
			if e.phase != string(store.PhaseFinished) || e.finished == 0 {
				tb.Errorf("stage %s: execution %s (%s) never finished: phase %s", stage, e.id, e.version, e.phase)
			}
			if i > 0 {
				p := es[i-1]
				if p.finished == 0 || e.created < p.finished {
					tb.Errorf("stage %s: execution of %s started at %d while the one of %s (started %d) was active until %d",
						stage, e.version, e.created, p.version, p.created, p.finished)
				}
			}
			if !e.rollback {
				if last != "" && !versionLess(last, e.version) {
					tb.Errorf("stage %s: %s entered after %s", stage, e.version, last)
				}
				last = e.version
			}
		}
	}
}

// versionLess compares MAJOR.MINOR.PATCH versions (a leading v allowed).
func versionLess(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(strings.TrimPrefix(a, "v"), "%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(strings.TrimPrefix(b, "v"), "%d.%d.%d", &y[0], &y[1], &y[2])
	return slices.Compare(x[:], y[:]) < 0
}

// tagFor is the tag the Nth merge (from 0) gets with patch bumps.
func tagFor(n int) string { return fmt.Sprintf("v0.1.%d", n) }

// checkReleases checks that every merge was cut exactly once, in merge
// order: one tag on each merge commit, consecutive versions, one release
// per tag, and no other tags.
func (r *rig) checkReleases(merges []merged, runs map[string]*dbRun) {
	tb := r.tb
	tb.Helper()
	tagsOn := map[string][]string{}
	for _, t := range r.gh.Tags(repo) {
		tagsOn[t.SHA] = append(tagsOn[t.SHA], t.Name)
	}
	releases := map[string]int{}
	for _, rel := range r.gh.Releases(repo) {
		releases[rel.TagName]++
	}
	for i, m := range merges {
		want := tagFor(i)
		run := runs[m.sha]
		switch {
		case run == nil:
			tb.Errorf("merge %d (%s): no run: lost", i, m.sha[:7])
			continue
		case run.state != store.RunReleased || run.tag != want:
			tb.Errorf("merge %d (%s): run %s %q; want released %s", i, m.sha[:7], run.state, run.tag, want)
		}
		if got := tagsOn[m.sha]; !slices.Equal(got, []string{want}) {
			tb.Errorf("merge %d (%s) carries tags %v; want [%s]", i, m.sha[:7], got, want)
		}
		if releases[want] != 1 {
			tb.Errorf("%d releases of %s; want 1", releases[want], want)
		}
	}
	if n := len(r.gh.Tags(repo)); n != len(merges) {
		tb.Errorf("%d tags; want %d", n, len(merges))
	}
	if n := len(runs); n != len(merges) {
		tb.Errorf("%d runs; want %d", n, len(merges))
	}
}

// checkEveryMergeDeployedOnce checks what a queue-mode test without
// failures ends with: every merge released once, in order
// (checkReleases); its run done with both stages passed, each by one
// execution, attempt 1, succeeded; no stage ever held two executions, and
// versions entered each in order (database and target). It returns the
// runs by merge commit and the target's new executions by stage.
func (r *rig) checkEveryMergeDeployedOnce(db *testDB, merges []merged) (map[string]*dbRun, map[string][]trig) {
	tb := r.tb
	tb.Helper()
	runs := runsIn(tb, db)
	r.checkReleases(merges, runs)
	execs := executionsIn(tb, db)
	checkExecutionsDB(tb, execs)
	entered := checkTarget(tb, r.target)
	perRunStage := map[string][]dbExecution{}
	for _, e := range execs {
		perRunStage[e.runID+"/"+e.stage] = append(perRunStage[e.runID+"/"+e.stage], e)
	}
	for i, m := range merges {
		run := runs[m.sha]
		if run == nil {
			continue // reported by checkReleases
		}
		if run.rollout != "done" || strings.Join(run.stages, ",") != "passed,passed" {
			tb.Errorf("run of %s: rollout %q, stages %v; want done, both passed", tagFor(i), run.rollout, run.stages)
		}
		for _, stage := range []string{"qa", "prod"} {
			es := perRunStage[run.id+"/"+stage]
			if len(es) != 1 || es[0].attempt != 1 || es[0].rollback || es[0].outcome != "succeeded" {
				tb.Errorf("run of %s at %s: executions %+v; want one, attempt 1, succeeded", tagFor(i), stage, es)
			}
		}
	}
	return runs, entered
}

// callsByPattern summarizes requests per endpoint, most frequent first.
func callsByPattern(reqs []githubtest.Request) string {
	counts := map[string]int{}
	for _, r := range reqs {
		counts[r.Pattern]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %4d  %s\n", counts[k], k)
	}
	return b.String()
}

// shuffle puts deliveries in a random order, as GitHub's arrive.
func shuffle(ds []delivery) {
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
}
