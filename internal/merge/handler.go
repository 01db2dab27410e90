// Package merge takes a merge from delivery to release. GitHub sends two
// deliveries for one merge (pull_request closed+merged, and push to the base
// branch), in either order, each possibly redelivered or lost: whichever
// arrives first creates the run, keyed by repository and merge commit, and
// the other finds it. Runs of one repository are then taken in merge order,
// one at a time under a lease, so versions are cut once and in order. Merge
// order is the branch's first-parent history, not arrival order: a run goes
// after the merge its parent commit is, even one whose deliveries have not
// arrived yet (see earlierFirst).
package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"golang.org/x/sync/errgroup"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/lease"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/release"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Clients hands out an API client per App installation.
type Clients interface {
	Installation(id int64) (*gh.Client, error)
}

// Store is what the merge coordinator keeps: one run per merge commit, in
// merge order, under the repository's lease, with what each cost in API
// calls.
type Store interface {
	CreateRun(ctx context.Context, r store.Run) (store.Run, bool, error)
	FillRun(ctx context.Context, r store.Run) error
	UpdateRun(ctx context.Context, r store.Run, evs ...store.Event) error
	GetRun(ctx context.Context, id string) (store.Run, error)
	RunBySHA(ctx context.Context, repo, sha string) (store.Run, error)
	OpenRunIDs(ctx context.Context, repo string) ([]string, error)
	ReposWithOpenRuns(ctx context.Context) ([]string, error)
	AddAPICalls(ctx context.Context, runID string, n int) error
	store.Leases
}

// Coordinator handles merges.
type Coordinator struct {
	Store   Store
	Clients Clients
	Checks  *report.Checks
	Owner   string // lease owner: this process (each Process call holds leases as Owner/<random>)
	Log     *slog.Logger
	// Comments, when set, shows the verdict in the PR's sticky comment.
	Comments *report.Comments
	// Rollouts, when set, takes every released run into its pipeline.
	Rollouts RolloutStarter
	// Observe, when set, is told of every run that reaches a verdict (the
	// demo narrates with it).
	Observe func(store.Run, plan.Outcome)
	// LeaseTTL bounds how long a dead process blocks a repository's
	// releases; zero means lease.DefaultTTL.
	LeaseTTL time.Duration
	// SweepEvery is how often open runs are looked for (crash recovery and
	// runs whose processing failed); default 5s.
	SweepEvery time.Duration
	// LateDelivery bounds how far back an unheard-of earlier merge is
	// taken first; default DefaultLateDelivery.
	LateDelivery time.Duration
	// RefusedRetry is how long a merge whose release GitHub refused (a
	// 4xx answer: a permission missing, a ruleset) waits before it is
	// evaluated again; each refusal in a row doubles it, up to
	// maxRefusedRetry. Default 5s. Retried at the sweep's pace instead, an
	// evaluation's 8 calls every 5 s would spend more than the
	// installation's 5,000 calls an hour on a refusal that a person must
	// fix, starving its other repositories.
	RefusedRetry time.Duration
	// OneShot means nothing evaluates a merge again in this process when
	// it fails (Action mode: the job ends). A refused release is then
	// shown in the sticky comment only, saying so: a shipbot/rollout check
	// run would mark the merge handled, and the next job's catch-up, which
	// is what tries it again, would pass it by.
	OneShot bool
	// PairWait is how long a merge known from one of its two deliveries
	// waits for the other before it is evaluated; default DefaultPairWait,
	// negative for none (Action mode sees one event only).
	PairWait time.Duration

	kickOnce sync.Once
	kick     chan struct{}

	// refusedMu guards refused: per run whose release GitHub refused, how
	// long it last waited and until when it waits now. In memory: each
	// replica backs off on its own.
	refusedMu sync.Mutex
	refused   map[string]backoff
}

// backoff is a refused merge's wait before its next evaluation.
type backoff struct {
	wait  time.Duration
	until time.Time
}

// maxRefusedRetry caps the wait between evaluations of a merge whose
// release GitHub keeps refusing: once fixed, it goes ahead within this.
const maxRefusedRetry = 10 * time.Minute

