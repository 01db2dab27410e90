package report

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/store"
)

// Clients hands out an API client per App installation.
type Clients interface {
	Installation(id int64) (*gh.Client, error)
}

// Rollouts shows rollouts on their pull requests: the shipbot/rollout
// check run and the sticky comment. Changes are coalesced: a burst of stage
// events within Delay costs one write of each, one run is written at most
// once per Every (its final state excepted), and a write whose content did
// not change is not sent at all.
type Rollouts struct {
	Store    store.Store
	Clients  Clients
	Checks   *Checks
	Comments *Comments
	Log      *slog.Logger
	// Delay is how long changes gather before they are written; default
	// 300ms.
	Delay time.Duration
	// Every is the least time between two writes of one run; default 1s.
	// A run whose turn comes in a burst moves through several states in
	// well under a second: the PR shows where it got to, not every step.
	Every time.Duration

	mu      sync.Mutex
	pending map[string]bool
	last    map[string][32]byte  // run → hash of what was last written
	wrote   map[string]time.Time // run → when it was last written
	// scheduled counts writes scheduled and not done; idle signals it
	// reaching 0. (A WaitGroup would forbid scheduling while Wait waits.)
	scheduled int
	idle      *sync.Cond
	writing   keyedMutex // one write per run at a time
}

// initLocked makes the maps; r.mu is held.
func (r *Rollouts) initLocked() {
	if r.pending == nil {
		r.pending, r.last, r.wrote = map[string]bool{}, map[string][32]byte{}, map[string]time.Time{}
		r.idle = sync.NewCond(&r.mu)
	}
}

// RolloutFinal implements pipeline.FinalReporter: it writes the run's
// state now, unless that is what was written last.
func (r *Rollouts) RolloutFinal(ctx context.Context, runID string) error {
	r.mu.Lock()
	r.initLocked()
	r.mu.Unlock()
	return r.write(ctx, runID)
}

// RolloutChanged implements pipeline.Reporter.
func (r *Rollouts) RolloutChanged(ctx context.Context, runID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	if r.pending[runID] {
		return
	}
	r.pending[runID] = true
	delay := r.Delay
	if delay == 0 {
		delay = 300 * time.Millisecond
	}
	every := r.Every
	if every == 0 {
		every = time.Second
	}
	if at, ok := r.wrote[runID]; ok {
		delay = max(delay, time.Until(at.Add(every)))
	}
	r.scheduled++
	time.AfterFunc(delay, func() {
		defer func() {
			r.mu.Lock()
			if r.scheduled--; r.scheduled == 0 {
				r.idle.Broadcast()
			}
			r.mu.Unlock()
		}()
		r.mu.Lock()
		delete(r.pending, runID)
		r.mu.Unlock()
		if err := r.write(context.WithoutCancel(ctx), runID); err != nil {
			r.Log.Error("report rollout", "run", runID, "err", err)
		}
	})
}

// Wait blocks until every scheduled write is done (tests, shutdown).
func (r *Rollouts) Wait() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.scheduled > 0 {
		r.idle.Wait()
	}
}

