// Package preview keeps check run shipbot/preview on a pull request's head
// up to date: what a merge would do now (gate, version, stages). It runs on
// every event that can change the answer and edits one check run per head
// commit in place.
package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/merge"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// Handler takes the events that change a preview.
type Handler struct {
	Clients merge.Clients
	Checks  *report.Checks
	Log     *slog.Logger
	// MergedLabels, when set, receives the labels of a merged pull request
	// whenever they change.
	MergedLabels func(ctx context.Context, repo string, pr int, labels []string) error
	// AppID is the App's id: its own check runs and suites finishing are
	// no reason to look again (0: only check runs named shipbot/… are
	// known as its own).
	AppID int64
	// RefreshEvery is how often at most check deliveries refresh one
	// head's preview; zero takes DefaultRefreshEvery.
	RefreshEvery time.Duration

	refreshed refreshes
}

// Handles implements webhook.Handler.
func (h *Handler) Handles() []string {
	return []string{
		"pull_request.opened", "pull_request.reopened", "pull_request.synchronize", "pull_request.edited",
		"pull_request.labeled", "pull_request.unlabeled", "pull_request.ready_for_review",
		"pull_request_review.submitted", "pull_request_review.dismissed",
		// A merge queue asks each group for the required checks.
		"merge_group.checks_requested",
		// Required checks turning green (or red) change the forecast.
		"check_suite.completed", "check_run.completed", "status",
	}
}

// event is the part both pull_request and pull_request_review payloads share.
type event struct {
	PullRequest *gh.PullRequest `json:"pull_request"`
	Repo        *gh.Repository  `json:"repository"`
}

// Handle implements webhook.Handler.
func (h *Handler) Handle(ctx context.Context, d store.Delivery) error {
	switch d.Event {
	case "merge_group":
		return h.mergeGroup(ctx, d)
	case "check_suite", "check_run", "status":
		return h.checksMoved(ctx, d)
	}
	var ev event
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return webhook.Permanent(fmt.Errorf("decode %s delivery: %w", d.Event, err))
	}
	if ev.PullRequest == nil || ev.Repo.GetFullName() == "" {
		return webhook.Permanent(fmt.Errorf("%s delivery without pull request or repository", d.Event))
	}
	repo, pr := ev.Repo.GetFullName(), facts.PRFromEvent(ev.PullRequest)
	if pr.Merged && h.MergedLabels != nil && (d.Action == "labeled" || d.Action == "unlabeled") {
		// Labels still steer a merged PR's rollout: a stage's skip label
		// counts when the stage is reached.
		return h.MergedLabels(ctx, repo, pr.Number, pr.Labels)
	}
	if ev.PullRequest.GetState() != "open" {
		return nil // a closed pull request has nothing to forecast
	}
	client, err := h.Clients.Installation(d.Installation)
	if err != nil {
		return fmt.Errorf("installation %d: %w", d.Installation, err)
	}
	reader, err := facts.NewGitHub(client, repo)
	if err != nil {
		return err
	}
	out, err := Forecast(ctx, reader, repo, pr)
	if err != nil {
		return err
	}
	if _, err := h.Checks.Upsert(ctx, client, repo, pr.HeadSHA, report.PreviewOutcome(out)); err != nil {
		return err
	}
	h.Log.Info("preview updated", "repo", repo, "pr", pr.Number, "head", pr.HeadSHA, "outcome", out.String())
	return nil
}

// Forecast evaluates what merging pr now would do. `bot plan` uses it too.
func Forecast(ctx context.Context, reader facts.Reader, repo string, pr facts.PR) (plan.Outcome, error) {
	// The PR's own config counts: a merge brings the head's file along.
	snap, err := facts.Gather(ctx, reader, facts.Input{Repo: repo, SHA: pr.HeadSHA, Branch: pr.BaseRef, PR: &pr})
	if err != nil {
		return plan.Outcome{}, err
	}
	return plan.Evaluate(plan.Input{Repo: repo, Branch: pr.BaseRef, SHA: pr.HeadSHA, Preview: true, Snapshot: snap}), nil
}