// nextWait is the wait after a refusal when the last one waited prev
// (0: none): first, then twice the last, at most maxRefusedRetry.
func nextWait(prev, first time.Duration) time.Duration {
	if prev <= 0 {
		return min(first, maxRefusedRetry)
	}
	return min(2*prev, maxRefusedRetry)
}

// refusedAgain starts or lengthens the run's wait after a refusal.
func (c *Coordinator) refusedAgain(runID string) time.Duration {
	first := c.RefusedRetry
	if first <= 0 {
		first = 5 * time.Second
	}
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	if c.refused == nil {
		c.refused = map[string]backoff{}
	}
	wait := nextWait(c.refused[runID].wait, first)
	c.refused[runID] = backoff{wait: wait, until: time.Now().Add(wait)}
	return wait
}

// refusedWait is how much longer the run waits after a refusal; 0 when
// it may be evaluated now.
func (c *Coordinator) refusedWait(runID string) time.Duration {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	return max(time.Until(c.refused[runID].until), 0)
}

// refusalOver forgets the run's wait: its evaluation got past the release.
func (c *Coordinator) refusalOver(runID string) {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	delete(c.refused, runID)
}

// DefaultPairWait: GitHub sends a merge's pull_request and push deliveries
// within moments of each other. The pull request's carries the PR (else
// found with one call), the push's the parent commit (else one more call
// to place the merge in history); waiting this long for the other saves
// both calls on nearly every merge, and costs a direct push, which has no
// pull request to wait for, this much latency.
const DefaultPairWait = 2 * time.Second

// errPairWait means the run waits for its other delivery.
var errPairWait = errors.New("waiting for the merge's other delivery")

// errRetryLater means the run waits out its backoff after GitHub refused
// its release (refusedWait).
var errRetryLater = errors.New("waiting to try a refused release again")

// errReleaseRefused marks an evaluation that GitHub refused a release of.
var errReleaseRefused = errors.New("GitHub refused the release")

func (c *Coordinator) pairWait() time.Duration {
	if c.PairWait == 0 {
		return DefaultPairWait
	}
	return c.PairWait
}

func (c *Coordinator) kicks() chan struct{} {
	c.kickOnce.Do(func() { c.kick = make(chan struct{}, 1) })
	return c.kick
}

// waitsForPair reports how much longer r waits for its other delivery.
func (c *Coordinator) waitsForPair(r store.Run) time.Duration {
	if r.State == store.RunReleasing || r.Source == sourceHistory || (len(r.PRFacts) > 0 && r.Parent != "") {
		return 0
	}
	return time.Until(r.CreatedAt.Add(c.pairWait()))
}

// RolloutStarter puts a released run into its pipeline's rollout. It must
// be idempotent: a resumed evaluation calls it again.
type RolloutStarter interface {
	// Start puts the released run into the rollout of pipeline, deploying
	// rel, with the configuration the merge parsed (cfg) and released with
	// (cfgYAML, which the rollout keeps).
	Start(ctx context.Context, r store.Run, pipeline string, rel store.Release, cfg config.Repo, cfgYAML []byte, labels []string) error
}

// Handles implements webhook.Handler.
func (c *Coordinator) Handles() []string { return []string{"pull_request.closed", "push"} }

// merge is what a delivery says about a merge.
type merge struct {
	repo, sha, branch string
	pr                *facts.PR
	mergedAt          time.Time
	parent            string // the branch head before the merge, when a push said
	// several: a push that may have landed several merges at once (a
	// merge queue's group, a batch), see landsSeveral.
	several bool
}

