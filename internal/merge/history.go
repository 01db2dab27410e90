package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/store"
)

// errEarlierFirst means an earlier merge on the branch is still open and
// must take its version first; Process evaluates it and comes back.
var errEarlierFirst = errors.New("an earlier merge goes first")

// sourceHistory is the Source of a run recorded from the branch's history
// (an earlier merge found through a later one) rather than from a delivery.
const sourceHistory = "history"

// DefaultLateDelivery is how long before the bot heard of a merge an
// earlier merge it never heard of may have happened and still be taken
// first: GitHub delivers in seconds, but not always in order, and a
// delivery can be lost. Older unknown merges are history from before the
// bot (or lost for good), not merges to release first.
const DefaultLateDelivery = 10 * time.Minute

func (c *Coordinator) lateDelivery() time.Duration {
	if c.LateDelivery == 0 {
		return DefaultLateDelivery
	}
	return c.LateDelivery
}

// earlierFirst makes versions follow the branch's history, not the order
// deliveries happen to arrive in. It places r after its parent (the branch
// head it was merged onto) and returns errEarlierFirst when the parent is a
// merge that is still open, or one whose deliveries have not arrived yet:
// that merge is recorded from its pull request (found through the commit)
// and goes first. A parent with a finished run, or one no pull request
// merged, lets r go ahead.
func (c *Coordinator) earlierFirst(ctx context.Context, client *gh.Client, reader facts.Reader, r *store.Run) error {
	if r.Parent == "" {
		parent, err := firstParent(ctx, client, r.Repo, r.SHA)
		if err != nil || parent == "" {
			return err
		}
		r.Parent = parent
		if err := c.Store.FillRun(ctx, store.Run{ID: r.ID, Parent: parent}); err != nil {
			return err
		}
	}
	prev, err := c.Store.RunBySHA(ctx, r.Repo, r.Parent)
	switch {
	case err == nil && prev.Open():
		return errEarlierFirst
	case err == nil:
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	pr, ok, err := reader.PullRequestForCommit(ctx, r.Parent)
	if err != nil || !ok || pr.BaseRef != r.Branch || pr.MergedAt.Before(r.CreatedAt.Add(-c.lateDelivery())) {
		return err
	}
	prFacts, err := json.Marshal(pr)
	if err != nil {
		return fmt.Errorf("encode pull request: %w", err)
	}
	found, created, err := c.Store.CreateRun(ctx, store.Run{
		Repo: r.Repo, SHA: r.Parent, Installation: r.Installation, Branch: r.Branch,
		PR: pr.Number, PRFacts: prFacts, Source: sourceHistory, MergedAt: pr.MergedAt,
	})
	if err != nil {
		return err
	}
	if created {
		c.Log.Info("earlier merge recorded from history", "repo", r.Repo, "sha", r.Parent, "run", found.ID,
			"pr", pr.Number, "before", short(r.SHA))
	}
	if found.Open() {
		return errEarlierFirst
	}
	return nil
}

// firstParent reads the commit's first parent: "" for a root commit.
func firstParent(ctx context.Context, client *gh.Client, repo, sha string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	commit, _, err := client.Repositories.GetCommit(ctx, owner, name, sha, nil)
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", short(sha), err)
	}
	if len(commit.Parents) == 0 {
		return "", nil
	}
	return commit.Parents[0].GetSHA(), nil
}
