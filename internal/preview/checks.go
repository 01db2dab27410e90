package preview

import (
	"cmp"
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

// DefaultRefreshEvery is how often at most a head's preview is refreshed
// for its checks moving: a busy CI finishes a check every second or so,
// and each refresh reads the pull request, its reviews, checks and
// configuration again and may edit the check run.
const DefaultRefreshEvery = 5 * time.Second

// refreshes spaces preview refreshes per head commit, so that a burst of
// check deliveries for one commit costs one forecast every few seconds
// at most, and the last of them is never lost.
type refreshes struct {
	mu    sync.Mutex
	heads map[string]headRefresh // repo@sha
}

// headRefresh is what is known of one head's refreshes.
type headRefresh struct {
	started time.Time // when its latest refresh started
	// next is when the refresh deferred to delivery owner is due (zero
	// when none is): that refresh comes after every delivery received
	// before next and so speaks for them.
	next  time.Time
	owner string
}

// plan decides about delivery id, received at received, for head key at
// now: refresh now (true); nothing, because a refresh that started after
// it was received, or the one deferred to next, sees what it says (false,
// zero time); or refresh at the returned time, every after the latest
// one started, with this delivery deferred until then. The one deferred
// refreshes when it comes back whatever came in between.
func (r *refreshes) plan(key, id string, received, now time.Time, every time.Duration) (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.heads == nil || len(r.heads) >= 4096 {
		r.heads = map[string]headRefresh{} // bounded; forgetting costs a refresh, never loses one
	}
	h, ok := r.heads[key]
	switch {
	case !ok:
	case h.owner == id:
		// Its turn, deferred before.
	case h.owner != "" && received.Before(h.next), h.started.After(received):
		return false, time.Time{}
	case now.Sub(h.started) < every:
		r.heads[key] = headRefresh{started: h.started, next: h.started.Add(every), owner: id}
		return false, h.started.Add(every)
	}
	// A refresh now: one deferred earlier (another replica may have
	// taken it up) is no longer needed, since this one comes after it.
	r.heads[key] = headRefresh{started: now}
	return true, time.Time{}
}

// failed forgets the refresh of key that did not complete, so that its
// retry is not taken for done: the deliveries it would have spoken for
// rely on that retry.
func (r *refreshes) failed(key string, started time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.heads[key]; ok && h.started.Equal(started) && h.owner == "" {
		delete(r.heads, key)
	}
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
	now, received := time.Now(), d.ReceivedAt
	if received.IsZero() {
		received = now
	}
	key := c.repo + "@" + c.sha
	refresh, at := h.refreshed.plan(key, d.ID, received, now, cmp.Or(h.RefreshEvery, DefaultRefreshEvery))
	switch {
	case !refresh && at.IsZero():
		h.Log.Debug("preview refresh coalesced", "repo", c.repo, "head", c.sha, "event", d.Event)
		return nil
	case !refresh:
		h.Log.Debug("preview refresh deferred", "repo", c.repo, "head", c.sha, "event", d.Event, "until", at)
		return webhook.Later(at)
	}
	if err := h.refresh(ctx, d, c); err != nil {
		h.refreshed.failed(key, now)
		return err
	}
	return nil
}

// refresh forecasts again for the open pull requests whose head c names:
// one lookup of the commit's pull requests, or none when the payload
// named them.
func (h *Handler) refresh(ctx context.Context, d store.Delivery, c checked) error {
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