// Handle implements webhook.Handler: it records the merge, then processes
// the repository's open runs.
func (c *Coordinator) Handle(ctx context.Context, d store.Delivery) error {
	var m merge
	var ok bool
	var err error
	switch d.Event {
	case "pull_request":
		m, ok, err = fromPullRequest(d.Payload)
	case "push":
		m, ok, err = fromPush(d.Payload)
	}
	if err != nil {
		return webhook.Permanent(fmt.Errorf("decode %s delivery: %w", d.Event, err))
	}
	if !ok {
		return nil
	}
	if m.parent != "" && m.several {
		// The push may land several merges: each first-parent commit
		// between before and after is a merge of its own, recorded now,
		// in branch order, each placed after the one before it.
		if err := c.recordLanded(ctx, d, m); err != nil {
			return err
		}
		return c.Process(ctx, m.repo)
	}
	r := store.Run{Repo: m.repo, SHA: m.sha, Installation: d.Installation, Branch: m.branch, Source: d.Event,
		MergedAt: m.mergedAt, Parent: m.parent}
	if m.pr != nil {
		r.PR = m.pr.Number
		if r.PRFacts, err = json.Marshal(m.pr); err != nil {
			return fmt.Errorf("encode pull request: %w", err)
		}
	}
	stored, created, err := c.Store.CreateRun(ctx, r)
	if err != nil {
		return err
	}
	if !created && !stored.Open() {
		// The merge was handled already (the other delivery, or a
		// redelivery): nothing for this delivery to start. Open runs of
		// other merges are their deliveries' work, or the sweep's.
		return nil
	}
	if created {
		c.Log.Info("merge recorded", "repo", m.repo, "sha", m.sha, "run", stored.ID, "source", d.Event)
	} else if (len(stored.PRFacts) == 0 && m.pr != nil) || (stored.Parent == "" && m.parent != "") {
		// The other delivery came first. The pull request's saves the
		// lookup and gives the merge time; the push's names the parent
		// that places the run in history. Only the missing parts are
		// written, so an evaluation under way loses nothing.
		r.ID = stored.ID
		if err := c.Store.FillRun(ctx, r); err != nil {
			return err
		}
	}
	return c.Process(ctx, m.repo)
}

func fromPullRequest(payload []byte) (merge, bool, error) {
	var ev gh.PullRequestEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return merge{}, false, err
	}
	p := ev.GetPullRequest()
	// Only merges into the default branch deploy, as with pushes: a PR
	// merged into a feature or release branch is not the deploy button.
	if ev.GetAction() != "closed" || !p.GetMerged() || p.GetBase().GetRef() != ev.GetRepo().GetDefaultBranch() {
		return merge{}, false, nil
	}
	if p.GetMergeCommitSHA() == "" || ev.GetRepo().GetFullName() == "" {
		return merge{}, false, errors.New("merged pull request without merge_commit_sha or repository")
	}
	pr := facts.PRFromEvent(p)
	return merge{
		repo:     ev.GetRepo().GetFullName(),
		sha:      p.GetMergeCommitSHA(),
		branch:   p.GetBase().GetRef(),
		pr:       &pr,
		mergedAt: p.GetMergedAt().Time,
	}, true, nil
}

func fromPush(payload []byte) (merge, bool, error) {
	var ev gh.PushEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return merge{}, false, err
	}
	branch, isBranch := strings.CutPrefix(ev.GetRef(), "refs/heads/")
	// Tag pushes (the bot's own releases among them), deletions and pushes
	// to branches other than the default one are not merges to deploy.
	if !isBranch || ev.GetDeleted() || branch != ev.GetRepo().GetDefaultBranch() || ev.GetAfter() == "" {
		return merge{}, false, nil
	}
	m := merge{repo: ev.GetRepo().GetFullName(), sha: ev.GetAfter(), branch: branch, several: landsSeveral(&ev)}
	if before := ev.GetBefore(); !ev.GetCreated() && !ev.GetForced() && before != "" && strings.Trim(before, "0") != "" {
		// A push that moved the branch forward: "before" is the head the
		// merge was made on.
		m.parent = before
	}
	if ts := ev.GetHeadCommit().GetTimestamp(); !ts.IsZero() {
		m.mergedAt = ts.Time
	}
	return m, true, nil
}

// landsSeveral reports whether a push may have landed more than one merge,
// which only the commits' parents can tell (a push lists its commits
// without them). A push whose one new commit is its head landed exactly
// one: a squash merge, or a merge commit with the pull request's commits
// (pushed to its branch before, so not "distinct") behind it. Anything
// else, a merge queue's group (its commits were made on the queue's
// branch first) or a batch of several, is worth a compare.
func landsSeveral(ev *gh.PushEvent) bool {
	distinct := 0
	for _, c := range ev.Commits {
		if c.GetDistinct() {
			distinct++
		}
	}
	return len(ev.Commits) > 1 && !(distinct == 1 && ev.GetHeadCommit().GetDistinct())
}

