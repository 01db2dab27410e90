package report

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/keyed"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

// Clients hands out an API client per App installation.
type Clients interface {
	Installation(id int64) (*gh.Client, error)
}

// RolloutStore is what the rollout reporter reads and records: the run's
// rollout and executions, the check run it keeps, and the API calls the
// merge has cost (its budget).
type RolloutStore interface {
	GetRollout(ctx context.Context, runID string) (store.RolloutRun, error)
	RolloutsOf(ctx context.Context, runID string) ([]store.RolloutRun, error)
	Executions(ctx context.Context, runID string) ([]store.Execution, error)
	APICalls(ctx context.Context, runID string) (int, error)
	AddAPICalls(ctx context.Context, runID string, n int) error
	store.CheckRuns
}

// Rollouts shows rollouts on their pull requests: the shipbot/rollout
// check run and the sticky comment. Changes are coalesced: a burst of stage
// events within Delay costs one write of each, one run is written at most
// once per Every (its final state excepted), and a write whose content did
// not change is not sent at all.
type Rollouts struct {
	Store    RolloutStore
	Clients  Clients
	Checks   *Checks
	Comments *Comments
	// Deployments, when set, mirrors each stage execution as a GitHub
	// Deployment.
	Deployments *Deployments
	// Pressure, when set, says whether an installation's reporting is
	// short of GitHub's write budget (the pacing.Pacer): then only what
	// the pull request must show is written (see planWrite).
	Pressure interface{ Pressed(installation int64) bool }
	Log      *slog.Logger
	// Delay is how long changes gather before they are written; default
	// 300ms.
	Delay time.Duration
	// Every is the least time between two writes of one run; default 1s.
	// A run whose turn comes in a burst moves through several states in
	// well under a second: the PR shows where it got to, not every step.
	Every time.Duration

	mu      sync.Mutex
	forms   map[[32]byte]bool      // configuration → the pipelines: form
	pending map[string]*time.Timer // a write scheduled, by run
	last    map[string][32]byte    // run → hash of its check run as last written
	// lastComment is the hash of each pull request's comment as last
	// written (repo#pr).
	lastComment map[string][32]byte
	wrote       map[string]time.Time // run → when it was last written
	// writes is each run's content-generating requests so far, its
	// release included, as this process knows them (see spentWrites).
	writes map[string]int
	// scheduled counts writes scheduled and not done; idle signals it
	// reaching 0. (A WaitGroup would forbid scheduling while Wait waits.)
	scheduled int
	idle      *sync.Cond
	writing   keyed.Mutex // one write per run at a time
}

// initLocked makes the maps; r.mu is held.
func (r *Rollouts) initLocked() {
	if r.pending == nil {
		r.pending, r.last, r.wrote = map[string]*time.Timer{}, map[string][32]byte{}, map[string]time.Time{}
		r.lastComment, r.writes = map[string][32]byte{}, map[string]int{}
		r.idle = sync.NewCond(&r.mu)
	}
}

// RolloutFinal implements pipeline.FinalReporter: it writes the run's
// state now, unless that is what was written last. An error is one worth
// trying again (the engine keeps the run until its final state is shown);
// GitHub refusing for good (the repository gone, a permission missing) is
// logged and not returned, since no retry would change it.
func (r *Rollouts) RolloutFinal(ctx context.Context, runID string) error {
	r.mu.Lock()
	r.initLocked()
	r.mu.Unlock()
	err := r.write(ctx, runID)
	if err != nil && github.Permanent(err) {
		r.Log.Warn("GitHub refused the rollout's final state; not trying again", "run", runID, "err", err)
		return nil
	}
	return err
}

