// Package storetest is the conformance suite of store.Store: the contract
// of every method, as its doc comment states it and as callers rely on it,
// written as tests that any implementation must pass. The SQLite store runs
// it (internal/store/sqlite_conformance_test.go); a PostgreSQL store runs
// the same suite against its own factory.
//
// The suite asserts behaviour, never SQL: what a second call returns, what
// a concurrent caller sees, what a crash in the middle of a transactional
// method may leave. Where a contract depends on time (leases, claims,
// retries) the suite uses real time with leases of a few tens of
// milliseconds, so an implementation needs no clock of the suite's; where a
// method takes a time (retryAt, receivedBefore) the suite passes it.
//
// Orders that rest on creation time alone (executions, deployments, a pull
// request's runs) are read at millisecond resolution by some
// implementations; the suite spaces such creations a few milliseconds
// apart rather than assert an order no implementation can see.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shipbot/shipbot/internal/store"
)

// Opener returns a fresh, empty, migrated store for one test. Closing it
// (and dropping whatever it was made in) is the opener's, at t's cleanup.
// The suite runs tests in parallel, each on its own store.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite, one subtest per interface and contract:
// Inbox/SaveDelivery_duplicate, Leases/expiry_takeover, and so on.
func Run(t *testing.T, open Opener) {
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.f(&env{T: t, ctx: t.Context(), s: open(t)})
				})
			}
		})
	}
}

type group struct {
	name  string
	cases []testCase
}

type testCase struct {
	name string
	f    func(e *env)
}

func groups() []group {
	return []group{
		{"Inbox", inboxCases},
		{"Runs", runsCases},
		{"Leases", leasesCases},
		{"CheckRuns", checkRunsCases},
		{"Comments", commentsCases},
		{"Rollouts", rolloutsCases},
		{"Pipelines", pipelinesCases},
		{"Freeze", freezeCases},
		{"Commands", commandsCases},
		{"Waves", wavesCases},
		{"Deployments", deploymentsCases},
		{"Dashboards", dashboardsCases},
		{"Events", eventsCases},
		{"Retention", retentionCases},
		{"Health", healthCases},
		{"Writes", writesCases},
	}
}

// Timing. A short lease is long enough for the call that takes it to
// return, and short enough to wait out; the suite never relies on a short
// lease still holding, only on a long one.
const (
	shortTTL = 30 * time.Millisecond
	longTTL  = time.Minute
)

// expire waits until every lease taken with shortTTL before the call is
// over, with a margin for clocks that tick in milliseconds.
func expire() { time.Sleep(2*shortTTL + 10*time.Millisecond) }

// tick separates two writes whose order only a creation or update time
// records, at millisecond resolution.
func tick() { time.Sleep(3 * time.Millisecond) }

// env is one test's store and the helpers that keep the tests short.
type env struct {
	*testing.T
	ctx context.Context
	s   store.Store
}

func (e *env) must(err error) {
	e.Helper()
	if err != nil {
		e.Fatal(err)
	}
}

// parallel runs f(i) for i in [0, n) at once, starting them together.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// timeOpts compare times to the millisecond (some stores keep no more)
// and nil and empty slices alike.
var timeOpts = cmp.Options{cmpopts.EquateApproxTime(time.Millisecond), cmpopts.EquateEmpty()}

// sameTime reports whether a and b are the same instant to the
// millisecond; a zero time is only the same as a zero time.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}

// recent reports whether t is a time the store set during this test.
func recent(t time.Time) bool {
	return !t.IsZero() && time.Since(t) < time.Minute && time.Until(t) < time.Second
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// base is a fixed merge time: whole seconds, as GitHub gives them.
var base = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// --- Fixtures ---------------------------------------------------------

const (
	repo = "acme/api"
	pk   = "acme/api:api" // the pipeline key of repo's pipeline "api"
)

// newRun creates a pending run of repo for sha.
func (e *env) newRun(repo, sha string, pr int) store.Run {
	e.Helper()
	r, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: sha, Installation: 1, Branch: "main", PR: pr, Source: "push"})
	e.must(err)
	if !created {
		e.Fatalf("run %s@%s existed already", repo, sha)
	}
	return r
}

// released creates a run of repo for sha and records its release as
// version (tag "v"+version) of pipeline "api".
func (e *env) released(repo, sha string, pr int, version string) store.Run {
	e.Helper()
	r := e.newRun(repo, sha, pr)
	r.State, r.Pipeline, r.Version, r.Tag = store.RunReleased, "api", version, "v"+version
	e.must(e.s.UpdateRun(e.ctx, r))
	return r
}

// start puts r into the rollout of pipeline key with stages.
func (e *env) start(r store.Run, key string, stages ...string) int64 {
	e.Helper()
	_, order, err := e.s.StartRollout(e.ctx, r.ID, key, r.Release(), []byte("version: 1\n"), nil, stages)
	e.must(err)
	return order
}

// inRollout releases a run of repo as version and starts its rollout in
// pk with stages.
func (e *env) inRollout(sha, version string, stages ...string) store.RolloutRun {
	e.Helper()
	r := e.released(repo, sha, 0, version)
	e.start(r, pk, stages...)
	return e.rollout(r.ID)
}

func (e *env) rollout(runID string) store.RolloutRun {
	e.Helper()
	rr, err := e.s.GetRollout(e.ctx, runID)
	e.must(err)
	return rr
}

func (e *env) stage(runID string, idx int) store.StageRow {
	e.Helper()
	rr := e.rollout(runID)
	if idx >= len(rr.Stages) || rr.Stages[idx].Index != idx {
		e.Fatalf("run %s has no stage %d: %+v", runID, idx, rr.Stages)
	}
	return rr.Stages[idx]
}

// execution reads one execution of a run by id.
func (e *env) execution(runID, id string) store.Execution {
	e.Helper()
	all, err := e.s.Executions(e.ctx, runID)
	e.must(err)
	for _, x := range all {
		if x.ID == id {
			return x
		}
	}
	e.Fatalf("run %s has no execution %s (it has %d)", runID, id, len(all))
	return store.Execution{}
}

func (e *env) executionIDs(runID string) []string {
	e.Helper()
	all, err := e.s.Executions(e.ctx, runID)
	e.must(err)
	ids := make([]string, len(all))
	for i, x := range all {
		ids[i] = x.ID
	}
	return ids
}

// enter starts a new deploy of r's version at stage idx as attempt.
func (e *env) enter(r store.RolloutRun, idx, attempt int) store.Execution {
	e.Helper()
	x := newExecution(r, idx, attempt)
	e.must(e.s.EnterStage(e.ctx, x))
	return x
}

// finish finishes x with outcome, leaving its stage in state.
func (e *env) finish(x store.Execution, outcome outcomeT, state stageState) {
	e.Helper()
	x.Outcome = outcome
	e.must(e.s.FinishExecution(e.ctx, x, state))
}

// deployed enters stage idx of r, and finishes it successfully.
func (e *env) deployed(r store.RolloutRun, idx int) store.Execution {
	e.Helper()
	x := e.enter(r, idx, 1)
	e.finish(x, succeeded, passed)
	return x
}

func (e *env) setState(runID string, idx int, st stageState) {
	e.Helper()
	e.must(e.s.SetStageState(e.ctx, runID, idx, st))
}

func (e *env) states(runID string) string {
	e.Helper()
	var out []string
	for _, st := range e.rollout(runID).Stages {
		out = append(out, fmt.Sprint(st.State))
	}
	return fmt.Sprint(out)
}

func runIDs(rs []store.RolloutRun) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func shas(rs []store.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.SHA
	}
	return out
}