// Process takes the open runs of repo, oldest merge first, until none is
// left. Another process holding the repository's lease is doing the same
// work; then Process returns at once, and that holder, which looks for
// open runs again after giving the lease up, takes this one too.
func (c *Coordinator) Process(ctx context.Context, repo string) error {
	name := "release:" + repo
	// The holder is this call, not just this process: the worker and the
	// sweeper of one process call Process concurrently, and under one owner
	// name each would take the other's lease for its own.
	k := &lease.Keeper{Store: c.Store, Owner: c.Owner + "/" + store.NewID()[:12], TTL: c.LeaseTTL, Log: c.Log}
	for {
		release, held, err := k.Hold(ctx, name)
		if err != nil || !held {
			return err
		}
		err = c.drain(ctx, repo, k, name)
		release()
		if errors.Is(err, errPairWait) || errors.Is(err, errRetryLater) {
			return nil // Run comes back when the wait is over
		}
		if err != nil {
			return err
		}
		// A run recorded after drain last looked, while we held the lease,
		// was left to us by the delivery that recorded it.
		open, err := c.Store.OpenRunIDs(ctx, repo)
		if err != nil || len(open) == 0 {
			return err
		}
	}
}

// drain evaluates the open runs of repo in merge order until none is left.
func (c *Coordinator) drain(ctx context.Context, repo string, k *lease.Keeper, name string) error {
	// Runs that let an earlier merge go first since a run last finished:
	// meeting one again would mean history loops, which it cannot.
	deferred := map[string]bool{}
	// The open runs in merge order, read once and followed while it holds:
	// reading them all again for every run made a burst of merges cost
	// quadratic time. Order stays safe without a fresh list, because a run
	// whose earlier merge is still open says so (errEarlierFirst), and the
	// list is then read again.
	var queue []string // run ids
	for {
		if len(queue) == 0 {
			var err error
			if queue, err = c.Store.OpenRunIDs(ctx, repo); err != nil || len(queue) == 0 {
				return err
			}
		}
		// The run as it is now: a delivery may have filled it in since the
		// list was read.
		r, err := c.Store.GetRun(ctx, queue[0])
		if err != nil {
			return err
		}
		queue = queue[1:]
		if !r.Open() {
			continue
		}
		if wait := c.waitsForPair(r); wait > 0 {
			// Later runs wait too: they must not take a version first.
			c.kickAfter(wait)
			return errPairWait
		}
		if wait := c.refusedWait(r.ID); wait > 0 {
			// Later runs wait too, as they did while it was refused.
			c.kickAfter(wait)
			return errRetryLater
		}
		// Stop at the first failure: a later merge must not take a version
		// before an earlier one has its own.
		var tally github.Tally
		err = c.evaluate(github.WithTally(ctx, &tally), r)
		if cerr := c.Store.AddAPICalls(ctx, r.ID, tally.N()); cerr != nil {
			c.Log.Warn("count API calls", "run", r.ID, "err", cerr)
		}
		switch {
		case errors.Is(err, errEarlierFirst) && !deferred[r.ID]:
			deferred[r.ID] = true
			queue = c.earlierAhead(ctx, r, queue)
		case errors.Is(err, errReleaseRefused):
			wait := c.refusedAgain(r.ID)
			c.kickAfter(wait)
			return fmt.Errorf("run %s (%s@%s), tried again in %s: %w", r.ID, repo, short(r.SHA), wait, err)
		case err != nil:
			return fmt.Errorf("run %s (%s@%s): %w", r.ID, repo, short(r.SHA), err)
		default:
			clear(deferred)
			c.refusalOver(r.ID)
		}
		// The keeper renews the lease while it is held; a renewal that
		// found another owner holding it (the database was out of reach
		// past its TTL) ends the drain before another release is cut.
		if !k.Held(name) {
			return fmt.Errorf("lost lease %s", name)
		}
	}
}

