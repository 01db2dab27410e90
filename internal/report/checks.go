// Package report shows shipbot's work on GitHub: what the check runs say is
// rendered by pure functions here, and Checks writes them, editing the one
// it made before instead of adding another.
package report

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/keyed"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

// Check run names: part of the contract, keep them.
const (
	PreviewCheck = "shipbot/preview"
	RolloutCheck = "shipbot/rollout"
)

// Check run statuses and conclusions, as GitHub spells them.
const (
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"

	Success        = "success"
	Failure        = "failure"
	Neutral        = "neutral"
	ActionRequired = "action_required"
	Cancelled      = "cancelled"
)

// CheckOutput is one check run's content.
type CheckOutput struct {
	Name       string
	Status     string
	Conclusion string // only with StatusCompleted
	Title      string
	Summary    string
	Text       string
	DetailsURL string
}

// GitHub limits a check run's summary and text to 65535 characters each,
// and a comment's body to 65536.
const (
	maxCheckText   = 65535
	maxCommentBody = 65536
)

// clipped marks Markdown cut to GitHub's limits.
const clipped = "\n\n… (truncated)"

// Checks writes check runs. It remembers each check run it creates per
// (repository, commit, name) in the store and edits that one afterwards,
// so a commit never shows two shipbot/preview runs.
type Checks struct {
	Store store.CheckRuns

	locks keyed.Mutex
}

// Upsert creates the check run out.Name on sha, or updates the one made
// before, and returns its id.
func (c *Checks) Upsert(ctx context.Context, client *gh.Client, repo, sha string, out CheckOutput) (int64, error) {
	owner, name, _ := strings.Cut(repo, "/")
	defer c.locks.Lock(repo + "@" + sha + "#" + out.Name)()
	output := &gh.CheckRunOutput{
		Title:   gh.String(out.Title),
		Summary: gh.String(truncate.Bytes(out.Summary, maxCheckText, clipped)),
	}
	if out.Text != "" {
		output.Text = gh.String(truncate.Bytes(out.Text, maxCheckText, clipped))
	}
	var conclusion *string
	if out.Status == StatusCompleted {
		conclusion = gh.String(out.Conclusion)
	}
	var details *string
	if out.DetailsURL != "" {
		details = gh.String(out.DetailsURL)
	}
	id, found, err := c.Store.CheckRunID(ctx, repo, sha, out.Name)
	if err != nil {
		return 0, err
	}
	if found {
		_, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, id, gh.UpdateCheckRunOptions{
			Name: out.Name, Status: gh.String(out.Status), Conclusion: conclusion, Output: output, DetailsURL: details,
		})
		if err != nil {
			return 0, fmt.Errorf("update check run %s on %s: %w", out.Name, short(sha), err)
		}
		return id, nil
	}
	run, _, err := client.Checks.CreateCheckRun(ctx, owner, name, gh.CreateCheckRunOptions{
		Name: out.Name, HeadSHA: sha, Status: gh.String(out.Status), Conclusion: conclusion, Output: output, DetailsURL: details,
	})
	if err != nil {
		return 0, fmt.Errorf("create check run %s on %s: %w", out.Name, short(sha), err)
	}
	if err := c.Store.SaveCheckRunID(ctx, repo, sha, out.Name, run.GetID()); err != nil {
		return 0, err
	}
	return run.GetID(), nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