// RolloutChanged implements pipeline.Reporter.
func (r *Rollouts) RolloutChanged(ctx context.Context, runID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	if r.pending[runID] != nil {
		return
	}
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
	r.pending[runID] = time.AfterFunc(delay, func() {
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

// Wait sends every scheduled write now, rather than when its delay ends,
// and blocks until all are done (shutdown, tests): a stopping process has
// no later to coalesce into.
func (r *Rollouts) Wait() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.pending {
		if t.Stop() { // not yet fired: fire it now, once
			t.Reset(0)
		}
	}
	for r.scheduled > 0 {
		r.idle.Wait()
	}
}

// Flush is Wait bounded by ctx, for a stopping service: a write waiting
// for GitHub (or for the installation's write budget, up to a minute) must
// not hold the shutdown past its grace period. It reports whether every
// write was done. What was not, the next process shows: it reports every
// run still in a rollout when it starts, and a finished run's final state
// was written before it finished. The writes left go on in the background
// until the process exits.
func (r *Rollouts) Flush(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		r.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Rollouts) write(ctx context.Context, runID string) error {
	// A delayed write and a final one must not both send what the other
	// is sending: the second waits and finds it written.
	defer r.writing.Lock(runID)()
	// What this write costs is added to the merge's count of API calls
	// (the dashboard shows it) and to its writes (planWrite's allowance).
	var tally github.Tally
	defer func() {
		if err := r.Store.AddAPICalls(context.WithoutCancel(ctx), runID, tally.N()); err != nil {
			r.Log.Warn("count API calls", "run", runID, "err", err)
		}
	}()
	ctx = github.WithTally(ctx, &tally)
	rr, err := r.Store.GetRollout(ctx, runID)
	if err != nil {
		return err
	}
	execs, err := r.Store.Executions(ctx, runID)
	if err != nil {
		return err
	}
	client, err := r.Clients.Installation(rr.Installation)
	if err != nil {
		return err
	}
	multi := r.multi(rr)
	views := rollout.Project(rr.Stages, execs)
	check := progress(rr, views)
	if multi {
		// One check run per pipeline (and one comment for the merge, with
		// a section per pipeline it runs). Each says why the merge runs
		// every pipeline when its files could not tell.
		check.Name = RolloutCheck + ": " + rr.Pipeline
		check.Summary += notesText(MergeNotes(rr.Run))
	}
	_, checkExists, err := r.Store.CheckRunID(ctx, rr.Repo, rr.SHA, check.Name)
	if err != nil {
		return err
	}
	spent := r.spentWrites(runID, checkExists)
	defer func() {
		r.mu.Lock()
		r.writes[runID] = spent + tally.Writes()
		r.mu.Unlock()
	}()
	// The writes below go one after the other on purpose: GitHub asks
	// integrations to send mutating requests serially (concurrent ones
	// trip its secondary rate limit), and this is not a critical path.
	if r.Deployments != nil {
		// Deployments are the live signal: each stage's start (its
		// deployment created) and finish (its final status), at once. In
		// the pipelines: form a stage's environment is <pipeline>/<stage>.
		prefix := ""
		if multi {
			prefix = rr.Pipeline + "/"
		}
		if err := r.Deployments.Sync(ctx, client, rr, execs, prefix); err != nil {
			return err
		}
	}
	comment := stickyComment(rr, views)
	if multi {
		if comment, err = r.sections(ctx, rr, views); err != nil {
			return err
		}
	}
	// The check run is the rollout's; the comment is the pull request's,
	// shared by the rollouts of a merge of several pipelines: each is
	// written only when it changed, whichever rollout's write finds it so.
	sum := sha256.Sum256([]byte(check.Status + check.Conclusion + check.Title + check.Summary))
	commentKey := fmt.Sprintf("%s#%d", rr.Repo, rr.PR)
	commentSum := sha256.Sum256([]byte(comment))
	hasComment := rr.PR > 0 && r.Comments != nil
	r.mu.Lock()
	if len(r.last) > 4096 || len(r.lastComment) > 4096 {
		// Bounded: forgetting costs at most one write that repeats what
		// GitHub shows already.
		clear(r.last)
		clear(r.lastComment)
		clear(r.wrote)
		clear(r.writes)
	}
	sameCheck, sameComment := r.last[runID] == sum, r.lastComment[commentKey] == commentSum
	r.mu.Unlock()
	if sameCheck && (sameComment || !hasComment) {
		return nil
	}
	var commentExists bool
	if hasComment {
		id, known, err := r.Comments.Store.CommentID(ctx, rr.Repo, rr.PR)
		if err != nil {
			return err
		}
		commentExists = known && id != 0
	}
	writeCheck, writeComment := planWrite(writeState{
		final: check.Status == StatusCompleted, alerting: mustShow(views), pressed: r.pressed(rr.Installation),
		checkChanged: !sameCheck, commentChanged: hasComment && !sameComment,
		checkExists: checkExists, commentExists: commentExists,
		spent: spent + tally.Writes(), allowance: writeAllowance(views, multi), reserve: writeReserve(views),
	})
	if !writeCheck && !writeComment {
		return nil
	}
	r.mu.Lock()
	r.wrote[runID] = time.Now()
	r.mu.Unlock()
	if writeCheck {
		if err := r.adoptCheckRun(ctx, client, rr, check.Name); err != nil {
			return err
		}
		if _, err := r.Checks.Upsert(ctx, client, rr.Repo, rr.SHA, check); err != nil {
			return err
		}
		r.mu.Lock()
		r.last[runID] = sum
		r.mu.Unlock()
	}
	if writeComment {
		// One writer of a pull request's comment at a time: two rollouts
		// creating it at once would post it twice.
		unlock := r.writing.Lock("comment:" + commentKey)
		defer unlock()
		r.mu.Lock()
		sameComment = r.lastComment[commentKey] == commentSum
		r.mu.Unlock()
		if !sameComment {
			if err := r.Comments.Upsert(ctx, client, rr.Repo, rr.PR, comment, noComments(rr.Run)); err != nil {
				return err
			}
			r.mu.Lock()
			r.lastComment[commentKey] = commentSum
			r.mu.Unlock()
		}
	}
	return nil
}

// pressed reports whether the installation's reporting is short of write
// budget.
func (r *Rollouts) pressed(installation int64) bool {
	return r.Pressure != nil && r.Pressure.Pressed(installation)
}

// spentWrites is what the run's reporting has written so far, and its
// release: 1 before its first write. A run this process has not written
// for though its check run exists was written by a process before a
// restart, or by another replica; its count is unknown, so it is taken as
// spent, and only what must be shown is written.
func (r *Rollouts) spentWrites(runID string, checkExists bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.writes[runID]; ok {
		return n
	}
	if checkExists {
		return 1 << 20
	}
	return 1
}

// noComments says the run's pull request had no comments when merged.
func noComments(run store.Run) bool {
	var pr facts.PR
	return len(run.PRFacts) > 0 && json.Unmarshal(run.PRFacts, &pr) == nil && pr.Comments != nil && *pr.Comments == 0
}

// writeState is what planWrite decides on: one write of a rollout's check
// run and the pull request's comment.
type writeState struct {
	// final: the rollout is over. alerting: it failed, rolls back, is
	// held by a blocker or bakes (mustShow). pressed: the installation's
	// reporting is short of write budget.
	final, alerting, pressed bool
	// What changed since it was last written, and what exists on GitHub.
	checkChanged, commentChanged bool
	checkExists, commentExists   bool
	// spent is the run's writes so far (its release included), allowance
	// what it may write in all, reserve what is still certain to come.
	spent, allowance, reserve int
}

// planWrite decides which of the check run and the comment a write sends.
// What the pull request must show is always written: the rollout's start
// (its check run created), its end (both concluded), and news that cannot
// wait (a failure, a rollback, a blocker, a bake). Everything else
// (reworded progress, and the comment before the end) is optional: it
// goes only while the installation's write budget is not under pressure
// and the run's writes so far, this one and those still certain to come
// stay within its allowance. A stage's start and finish show live anyway,
// as its GitHub Deployment. Under pressure a two-stage merge writes 8
// times: the release, the check run created and concluded, the comment
// once at the end, and each stage's deployment and final status; with
// budget to spare, at most 10 (writeAllowance).
func planWrite(s writeState) (check, comment bool) {
	if s.final || s.alerting {
		return s.checkChanged, s.commentChanged
	}
	check = s.checkChanged && !s.checkExists
	spent := s.spent
	if check {
		spent++
	}
	if s.pressed {
		return check, false
	}
	optional := func(changed bool) bool {
		if !changed || spent+1+s.reserve > s.allowance {
			return false
		}
		spent++
		return true
	}
	if !check {
		check = optional(s.checkChanged)
	}
	// The comment's first appearance comes before a progress edit of the
	// check run: it is the one the PR's conversation shows.
	return check, optional(s.commentChanged)
}

// writeAllowance is how many content-generating requests a run's rollout
// may cost when the budget is free: its release, its check run created
// and concluded, the comment created and concluded, each stage's (each
// wave target's) deployment and final status, and one to spare for
// progress: 10 for two stages. In the pipelines: form the merge has read
// one more thing, the pull request's files, so its rollouts give up the
// spare write: a merge that runs one two-stage pipeline then costs the
// single form's 20 GitHub calls, and k of them stay under 20 + 12·(k−1).
func writeAllowance(views []rollout.StageView, multi bool) int {
	spare := 1
	if multi {
		spare = 0
	}
	return 1 + 2 + 2 + 2*units(views) + spare
}

// writeReserve is the writes still certain to come before the run is
// shown done: the check run's and the comment's final state, and each
// stage's deployment and final status not yet written.
func writeReserve(views []rollout.StageView) int {
	n := 2
	for _, v := range views {
		switch {
		case v.State == schedule.Skipped:
		case v.Latest == nil:
			n += 2 // its deployment and final status
		case len(v.Targets) > 0:
			for _, ex := range v.Targets {
				if ex.Phase != rollout.Finished {
					n++
				}
			}
		case v.Latest.Phase != rollout.Finished:
			n++ // its final status
		}
	}
	return n
}

// units is the executions a run's first attempt deploys: one per stage
// not skipped, one per target of a wave.
func units(views []rollout.StageView) int {
	n := 0
	for _, v := range views {
		switch {
		case v.State == schedule.Skipped:
		case len(v.Targets) > 0:
			n += len(v.Targets)
		default:
			n++
		}
	}
	return n
}

// mustShow reports whether the run failed, is rolling back, is held by a
// blocker or bakes: news the PR gets at once, whatever it costs.
func mustShow(views []rollout.StageView) bool {
	for _, v := range views {
		if v.Alerting() {
			return true
		}
	}
	return false
}

// adoptCheckRun keeps a crash from giving a merge commit a second
// shipbot/rollout check run. The id of the check run is saved only after
// GitHub created it, so a process that died in between left a check run
// the database does not know. Before the first creation an intent is saved
// (a write, no API call); finding the intent without an id means such a
// crash may have happened, and only then GitHub is asked for the check run
// by name, which is adopted if it is there.
func (r *Rollouts) adoptCheckRun(ctx context.Context, client *gh.Client, rr store.RolloutRun, check string) error {
	if _, found, err := r.Store.CheckRunID(ctx, rr.Repo, rr.SHA, check); err != nil || found {
		return err
	}
	// The intent to create the check run, in the store's check run table
	// (its id is 0).
	creatingCheck := check + " (creating)"
	_, intended, err := r.Store.CheckRunID(ctx, rr.Repo, rr.SHA, creatingCheck)
	if err != nil {
		return err
	}
	if !intended {
		return r.Store.SaveCheckRunID(ctx, rr.Repo, rr.SHA, creatingCheck, 0)
	}
	owner, name, _ := strings.Cut(rr.Repo, "/")
	res, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, rr.SHA, &gh.ListCheckRunsOptions{
		CheckName: gh.String(check), Filter: gh.String("latest"), ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return fmt.Errorf("look for check run %s on %s: %w", check, short(rr.SHA), err)
	}
	for _, cr := range res.CheckRuns {
		if cr.GetName() == check {
			return r.Store.SaveCheckRunID(ctx, rr.Repo, rr.SHA, check, cr.GetID())
		}
	}
	return nil
}

// multi reports whether the rollout's configuration is the pipelines:
// form, where GitHub shows each pipeline apart (a check run each, stages
// named <pipeline>/<stage>). The configuration is the one the merge
// released with; a parse is remembered by content.
func (r *Rollouts) multi(rr store.RolloutRun) bool {
	key := sha256.Sum256(rr.Config)
	r.mu.Lock()
	m, ok := r.forms[key]
	r.mu.Unlock()
	if ok {
		return m
	}
	cfg, err := config.ParseRepo(config.RepoFile, rr.Config, rr.Pipeline)
	m = err == nil && cfg.Multi
	r.mu.Lock()
	if r.forms == nil || len(r.forms) >= 256 {
		r.forms = map[[32]byte]bool{} // bounded: configurations change rarely
	}
	r.forms[key] = m
	r.mu.Unlock()
	return m
}

// sections is the merge's sticky comment in the pipelines: form: a
// section per pipeline the merge runs, this rollout's from views.
func (r *Rollouts) sections(ctx context.Context, rr store.RolloutRun, views []rollout.StageView) (string, error) {
	all, err := r.Store.RolloutsOf(ctx, rr.Run.ID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("### shipbot\n\n")
	for _, o := range all {
		v := views
		if o.ID != rr.ID {
			execs, err := r.Store.Executions(ctx, o.ID)
			if err != nil {
				return "", err
			}
			v = rollout.Project(o.Stages, execs)
		}
		fmt.Fprintf(&b, "#### %s\n\n", markdown.Escape(o.Pipeline))
		b.WriteString(pipelineSection(o, v))
		b.WriteString("\n")
	}
	refusedSections(&b, rr.Run.Summarized().Refused)
	notes(&b, MergeNotes(rr.Run))
	return b.String(), nil
}

// maxRefusal bounds GitHub's answer as a refused release's section quotes
// it: an error body is GitHub's to size, the comment is ours.
const maxRefusal = 500

// refusedSections writes a comment's section for each pipeline of the
// pipelines: form whose release GitHub refused.
func refusedSections(b *strings.Builder, fs []store.RefusedRelease) {
	for _, f := range fs {
		fmt.Fprintf(b, "#### %s\n\n", markdown.Escape(f.Pipeline))
		b.WriteString(refusedSection(f))
		b.WriteString("\n")
	}
}

// RefusedComment is the merge's sticky comment while GitHub refuses every
// release it would cut, so that no rollout shows it: in the pipelines:
// form (multi) a section per pipeline, else the one release's refusal.
func RefusedComment(fs []store.RefusedRelease, multi bool) string {
	var b strings.Builder
	b.WriteString("### shipbot\n\n")
	if multi {
		refusedSections(&b, fs)
	} else if len(fs) > 0 {
		b.WriteString(refusedSection(fs[0]))
	}
	return b.String()
}

// RefusedCheck is the rollout check run of the single-pipeline form while
// GitHub refuses the merge's release: in progress, for it is tried again,
// and the rollout's own reports take the check run over once it is cut.
func RefusedCheck(f store.RefusedRelease) CheckOutput {
	return CheckOutput{Name: RolloutCheck, Status: StatusInProgress,
		Title: "Waiting: GitHub refused the release " + f.Tag, Summary: refusedSection(f)}
}

// refusedSection is the comment's section of a pipeline whose release
// GitHub refused: what it answered (on one line: its answers run over
// several), and that shipbot keeps trying.
func refusedSection(f store.RefusedRelease) string {
	next := "shipbot tries again by itself, at most 10 minutes after it was last refused; " +
		"this repository's later merges wait for it, so that versions keep their merge order."
	if f.Job {
		next = "The job failed on it: re-running the job, or the job of the repository's next merge, tries again."
	}
	return fmt.Sprintf("GitHub refused the release **%s**: %s\n\n%s\n", markdown.Escape(f.Tag),
		markdown.Escape(truncate.Bytes(strings.Join(strings.Fields(f.Reason), " "), maxRefusal, "…")), next)
}

// MergeNotes are what a merge of the pipelines: form recorded on why it
// runs the pipelines it runs when its files cannot tell (plan.Outcome's
// Notes, "why" in the run's summary): the merge's own report is not
// written once its rollouts show themselves, so theirs repeat it.
func MergeNotes(run store.Run) []string { return run.Summarized().Why }

// stageLine is one stage as the PR shows it.
type stageLine struct {
	name, version, state, started, duration, link string
}

func lines(rr store.RolloutRun, views []rollout.StageView) []stageLine {
	out := make([]stageLine, 0, len(views))
	for _, v := range views {
		l := stageLine{name: v.Name, version: rr.Tag, state: v.Words()}
		if start, d, ok := v.Span(time.Now()); ok {
			l.started = start.UTC().Format("15:04:05")
			l.duration = d.Round(time.Second).String()
			if v.Latest.URL != "" {
				// The downstream reported this URL: only an http(s) one
				// is linked, encoded so that it cannot end the link.
				l.link = markdown.Link("execution", v.Latest.URL)
			}
		}
		out = append(out, l)
		// A wave shows as one stage with a row per target under it.
		for _, ex := range v.Targets {
			tl := stageLine{name: "↳ " + ex.Target, version: ex.Tag, state: rollout.TargetWords(ex)}
			if ex.URL != "" {
				tl.link = markdown.Link("execution", ex.URL)
			}
			out = append(out, tl)
		}
	}
	return out
}

func table(b *strings.Builder, ls []stageLine) {
	b.WriteString("| stage | version | state | started | duration | link |\n|---|---|---|---|---|---|\n")
	for _, l := range ls {
		// The state quotes outside text: a target's error, a freeze
		// reason, an alarm's answer.
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", markdown.Escape(l.name), markdown.Escape(l.version),
			markdown.Escape(l.state), l.started, l.duration, l.link)
	}
}

// RolloutProgress renders shipbot/rollout for a run in (or done with) its
// rollout.
func RolloutProgress(rr store.RolloutRun, execs []store.Execution) CheckOutput {
	return progress(rr, rollout.Project(rr.Stages, execs))
}

func progress(rr store.RolloutRun, views []rollout.StageView) CheckOutput {
	c := CheckOutput{Name: RolloutCheck, Status: StatusInProgress}
	n := rollout.Count(views)
	// Nothing active in a run that stopped (failed, rolled back,
	// superseded) is the end: the engine shows that state before it marks
	// the rollout done.
	done := rr.Rollout == store.RolloutDone || n.Active == 0
	switch {
	case n.Failed > 0 || n.RolledBack > 0:
		c.Title = rr.Tag + ": rollout failed"
		if n.RolledBack > 0 {
			c.Title = rr.Tag + ": rolled back"
		}
		if done {
			c.Status, c.Conclusion = StatusCompleted, Failure
		}
	case n.Superseded > 0:
		c.Title = rr.Tag + ": superseded by a newer version"
		if done {
			c.Status, c.Conclusion = StatusCompleted, Cancelled
		}
	case n.Passed+n.Skipped == n.Total:
		c.Title = rr.Tag + ": deployed"
		if n.Skipped > 0 {
			c.Title = fmt.Sprintf("%s: deployed (%s skipped by label)", rr.Tag, stages(n.Skipped))
		}
		c.Status, c.Conclusion = StatusCompleted, Success
	default:
		c.Title = fmt.Sprintf("%s: %d of %d stages done", rr.Tag, n.Passed+n.Skipped, n.Total)
		for _, v := range views {
			if v.State == schedule.Pending && v.Wait.Kind == schedule.Approval {
				// The one wait a person has to lift: say so where the
				// PR's checks list shows it.
				c.Title = fmt.Sprintf("%s: waiting for approval of %s", rr.Tag, v.Name)
			}
		}
	}
	var b strings.Builder
	if rr.ReleaseURL != "" {
		fmt.Fprintf(&b, "Release %s.\n\n", markdown.Link(rr.Tag, rr.ReleaseURL))
	}
	table(&b, lines(rr, views))
	c.Summary = b.String()
	return c
}

// RolloutComment renders the sticky comment for a run's rollout.
func RolloutComment(rr store.RolloutRun, execs []store.Execution) string {
	return stickyComment(rr, rollout.Project(rr.Stages, execs))
}

func stickyComment(rr store.RolloutRun, views []rollout.StageView) string {
	return "### shipbot\n\n" + pipelineSection(rr, views)
}

// pipelineSection is what the comment says of one rollout: its release
// and stage table.
func pipelineSection(rr store.RolloutRun, views []rollout.StageView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Released **%s**.\n\n", markdown.Link(rr.Tag, rr.ReleaseURL))
	table(&b, lines(rr, views))
	var skipped []string
	for _, s := range views {
		if s.State == schedule.Skipped {
			skipped = append(skipped, markdown.Escape(s.Name))
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "\nSkipped by label: %s.\n", strings.Join(skipped, ", "))
	}
	return b.String()
}

// stages counts stages in words: "1 stage", "2 stages".
func stages(n int) string {
	if n == 1 {
		return "1 stage"
	}
	return fmt.Sprintf("%d stages", n)
}