// kickAfter has Run sweep again once wait has passed.
func (c *Coordinator) kickAfter(wait time.Duration) {
	time.AfterFunc(wait, func() {
		select {
		case c.kicks() <- struct{}{}:
		default:
		}
	})
}

// earlierAhead puts the open earlier merge that r let go first (its
// parent, which evaluate has just recorded or found) ahead of r in queue.
// Reading the whole order again instead made a burst's walk back through
// history quadratic. When the parent cannot be placed, it returns nil: the
// order is read again.
func (c *Coordinator) earlierAhead(ctx context.Context, r store.Run, queue []string) []string {
	fresh, err := c.Store.GetRun(ctx, r.ID) // evaluate filled in the parent
	if err != nil || fresh.Parent == "" {
		return nil
	}
	prev, err := c.Store.RunBySHA(ctx, r.Repo, fresh.Parent)
	if err != nil || !prev.Open() {
		return nil
	}
	return append([]string{prev.ID, fresh.ID}, queue...)
}

// Sweep processes every repository with open runs: after a restart, and
// for runs whose processing failed.
func (c *Coordinator) Sweep(ctx context.Context) {
	repos, err := c.Store.ReposWithOpenRuns(ctx)
	if err != nil {
		c.Log.Error("sweep open runs", "err", err)
		return
	}
	for _, repo := range repos {
		if err := c.Process(ctx, repo); err != nil && ctx.Err() == nil {
			c.Log.Warn("process open runs", "repo", repo, "err", err)
		}
	}
}

// Run sweeps at start and then periodically until ctx ends.
func (c *Coordinator) Run(ctx context.Context) {
	every := c.SweepEvery
	if every == 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kicks():
		}
	}
}