func (r *Rollouts) write(ctx context.Context, runID string) error {
	// A delayed write and a final one must not both send what the other
	// is sending: the second waits and finds it written.
	defer r.writing.lock(runID)()
	rr, err := r.Store.GetRollout(ctx, runID)
	if err != nil {
		return err
	}
	execs, err := r.Store.Executions(ctx, runID)
	if err != nil {
		return err
	}
	check := RolloutProgress(rr, execs)
	comment := RolloutComment(rr, execs)
	sum := sha256.Sum256([]byte(check.Status + check.Conclusion + check.Title + check.Summary + "\x00" + comment))
	r.mu.Lock()
	same := r.last[runID] == sum
	if !same {
		r.wrote[runID] = time.Now()
	}
	r.mu.Unlock()
	if same {
		return nil
	}
	client, err := r.Clients.Installation(rr.Installation)
	if err != nil {
		return err
	}
	if err := r.adoptCheckRun(ctx, client, rr); err != nil {
		return err
	}
	if _, err := r.Checks.Upsert(ctx, client, rr.Repo, rr.SHA, check); err != nil {
		return err
	}
	if rr.PR > 0 && r.Comments != nil {
		if err := r.Comments.Upsert(ctx, client, rr.Repo, rr.PR, comment); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.last[runID] = sum
	r.mu.Unlock()
	return nil
}

// creatingCheck names, in the store's check run table, the intent to
// create a run's shipbot/rollout check run (its id is 0).
const creatingCheck = RolloutCheck + " (creating)"

// adoptCheckRun keeps a crash from giving a merge commit a second
// shipbot/rollout check run. The id of the check run is saved only after
// GitHub created it, so a process that died in between left a check run
// the database does not know. Before the first creation an intent is saved
// (a write, no API call); finding the intent without an id means such a
// crash may have happened, and only then GitHub is asked for the check run
// by name, which is adopted if it is there.
func (r *Rollouts) adoptCheckRun(ctx context.Context, client *gh.Client, rr store.RolloutRun) error {
	if _, found, err := r.Store.CheckRunID(ctx, rr.Repo, rr.SHA, RolloutCheck); err != nil || found {
		return err
	}
	_, intended, err := r.Store.CheckRunID(ctx, rr.Repo, rr.SHA, creatingCheck)
	if err != nil {
		return err
	}
	if !intended {
		return r.Store.SaveCheckRunID(ctx, rr.Repo, rr.SHA, creatingCheck, 0)
	}
	owner, name, _ := strings.Cut(rr.Repo, "/")
	res, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, rr.SHA, &gh.ListCheckRunsOptions{
		CheckName: gh.String(RolloutCheck), Filter: gh.String("latest"), ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return fmt.Errorf("look for check run %s on %s: %w", RolloutCheck, short(rr.SHA), err)
	}
	for _, cr := range res.CheckRuns {
		if cr.GetName() == RolloutCheck {
			return r.Store.SaveCheckRunID(ctx, rr.Repo, rr.SHA, RolloutCheck, cr.GetID())
		}
	}
	return nil
}

// stageLine is one stage as the PR shows it.
type stageLine struct {
	name, version, state, started, duration, link string
}

func lines(rr store.RolloutRun, execs []store.Execution) []stageLine {
	out := make([]stageLine, 0, len(rr.Stages))
	for _, s := range rr.Stages {
		l := stageLine{name: s.Name, version: rr.Tag}
		var latest *store.Execution
		var first *store.Execution
		for i := range execs {
			if execs[i].Stage == s.Index {
				if first == nil {
					first = &execs[i]
				}
				latest = &execs[i]
			}
		}
		if first != nil {
			l.started = first.CreatedAt.UTC().Format("15:04:05")
			end := latest.FinishedAt
			if end.IsZero() {
				end = time.Now()
			}
			l.duration = end.Sub(first.CreatedAt).Round(time.Second).String()
			if latest.URL != "" {
				l.link = fmt.Sprintf("[execution](%s)", latest.URL)
			}
		}
		l.state = stageWords(s, latest)
		out = append(out, l)
	}
	return out
}

// stageWords is a stage's state in plain words.
func stageWords(s store.StageRow, ex *store.Execution) string {
	switch s.State {
	case "pending":
		if s.Wait != "" {
			return s.Wait
		}
		return "queued"
	case "active":
		switch {
		case ex == nil:
			return "starting"
		case ex.Rollback:
			return "rolling back to " + ex.Tag
		case ex.Phase == store.PhaseTriggering && ex.Reason != "":
			return "triggering (retrying)"
		case ex.Phase == store.PhaseTriggering:
			return "triggering"
		case ex.Phase == store.PhaseBaking:
			return "baking until " + ex.BakeUntil.UTC().Format("15:04:05 MST")
		case ex.Phase == store.PhaseFinished && ex.Outcome == "failed":
			return "failed, rolling back"
		}
		return "deploying"
	case "passed":
		return "succeeded"
	case "skipped":
		return "skipped (label)"
	case "failed":
		if ex != nil && ex.Reason != "" {
			return "failed: " + ex.Reason
		}
		return "failed"
	case "rolled-back":
		if ex != nil {
			return "rolled back to " + ex.Tag
		}
		return "rolled back"
	case "superseded":
		return "superseded by a newer version"
	}
	return s.State
}

func table(b *strings.Builder, ls []stageLine) {
	b.WriteString("| stage | version | state | started | duration | link |\n|---|---|---|---|---|---|\n")
	for _, l := range ls {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", l.name, l.version, escapeCell(l.state), l.started, l.duration, l.link)
	}
}

func escapeCell(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }

// RolloutProgress renders shipbot/rollout for a run in (or done with) its
// rollout.
func RolloutProgress(rr store.RolloutRun, execs []store.Execution) CheckOutput {
	c := CheckOutput{Name: RolloutCheck, Status: StatusInProgress}
	var passed, skipped, failed, rolled, superseded, active, total int
	for _, s := range rr.Stages {
		total++
		switch s.State {
		case "active":
			active++
		case "passed":
			passed++
		case "skipped":
			skipped++
		case "failed":
			failed++
		case "rolled-back":
			rolled++
		case "superseded":
			superseded++
		}
	}
	// Nothing active in a run that stopped (failed, rolled back,
	// superseded) is the end: the engine shows that state before it marks
	// the rollout done.
	done := rr.Rollout == store.RolloutDone || active == 0
	switch {
	case failed > 0 || rolled > 0:
		c.Title = rr.Tag + ": rollout failed"
		if rolled > 0 {
			c.Title = rr.Tag + ": rolled back"
		}
		if done {
			c.Status, c.Conclusion = StatusCompleted, Failure
		}
	case superseded > 0:
		c.Title = rr.Tag + ": superseded by a newer version"
		if done {
			c.Status, c.Conclusion = StatusCompleted, Cancelled
		}
	case passed+skipped == total:
		c.Title = rr.Tag + ": deployed"
		if skipped > 0 {
			c.Title = fmt.Sprintf("%s: deployed (%d stage(s) skipped by label)", rr.Tag, skipped)
		}
		c.Status, c.Conclusion = StatusCompleted, Success
	default:
		c.Title = fmt.Sprintf("%s: %d of %d stages done", rr.Tag, passed+skipped, total)
	}
	var b strings.Builder
	if rr.ReleaseURL != "" {
		fmt.Fprintf(&b, "Release [%s](%s).\n\n", rr.Tag, rr.ReleaseURL)
	}
	table(&b, lines(rr, execs))
	c.Summary = b.String()
	return c
}

// RolloutComment renders the sticky comment for a run's rollout.
func RolloutComment(rr store.RolloutRun, execs []store.Execution) string {
	var b strings.Builder
	b.WriteString("### shipbot\n\n")
	if rr.ReleaseURL != "" {
		fmt.Fprintf(&b, "Released **[%s](%s)**.\n\n", rr.Tag, rr.ReleaseURL)
	} else {
		fmt.Fprintf(&b, "Released **%s**.\n\n", rr.Tag)
	}
	table(&b, lines(rr, execs))
	var skipped []string
	for _, s := range rr.Stages {
		if s.State == "skipped" {
			skipped = append(skipped, s.Name)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "\nSkipped by label: %s.\n", strings.Join(skipped, ", "))
	}
	return b.String()
}
