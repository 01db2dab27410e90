package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
		parent, err := FirstParent(ctx, client, r.Repo, r.SHA)
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

// FirstParent reads the commit's first parent: "" for a root commit. One
// page of one file: the commit's files are not wanted, and GitHub would
// list up to 300 of them.
func FirstParent(ctx context.Context, client *gh.Client, repo, sha string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	commit, _, err := client.Repositories.GetCommit(ctx, owner, name, sha, &gh.ListOptions{PerPage: 1})
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", short(sha), err)
	}
	if len(commit.Parents) == 0 {
		return "", nil
	}
	return commit.Parents[0].GetSHA(), nil
}

// maxLanded bounds the merges one push records: a push of more first-parent
// commits than this is history being imported, not merges to deploy one by
// one; its newest maxLanded are recorded, the older are left as history.
const maxLanded = 50

// recordLanded records a run for every first-parent commit a push landed,
// oldest first, each with the one before it as its parent (the first's is
// the push's before), so that evaluation takes them in branch order; a run
// that exists already (its pull_request delivery came first) gets the
// parent it lacked. The commits come from one compare of before...after
// (GitHub lists a push's commits without their parents).
func (c *Coordinator) recordLanded(ctx context.Context, d store.Delivery, m merge) error {
	client, err := c.Clients.Installation(d.Installation)
	if err != nil {
		return fmt.Errorf("installation %d: %w", d.Installation, err)
	}
	chain, whole, err := firstParentChain(ctx, client, m.repo, m.parent, m.sha)
	if err != nil {
		return err
	}
	parent := m.parent
	if !whole {
		parent = "" // the oldest one's parent is found out when it is evaluated
	}
	for _, cm := range chain {
		r := store.Run{Repo: m.repo, SHA: cm.sha, Installation: d.Installation, Branch: m.branch, Source: d.Event,
			MergedAt: cm.at, Parent: parent}
		stored, created, err := c.Store.CreateRun(ctx, r)
		if err != nil {
			return err
		}
		if created {
			c.Log.Info("merge recorded", "repo", m.repo, "sha", cm.sha, "run", stored.ID, "source", d.Event, "landed_with", short(m.sha))
		} else if stored.Open() && stored.Parent == "" {
			r.ID = stored.ID
			if err := c.Store.FillRun(ctx, r); err != nil {
				return err
			}
		}
		parent = cm.sha
	}
	return nil
}

// landed is one commit of a push's first-parent chain.
type landed struct {
	sha string
	at  time.Time
}

// firstParentChain lists the first-parent commits from before (exclusive)
// to after (inclusive), oldest first, at most maxLanded of them, from the
// compare of the two (its pages of 100 commits); whole reports whether the
// oldest one's first parent is before.
func firstParentChain(ctx context.Context, client *gh.Client, repo, before, after string) (chain []landed, whole bool, err error) {
	owner, name, _ := strings.Cut(repo, "/")
	first := map[string]string{}
	times := map[string]time.Time{}
	opts := &gh.ListOptions{PerPage: 100}
	for {
		cmp, resp, err := client.Repositories.CompareCommits(ctx, owner, name, before, after, opts)
		if err != nil {
			return nil, false, fmt.Errorf("compare %s...%s: %w", short(before), short(after), err)
		}
		for _, cm := range cmp.Commits {
			if len(cm.Parents) > 0 {
				first[cm.GetSHA()] = cm.Parents[0].GetSHA()
			}
			times[cm.GetSHA()] = cm.GetCommit().GetCommitter().GetDate().Time
		}
		if resp.NextPage == 0 || len(first) >= 10*maxLanded {
			break
		}
		opts.Page = resp.NextPage
	}
	sha := after
	for sha != before && len(chain) < maxLanded {
		chain = append(chain, landed{sha: sha, at: times[sha]})
		p, ok := first[sha]
		if !ok {
			break // past what the compare listed: the rest is history
		}
		sha = p
	}
	slices.Reverse(chain)
	return chain, sha == before, nil
}
