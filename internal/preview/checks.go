package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// queuePR is the pull request a merge queue's group ends with, in the
// group's head_ref: refs/heads/gh-readonly-queue/<base>/pr-<N>-<base sha>.
var queuePR = regexp.MustCompile(`/pr-(\d+)-[0-9a-f]+$`)

// mergeGroup completes shipbot/preview on a merge group's head commit, so
// that a branch requiring shipbot/preview can use a merge queue: the
// forecast is the one for the pull request the group ends with.
func (h *Handler) mergeGroup(ctx context.Context, d store.Delivery) error {
	var ev gh.MergeGroupEvent
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return webhook.Permanent(fmt.Errorf("decode merge_group delivery: %w", err))
	}
	g, repo := ev.GetMergeGroup(), ev.GetRepo().GetFullName()
	if g.GetHeadSHA() == "" || repo == "" {
		return webhook.Permanent(fmt.Errorf("merge_group delivery without head_sha or repository"))
	}
	client, reader, err := h.reader(d, repo)
	if err != nil {
		return err
	}
	var pr facts.PR
	if m := queuePR.FindStringSubmatch(g.GetHeadRef()); m != nil {
		n, _ := strconv.Atoi(m[1])
		if pr, err = reader.PullRequest(ctx, n); err != nil {
			return err
		}
	} else {
		prs, err := openPRsOf(ctx, client, repo, g.GetHeadSHA(), false)
		if err != nil {
			return err
		}
		if len(prs) == 0 {
			h.Log.Warn("merge group without a pull request", "repo", repo, "head", g.GetHeadSHA(), "head_ref", g.GetHeadRef())
			return nil
		}
		pr = prs[len(prs)-1]
	}
	out, err := Forecast(ctx, reader, repo, pr)
	if err != nil {
		return err
	}
	if _, err := h.Checks.Upsert(ctx, client, repo, g.GetHeadSHA(), report.PreviewOutcome(out)); err != nil {
		return err
	}
	h.Log.Info("merge group preview", "repo", repo, "pr", pr.Number, "head", g.GetHeadSHA(), "outcome", out.String())
	return nil
}

// checked is what a check_suite, check_run or status delivery says: a
// commit whose checks moved, and the pull requests GitHub names for it.
type checked struct {
	repo, sha string
	prs       []int
	own       bool // shipbot's own check run or suite: not a reason to look again
}

func decodeChecked(d store.Delivery, appID int64) (checked, error) {
	switch d.Event {
	case "check_suite":
		var ev gh.CheckSuiteEvent
		if err := json.Unmarshal(d.Payload, &ev); err != nil {
			return checked{}, err
		}
		s := ev.GetCheckSuite()
		c := checked{repo: ev.GetRepo().GetFullName(), sha: s.GetHeadSHA(), own: appID != 0 && s.GetApp().GetID() == appID}
		for _, p := range s.PullRequests {
			c.prs = append(c.prs, p.GetNumber())
		}
		return c, nil
	case "check_run":
		var ev gh.CheckRunEvent
		if err := json.Unmarshal(d.Payload, &ev); err != nil {
			return checked{}, err
		}
		r := ev.GetCheckRun()
		c := checked{repo: ev.GetRepo().GetFullName(), sha: r.GetHeadSHA(),
			own: appID != 0 && r.GetApp().GetID() == appID || strings.HasPrefix(r.GetName(), "shipbot/")}
		for _, p := range r.PullRequests {
			c.prs = append(c.prs, p.GetNumber())
		}
		return c, nil
	default: // status
		var ev gh.StatusEvent
		if err := json.Unmarshal(d.Payload, &ev); err != nil {
			return checked{}, err
		}
		return checked{repo: ev.GetRepo().GetFullName(), sha: ev.GetSHA()}, nil
	}
}

// refreshes coalesces preview refreshes per head commit: a burst of check
// deliveries for one commit costs one forecast, because a refresh that
// started after a delivery was received already saw what it says.
type refreshes struct {
	mu   sync.Mutex
	last map[string]time.Time // repo@sha → when its last refresh started
}

// due reports whether a delivery received at received still needs a
// refresh of key, and if so records one starting at now.
func (r *refreshes) due(key string, received, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) >= 4096 {
		r.last = map[string]time.Time{} // bounded; forgetting only costs a refresh
	}
	if started, ok := r.last[key]; ok && started.After(received) {
		return false
	}
	r.last[key] = now
	return true
}

// checksMoved refreshes shipbot/preview on the open pull requests whose
// head is the commit whose checks moved: a PR waiting for its required
// checks says so no longer once they are green.
func (h *Handler) checksMoved(ctx context.Context, d store.Delivery) error {
	c, err := decodeChecked(d, h.AppID)
	if err != nil {
		return webhook.Permanent(fmt.Errorf("decode %s delivery: %w", d.Event, err))
	}
	if c.own || c.repo == "" || c.sha == "" {
		return nil
	}
	received := d.ReceivedAt
	if received.IsZero() {
		received = time.Now()
	}
	if !h.refreshed.due(c.repo+"@"+c.sha, received, time.Now()) {
		h.Log.Debug("preview refresh coalesced", "repo", c.repo, "head", c.sha, "event", d.Event)
		return nil
	}
	client, reader, err := h.reader(d, c.repo)
	if err != nil {
		return err
	}
	var prs []facts.PR
	if len(c.prs) > 0 {
		for _, n := range c.prs {
			pr, err := reader.PullRequest(ctx, n)
			if err != nil {
				return err
			}
			prs = append(prs, pr)
		}
	} else if prs, err = openPRsOf(ctx, client, c.repo, c.sha, true); err != nil {
		return err
	}
	for _, pr := range prs {
		if !pr.Open || pr.HeadSHA != c.sha {
			continue // closed, or pushed to since: that head has its own preview
		}
		out, err := Forecast(ctx, reader, c.repo, pr)
		if err != nil {
			return err
		}
		if _, err := h.Checks.Upsert(ctx, client, c.repo, pr.HeadSHA, report.PreviewOutcome(out)); err != nil {
			return err
		}
		h.Log.Info("preview refreshed", "repo", c.repo, "pr", pr.Number, "head", pr.HeadSHA, "event", d.Event, "outcome", out.String())
	}
	return nil
}

// openPRsOf lists the pull requests GitHub knows for commit sha (one
// call); heads keeps only those whose head it is.
func openPRsOf(ctx context.Context, client *gh.Client, repo, sha string, heads bool) ([]facts.PR, error) {
	owner, name, _ := strings.Cut(repo, "/")
	list, _, err := client.PullRequests.ListPullRequestsWithCommit(ctx, owner, name, sha, &gh.ListOptions{PerPage: 100})
	if err != nil {
		return nil, fmt.Errorf("pull requests of commit %s: %w", sha, err)
	}
	var out []facts.PR
	for _, p := range list {
		if p.GetState() != "open" || heads && p.GetHead().GetSHA() != sha {
			continue
		}
		out = append(out, facts.PRFromEvent(p))
	}
	return out, nil
}

// reader is an installation's client and a fact reader for repo.
func (h *Handler) reader(d store.Delivery, repo string) (*gh.Client, *facts.GitHub, error) {
	client, err := h.Clients.Installation(d.Installation)
	if err != nil {
		return nil, nil, fmt.Errorf("installation %d: %w", d.Installation, err)
	}
	reader, err := facts.NewGitHub(client, repo)
	return client, reader, err
}
