package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

// runSearchSlack widens the search for a dispatched workflow run backwards
// from the moment the execution began, for a clock of GitHub's that runs
// behind this host's.
const runSearchSlack = 5 * time.Minute

// runSearchPage is how many runs one search reads: the newest runs of the
// workflow dispatched since the execution began. Ours is among them unless
// a hundred more were dispatched between our dispatch and our search.
const runSearchPage = 100

// WorkflowRun is what GitHub says about the workflow run a github-dispatch
// trigger started.
type WorkflowRun struct {
	// State is StatePending while no run carries the execution's key,
	// StateRunning until the run completes, then StateSucceeded (conclusion
	// success) or StateFailed (any other conclusion).
	State      deploy.State
	ID         int64  // the workflow run's id; 0 while pending
	Number     int    // run_number, as the Actions tab shows it
	Name       string // the workflow's name
	Status     string // queued, in_progress, waiting, completed, …
	Conclusion string // success, failure, cancelled, timed_out, …; empty until completed
	URL        string // html_url: the run's page
}

// Reason says why a failed run failed, naming its conclusion.
func (w WorkflowRun) Reason() string {
	name := w.Name
	if name == "" {
		name = "workflow"
	}
	return fmt.Sprintf("%s run #%d concluded %s", name, w.Number, w.Conclusion)
}

// MapRun maps a workflow run's status and conclusion to a State. Only
// success succeeds: failure, cancelled, timed_out, action_required,
// startup_failure, neutral, skipped and stale all mean the deploy did not
// happen as asked.
func MapRun(status, conclusion string) deploy.State {
	if status != "completed" {
		return deploy.StateRunning
	}
	if conclusion == "success" {
		return deploy.StateSucceeded
	}
	return deploy.StateFailed
}