// evaluate takes one run to its verdict: facts, decision, release, report.
func (c *Coordinator) evaluate(ctx context.Context, r store.Run) error {
	client, err := c.Clients.Installation(r.Installation)
	if err != nil {
		return fmt.Errorf("installation %d: %w", r.Installation, err)
	}
	reader, err := facts.NewGitHub(client, r.Repo)
	if err != nil {
		return err
	}
	in := facts.Input{Repo: r.Repo, SHA: r.SHA, Branch: r.Branch, LookupPR: true}
	if len(r.PRFacts) > 0 {
		var pr facts.PR
		if err := json.Unmarshal(r.PRFacts, &pr); err != nil {
			return fmt.Errorf("decode stored pull request: %w", err)
		}
		in.PR = &pr
	}
	// A run that persisted its version keeps it: it may already be tagged,
	// and only it may take that version. Any other run first settles
	// whether an earlier merge goes first.
	history := r.State != store.RunReleasing
	if history && r.Parent != "" {
		// What the database knows costs no API call: an open run on the
		// parent goes first (before any read is spent on this one), a
		// finished one lets this run go.
		switch prev, err := c.Store.RunBySHA(ctx, r.Repo, r.Parent); {
		case err == nil && prev.Open():
			return errEarlierFirst
		case err == nil:
			history = false
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if history && r.Source == sourceHistory {
		// This run was found behind a later merge whose deliveries came
		// first: its own earlier merges are likely unrecorded too (a burst
		// the worker has not reached yet). Walk history before reading its
		// facts, so they are not read in vain; the later merge waits anyway.
		if err := c.earlierFirst(ctx, client, reader, &r); err != nil {
			return err
		}
		history = false
	}
	// Otherwise whether an earlier merge must go first is found out beside
	// the facts, so that the history check adds no round trip.
	var snap facts.Snapshot
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		snap, err = facts.Gather(gctx, reader, in)
		return err
	})
	if history {
		g.Go(func() error { return c.earlierFirst(gctx, client, reader, &r) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	out := plan.Evaluate(plan.Input{Repo: r.Repo, Branch: r.Branch, SHA: r.SHA, Snapshot: snap})
	if snap.HasPR {
		r.PR = snap.PR.Number
	}
	r.Pipeline = "" // no configuration, or an invalid one
	if ps := out.Pipelines; len(ps) > 0 {
		// The first pipeline the merge runs: in the pipelines: form each
		// rollout names its own.
		r.Pipeline = ps[0].Name
	} else if ps := out.Config.Pipelines; len(ps) > 0 {
		r.Pipeline = ps[0].Name
	}
	log := c.Log.With("repo", r.Repo, "sha", r.SHA, "run", r.ID, "pr", r.PR)
	// What the last evaluation found GitHub refusing, and showed.
	shown := r.Summarized().Refused
	// The summary goes with the run's first update, before any rollout
	// starts: a rollout's first report repeats its notes (report.MergeNotes).
	if r.Summary, err = json.Marshal(store.RunSummary{Kind: string(out.Kind), Reasons: out.Gate.Reasons, Problems: out.Problems,
		Notes: out.Gate.Notes, Why: out.Notes}); err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}

	releaseURL := ""
	var releases []started // the pipelines: form's, one per pipeline
	switch out.Kind {
	case plan.Release:
		if out.Config.Multi {
			// A release GitHub refuses holds up only its own pipeline: the
			// others' rollouts start (before the run is marked released, as
			// below), and the run is evaluated again for the refused ones.
			var refusals []store.RefusedRelease
			var refused error
			if releases, refusals, refused, err = c.releasePipelines(ctx, client, &r, out, snap, log); err != nil {
				return err
			}
			if len(refusals) > 0 {
				// Recorded before any rollout starts, so that the rollouts'
				// reports show them; with none to show them, shown here.
				if err := c.showRefusals(ctx, client, &r, snap, refusals, shown, len(releases) == 0, true, log); err != nil {
					return errors.Join(refused, err)
				}
			}
			if c.Rollouts != nil {
				for _, s := range releases {
					if err := c.Rollouts.Start(ctx, r, s.pipeline, s.rel, out.Config, snap.Config, snap.PR.Labels); err != nil {
						return fmt.Errorf("start rollout of %s: %w", s.pipeline, err)
					}
				}
			}
			if refused != nil {
				return refused
			}
			r.State = store.RunReleased
			break
		}
		r.Version, r.Tag, r.PrevTag = out.Version.String(), out.Tag, out.PrevTag
		if !out.Reused {
			// Persist the version before creating anything, so a crash
			// between here and the release resumes with the same intent.
			r.State = store.RunReleasing
			if err := c.Store.UpdateRun(ctx, r); err != nil {
				return err
			}
			pub, err := release.Publish(ctx, client, r.Repo, out.Tag, r.SHA, out.Tag, release.Notes(release.NotesInput{
				Repo: r.Repo, Tag: out.Tag, PrevTag: out.PrevTag, PRNumber: snap.PR.Number, Title: snap.PR.Title,
				Author: snap.PR.Author, PRURL: snap.PR.URL, ServerURL: webURL(snap.PR.URL, r.Repo),
				Bump: out.Choice.Bump, Reason: out.Choice.Reason,
			}))
			if errors.Is(err, release.ErrTagElsewhere) {
				// Someone took the tag meanwhile; the next evaluation sees
				// it among the tags and steps past it.
				r.State, r.Version, r.Tag = store.RunPending, "", ""
				if uerr := c.Store.UpdateRun(ctx, r); uerr != nil {
					return errors.Join(err, uerr)
				}
				return err
			}
			if reason, ok := refusal(err); ok {
				f := store.RefusedRelease{Pipeline: r.Pipeline, Tag: out.Tag, Reason: reason}
				return errors.Join(fmt.Errorf("%w: %w", errReleaseRefused, err),
					c.showRefusals(ctx, client, &r, snap, []store.RefusedRelease{f}, shown, true, false, log))
			}
			if err != nil {
				return err
			}
			releaseURL = pub.URL
			log.Info("released", "tag", out.Tag, "existed", pub.Existed)
		}
		r.State, r.ReleaseURL = store.RunReleased, releaseURL
	case plan.Refused:
		r.State = store.RunRefused
	case plan.Invalid:
		r.State = store.RunInvalid
	case plan.NoConfig, plan.NoRelease, plan.NoPipeline:
		r.State = store.RunSkipped
	}
	if out.Kind == plan.Release && c.Rollouts != nil && !out.Config.Multi {
		// Before the run is marked released: a crash in between evaluates it
		// again, which reuses its tag and starts the rollout (idempotently).
		if err := c.Rollouts.Start(ctx, r, r.Pipeline, r.Release(), out.Config, snap.Config, snap.PR.Labels); err != nil {
			return fmt.Errorf("start rollout of %s: %w", r.Pipeline, err)
		}
	}
	// A rollout shows itself (check run and comment) as its stages move;
	// every other verdict is shown here, once.
	if !(out.Kind == plan.Release && c.Rollouts != nil && anyStages(out)) {
		urls := []string{releaseURL}
		if out.Config.Multi {
			urls = urls[:0]
			for _, s := range releases {
				urls = append(urls, s.rel.URL)
			}
		}
		if _, err := c.Checks.Upsert(ctx, client, r.Repo, r.SHA, report.MergeOutcome(out, urls...)); err != nil {
			// The verdict stands; failing here would retry the whole run.
			log.Error("report merge outcome", "err", err)
		}
		if snap.HasPR && c.Comments != nil {
			if err := c.Comments.Upsert(ctx, client, r.Repo, snap.PR.Number, report.MergeComment(out, urls...),
				snap.PR.Comments != nil && *snap.PR.Comments == 0); err != nil {
				log.Error("comment merge outcome", "err", err)
			}
		}
	}
	if err := c.Store.UpdateRun(ctx, r, verdictEvents(out, r, c.Rollouts != nil)...); err != nil {
		return err
	}
	log.Info("merge evaluated", "outcome", out.String())
	if c.Observe != nil {
		c.Observe(r, out)
	}
	return nil
}

// started is one pipeline's release of a merge, to roll out.
type started struct {
	pipeline string
	rel      store.Release
}

// releasePipelines cuts the release of every pipeline the merge runs (the
// pipelines: form), one after the other: each its own tag from its own
// version line, and its own GitHub Release whose notes name the PR. It
// returns the releases cut (or found cut); a release it could not cut does
// not stop the others, and comes back in refused (an error to retry the
// run on, errReleaseRefused when GitHub refused one for good) and, when
// GitHub refused it (say, a ruleset protecting one pipeline's tags), in
// refusals, for the pull request. A crash or refusal
// part way leaves some tags on the merge commit; the evaluation after it
// finds them (plan's Reused) and cuts only the missing ones. err is the
// store's.
func (c *Coordinator) releasePipelines(ctx context.Context, client *gh.Client, r *store.Run, out plan.Outcome, snap facts.Snapshot, log *slog.Logger) (cut []started, refusals []store.RefusedRelease, refused, err error) {
	r.State, r.Version, r.Tag, r.PrevTag = store.RunReleasing, "", "", ""
	if err := c.Store.UpdateRun(ctx, *r); err != nil {
		return nil, nil, nil, err
	}
	var errs []error
	for _, p := range out.Pipelines {
		rel := store.Release{Version: p.Version.String(), Tag: p.Tag, PrevTag: p.PrevTag}
		if !p.Reused {
			pub, err := release.Publish(ctx, client, r.Repo, p.Tag, r.SHA, p.Tag, release.Notes(release.NotesInput{
				Repo: r.Repo, Tag: p.Tag, PrevTag: p.PrevTag, PRNumber: snap.PR.Number, Title: snap.PR.Title,
				Author: snap.PR.Author, PRURL: snap.PR.URL, ServerURL: webURL(snap.PR.URL, r.Repo),
				Bump: p.Choice.Bump, Reason: p.Choice.Reason,
			}))
			if err != nil {
				// ErrTagElsewhere included: the next evaluation sees the
				// tag taken and steps past it.
				log.Warn("release not cut; the merge's other pipelines go on", "pipeline", p.Name, "tag", p.Tag, "err", err)
				if reason, ok := refusal(err); ok {
					refusals = append(refusals, store.RefusedRelease{Pipeline: p.Name, Tag: p.Tag, Reason: reason})
				}
				errs = append(errs, fmt.Errorf("release %s of pipeline %s: %w", p.Tag, p.Name, err))
				continue
			}
			rel.URL = pub.URL
			log.Info("released", "pipeline", p.Name, "tag", p.Tag, "existed", pub.Existed)
		}
		cut = append(cut, started{pipeline: p.Name, rel: rel})
	}
	refused = errors.Join(errs...)
	if len(refusals) > 0 {
		refused = fmt.Errorf("%w: %w", errReleaseRefused, refused)
	}
	return cut, refusals, refused, nil
}

// showRefusals records the releases GitHub refused in the run's summary,
// where the rollouts' reports find them (the evaluation's first update
// clears them), and, when nothing else reports on the merge (alone: no
// rollout of it started), shows them on the pull request itself: the check
// run in the single-pipeline form (not in a one-shot job: see OneShot), and
// the sticky comment. A refusal already shown by the last evaluation is not
// written again: GitHub's budget is not spent on every retry.
func (c *Coordinator) showRefusals(ctx context.Context, client *gh.Client, r *store.Run, snap facts.Snapshot, fs, shown []store.RefusedRelease, alone, multi bool, log *slog.Logger) error {
	if c.OneShot {
		fs = slices.Clone(fs)
		for i := range fs {
			fs[i].Job = true
		}
	}
	sum := r.Summarized()
	sum.Refused = fs
	b, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	r.Summary = b
	if err := c.Store.UpdateRun(ctx, *r); err != nil {
		return err
	}
	if !alone || slices.Equal(fs, shown) {
		return nil
	}
	if !multi && !c.OneShot {
		if _, err := c.Checks.Upsert(ctx, client, r.Repo, r.SHA, report.RefusedCheck(fs[0])); err != nil {
			log.Error("report refused release", "err", err)
		}
	}
	if snap.HasPR && c.Comments != nil {
		if err := c.Comments.Upsert(ctx, client, r.Repo, snap.PR.Number, report.RefusedComment(fs, multi),
			snap.PR.Comments != nil && *snap.PR.Comments == 0); err != nil {
			log.Error("comment refused release", "err", err)
		}
	}
	return nil
}

// refusal is how GitHub refused a release, as the pull request shows it:
// its own message (with the errors it lists). ok is false for what is not
// GitHub refusing for good (github.Permanent: it could not be reached,
// answered 5xx, or asked to slow down), which is retried without a word on
// the PR; and for a tag taken meanwhile, which the next evaluation steps
// past. Not the error's text, which names the API's URL.
func refusal(err error) (reason string, ok bool) {
	var er *gh.ErrorResponse
	if !github.Permanent(err) || errors.Is(err, release.ErrTagElsewhere) || !errors.As(err, &er) {
		return "", false
	}
	msg := er.Message
	for _, e := range er.Errors {
		if e.Message != "" {
			msg += " " + e.Message
		}
	}
	return fmt.Sprintf("%d %s", er.Response.StatusCode, msg), true
}

// anyStages reports whether a release deploys anywhere: then its rollouts
// show it on the PR.
func anyStages(out plan.Outcome) bool {
	for _, p := range out.Pipelines {
		if len(p.Stages) > 0 {
			return true
		}
	}
	return len(out.Stages) > 0
}

// verdictEvents are what the audit log records of a merge's verdict, in
// the transaction that records the verdict: a refusal with its reasons, or
// the release when no rollout records it (a rollout's start does).
func verdictEvents(out plan.Outcome, r store.Run, rollouts bool) []store.Event {
	switch out.Kind {
	case plan.Refused:
		return []store.Event{{Kind: store.KindMergeRefused, Detail: strings.Join(out.Gate.Reasons, "; ")}}
	case plan.Invalid:
		return []store.Event{{Kind: store.KindMergeRefused, Detail: "invalid configuration: " + strings.Join(out.Problems, "; ")}}
	case plan.Release:
		if !rollouts && r.Tag != "" {
			return []store.Event{{Kind: store.KindReleaseCreated, Detail: strings.TrimSpace(r.Tag + " " + r.ReleaseURL)}}
		}
	}
	return nil
}

// webURL is the web server of a pull request's html_url, so that release
// notes link to GitHub Enterprise Server rather than github.com; "" (the
// default server) when there is no pull request.
func webURL(prURL, repo string) string {
	server, _, ok := strings.Cut(prURL, "/"+repo+"/pull/")
	if !ok {
		return ""
	}
	return server
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
