package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
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
	State      State
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
func MapRun(status, conclusion string) State {
	if status != "completed" {
		return StateRunning
	}
	if conclusion == "success" {
		return StateSucceeded
	}
	return StateFailed
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

// PollDispatch reports on the workflow run that a github-dispatch trigger
// of p started, with one GitHub request; like Poller.Poll it does not
// retry, and the engine polls on its own schedule, treating an error as
// "no news" unless IsPermanent.
//
// GitHub's dispatch answer carries no run id, so with runID 0 it searches:
// it lists the workflow's workflow_dispatch runs created at or after since
// (less runSearchSlack) and takes the one whose display_title carries p's
// idempotency key (TitleHasKey), which the dispatched workflow puts there
// through its run-name; the oldest, should a hand-made dispatch copy the
// inputs. No such run yet is StatePending with ID 0. Once the caller knows
// the run's id, it passes it as runID and PollDispatch reads that run.
// p needs Repository, RunID, Stage and Attempt.
func (tr *Triggerer) PollDispatch(ctx context.Context, t config.Target, p Payload, since time.Time, runID int64) (_ WorkflowRun, err error) {
	red := scrubber(t, p)
	defer func() { err = scrubbed(err, red) }()
	repo := t.Repository
	if repo == "" {
		repo = p.Repository
	}
	key := p.IdempotencyKey()
	op := "poll workflow run for " + t.Name
	permanent := func(msg string) (WorkflowRun, error) {
		return WorkflowRun{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, msg: msg}
	}
	owner, name, ok := strings.Cut(repo, "/")
	switch {
	case t.Kind != config.KindGitHubDispatch:
		return permanent(fmt.Sprintf("target kind %q dispatches no workflow", t.Kind))
	case !ok || owner == "" || name == "":
		return permanent(fmt.Sprintf("dispatch repository %q is not owner/name", repo))
	case t.Workflow == "":
		return permanent("target has no workflow")
	case tr.Dispatch == nil:
		return permanent("no GitHub client configured for github-dispatch targets")
	case p.RunID == "" || p.Stage == "" || p.Attempt < 1:
		return permanent("no idempotency key to look for")
	}
	log := tr.log().With(slog.String("target", t.Name), slog.String("repository", repo),
		slog.String("workflow", t.Workflow), slog.String("key", key))
	client, e := tr.dispatchClient(ctx, op, t, repo, red)
	if e != nil {
		return WorkflowRun{}, e
	}

	if runID != 0 {
		run, _, err := client.Actions.GetWorkflowRunByID(ctx, owner, name, runID)
		if err != nil {
			e := githubError(op, t, err, red)
			e.msg = fmt.Sprintf("workflow run %d in %s: %s", runID, repo, e.msg)
			log.LogAttrs(ctx, slog.LevelWarn, "workflow run poll failed", slog.Int64("run", runID),
				slog.Int("status", e.StatusCode), slog.Bool("permanent", e.Permanent))
			return WorkflowRun{}, e
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
	var runs *gh.WorkflowRuns
	if id, perr := strconv.ParseInt(t.Workflow, 10, 64); perr == nil {
		runs, _, err = client.Actions.ListWorkflowRunsByID(ctx, owner, name, id, opts)
	} else {
		runs, _, err = client.Actions.ListWorkflowRunsByFileName(ctx, owner, name, t.Workflow, opts)
	}
	if err != nil {
		e := githubError(op, t, err, red)
		e.msg = fmt.Sprintf("list runs of %s in %s: %s", t.Workflow, repo, e.msg)
		log.LogAttrs(ctx, slog.LevelWarn, "workflow run search failed",
			slog.Int("status", e.StatusCode), slog.Bool("permanent", e.Permanent))
		return WorkflowRun{}, e
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
		return WorkflowRun{State: StatePending}, nil
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