// TitleHasKey reports whether a workflow run's display_title carries the
// idempotency key as a word of its own: not preceded by a letter or digit
// (the start of another run id) and not followed by a letter, digit, "_"
// or "-" (a longer attempt or stage: key r-qa-1 is not in r-qa-10 nor in
// r-qa-1-2).
func TitleHasKey(title, key string) bool {
	if key == "" {
		return false
	}
	for from := 0; ; {
		i := strings.Index(title[from:], key)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(key)
		before := i == 0 || !isAlnum(title[i-1])
		after := end == len(title) || !(isAlnum(title[end]) || title[end] == '_' || title[end] == '-')
		if before && after {
			return true
		}
		from = i + 1
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Polls implements deploy.Poller.
func (Driver) Polls() string { return "workflow run" }

// Poll implements deploy.Poller: it follows the workflow run the
// execution's dispatch started (see followRun). c.Ref is the run's id once
// found.
func (d Driver) Poll(ctx context.Context, env *deploy.Env, t config.Target, c deploy.Check) (deploy.Status, error) {
	runID, _ := strconv.ParseInt(c.Ref, 10, 64)
	w, err := d.followRun(ctx, env, t, c.Payload, c.Began, runID)
	if err != nil {
		return deploy.Status{}, err
	}
	if w.ID == 0 {
		// Not found yet. GitHub creates the run within seconds; after two
		// minutes, look once a minute and say what is missing.
		if c.Now.Sub(c.Triggered) <= 2*time.Minute {
			return deploy.Status{State: deploy.StatePending}, nil
		}
		env.Logger().Warn("no workflow run found for the dispatch yet", "run", c.Payload.RunID, "stage", c.Payload.Stage,
			"target", t.Name, "workflow", settings(t).Workflow, "title_must_contain", c.Payload.IdempotencyKey(),
			"hint", "the dispatched workflow's run-name must carry the idempotency key (README)")
		return deploy.Status{State: deploy.StatePending, Wait: time.Minute}, nil
	}
	// The pull request links the run while it deploys.
	st := deploy.Status{State: w.State, Ref: strconv.FormatInt(w.ID, 10), URL: w.URL}
	if w.State == deploy.StateFailed {
		st.Reason = w.Reason()
	}
	return st, nil
}

// Overdue implements deploy.Poller.
func (Driver) Overdue(t config.Target, c deploy.Check) string {
	if c.Ref == "" {
		// Most likely the workflow's run-name lacks the key.
		return fmt.Sprintf("no callback, and no run of %s has %s in its title (its run-name must carry it: see README)",
			settings(t).Workflow, c.Payload.IdempotencyKey())
	}
	return fmt.Sprintf("workflow run %s still running", c.Ref)
}

// followRun reports on the workflow run that a dispatch of p to t
// started, with one GitHub request.
//
// GitHub's dispatch answer carries no run id, so with runID 0 it searches:
// it lists the workflow's workflow_dispatch runs created at or after since
// (less runSearchSlack) and takes the one whose display_title carries p's
// idempotency key (TitleHasKey), which the dispatched workflow puts there
// through its run-name; the oldest, should a hand-made dispatch copy the
// inputs. No such run yet is StatePending with ID 0. Once the caller knows
// the run's id, it passes it as runID and followRun reads that run. p
// needs Repository, RunID, Stage and Attempt.
func (Driver) followRun(ctx context.Context, env *deploy.Env, t config.Target, p deploy.Payload, since time.Time, runID int64) (WorkflowRun, error) {
	set := settings(t)
	red := deploy.Scrubber(t, p)
	repo := cmp.Or(set.Repository, p.Repository)
	key := p.IdempotencyKey()
	op := "poll workflow run for " + t.Name
	permanent := func(msg string) (WorkflowRun, error) {
		return WorkflowRun{}, &deploy.Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, Msg: msg}
	}
	owner, name, ok := strings.Cut(repo, "/")
	switch {
	case t.Kind != Kind:
		return permanent(fmt.Sprintf("target kind %q dispatches no workflow", t.Kind))
	case !ok || owner == "" || name == "":
		return permanent(fmt.Sprintf("dispatch repository %q is not owner/name", repo))
	case set.Workflow == "":
		return permanent("target has no workflow")
	case p.RunID == "" || p.Stage == "" || p.Attempt < 1:
		return permanent("no idempotency key to look for")
	}
	log := env.Logger().With(slog.String("target", t.Name), slog.String("repository", repo),
		slog.String("workflow", set.Workflow), slog.String("key", key))
	client, fail := env.GitHubClient(ctx, op, t, repo, red)
	if fail != nil {
		return WorkflowRun{}, fail
	}

	if runID != 0 {
		run, _, err := client.Actions.GetWorkflowRunByID(ctx, owner, name, runID)
		if err != nil {
			fail := deploy.GitHubError(op, t, err, red)
			fail.Msg = fmt.Sprintf("workflow run %d in %s: %s", runID, repo, fail.Msg)
			log.LogAttrs(ctx, slog.LevelWarn, "workflow run poll failed", slog.Int64("run", runID),
				slog.Int("status", fail.StatusCode), slog.Bool("permanent", fail.Permanent))
			return WorkflowRun{}, fail
		}
		w := workflowRun(run)
		log.LogAttrs(ctx, slog.LevelDebug, "workflow run poll", slog.Int64("run", w.ID),
			slog.String("status", w.Status), slog.String("conclusion", w.Conclusion))
		return w, nil
	}

	opts := &gh.ListWorkflowRunsOptions{Event: "workflow_dispatch", ExcludePullRequests: true,
		ListOptions: gh.ListOptions{PerPage: runSearchPage}}
	if !since.IsZero() {
		opts.Created = ">=" + since.Add(-runSearchSlack).UTC().Format(time.RFC3339)
	}
	var (
		runs *gh.WorkflowRuns
		err  error
	)
	if id, perr := strconv.ParseInt(set.Workflow, 10, 64); perr == nil {
		runs, _, err = client.Actions.ListWorkflowRunsByID(ctx, owner, name, id, opts)
	} else {
		runs, _, err = client.Actions.ListWorkflowRunsByFileName(ctx, owner, name, set.Workflow, opts)
	}
	if err != nil {
		fail := deploy.GitHubError(op, t, err, red)
		fail.Msg = fmt.Sprintf("list runs of %s in %s: %s", set.Workflow, repo, fail.Msg)
		log.LogAttrs(ctx, slog.LevelWarn, "workflow run search failed",
			slog.Int("status", fail.StatusCode), slog.Bool("permanent", fail.Permanent))
		return WorkflowRun{}, fail
	}
	var found *gh.WorkflowRun
	for _, r := range runs.WorkflowRuns {
		if !TitleHasKey(r.GetDisplayTitle(), key) {
			continue
		}
		// Newest first: the last match is the oldest.
		found = r
	}
	if found == nil {
		log.LogAttrs(ctx, slog.LevelDebug, "workflow run not found yet", slog.Int("runs", len(runs.WorkflowRuns)))
		return WorkflowRun{State: deploy.StatePending}, nil
	}
	w := workflowRun(found)
	log.LogAttrs(ctx, slog.LevelInfo, "workflow run found", slog.Int64("run", w.ID),
		slog.String("status", w.Status), slog.String("url", w.URL))
	return w, nil
}

func workflowRun(r *gh.WorkflowRun) WorkflowRun {
	return WorkflowRun{
		State: MapRun(r.GetStatus(), r.GetConclusion()), ID: r.GetID(), Number: r.GetRunNumber(),
		Name: r.GetName(), Status: r.GetStatus(), Conclusion: r.GetConclusion(), URL: r.GetHTMLURL(),
	}
}
