package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/store"
)

// openApproved opens a pull request by alice with green CI, approved by bob.
func (e *env) openApproved(title string) int {
	e.t.Helper()
	n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: title, Author: "alice",
		Files: map[string]string{fmt.Sprintf("src/%s.go", title[len(title)-3:]): "package src\n"}})
	e.gh.SetStatus(repo, e.gh.PullRequest(repo, n).HeadSHA, "ci/test", "success")
	e.gh.AddReview(repo, n, "bob", "APPROVED", "")
	return n
}

// A merge queue lands three pull requests with one push. Whichever of the
// push and the three pull_request deliveries comes first, each merge is
// its own run, versioned and deployed in branch order.
func TestMergeQueueGroupReleasesEveryPullRequestInOrder(t *testing.T) {
	t.Parallel()
	// The deliveries' order: "push", or the pull request at that index.
	for _, order := range [][]string{
		{"push", "0", "1", "2"}, // the push first
		{"0", "push", "1", "2"}, // in the middle
		{"0", "1", "2", "push"}, // last
		{"2", "1", "push", "0"}, // the group's last pull request first, the first last
	} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{decide: always("succeeded")})
			prs := []int{e.openApproved("fix: one"), e.openApproved("fix: two"), e.openApproved("feat: six")}
			g := e.gh.EnqueueMergeGroup(repo, "main", prs...)
			// The queue asks for the required checks on the group's head:
			// shipbot/preview completes there.
			e.waitDelivery(e.deliver("merge_group", e.gh.MergeGroupEvent(owner, name, g, "checks_requested")))
			if cr, ok := e.gh.CheckRun(repo, g.HeadSHA, "shipbot/preview"); !ok || cr.Status != "completed" || cr.Conclusion != "success" {
				t.Fatalf("shipbot/preview on the group's head: %+v (found %v); want completed, success", cr, ok)
			}
			before, after, merges := e.gh.LandMergeGroup(repo, g, "")
			for _, d := range order {
				if d == "push" {
					e.deliver("push", e.gh.PushEvent(owner, name, "refs/heads/main", before, after))
					continue
				}
				i, _ := strconv.Atoi(d)
				e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, prs[i], "closed"))
			}
			e.deployedInBranchOrder(prs, merges, "v0.1.0", "v0.1.1", "v0.2.0")
			runs, err := e.st.ListRuns(context.Background(), repo, 10)
			if err != nil {
				t.Fatal(err)
			}
			released := 0
			for _, r := range runs {
				if r.State == store.RunReleased {
					released++
				}
			}
			if released != 3 {
				t.Errorf("%d runs released; want 3", released)
			}
		})
	}
}

// shipbot/preview follows the PR's required checks: waiting while ci/test
// is pending, ready once a status (or a check run) turns it green; the
// bot's own check runs finishing change nothing.
func TestPreviewFollowsChecksTurningGreen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: soon green", Author: "alice"})
	head := e.gh.PullRequest(repo, n).HeadSHA
	e.gh.AddReview(repo, n, "bob", "APPROVED", "")
	e.gh.SetStatus(repo, head, "ci/test", "pending")
	e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "opened")))
	preview := func() githubtest.CheckRun {
		cr, _ := e.gh.CheckRun(repo, head, "shipbot/preview")
		return cr
	}
	if cr := preview(); cr.Conclusion == "success" {
		t.Fatalf("preview with ci/test pending: %s %q; want it not ready", cr.Conclusion, cr.Title)
	}
	e.gh.SetStatus(repo, head, "ci/test", "success")
	e.waitDelivery(e.deliver("status", e.gh.StatusEvent(owner, name, head, "ci/test", "success")))
	if cr := preview(); cr.Conclusion != "success" {
		t.Errorf("preview after ci/test turned green: %s %q; want success", cr.Conclusion, cr.Title)
	}
	// The bot's own check run completing is no news: no read, no write.
	calls := len(e.gh.Requests())
	own, _ := e.gh.CheckRun(repo, head, "shipbot/preview")
	e.waitDelivery(e.deliver("check_run", e.gh.CheckRunEvent(owner, name, own.ID, "completed")))
	if got := len(e.gh.Requests()); got != calls {
		t.Errorf("shipbot's own check run completing cost %d GitHub calls; want none", got-calls)
	}
}

// The gate judges each pull request of a group on its own: a merge queue
// landing an unreviewed pull request between two reviewed ones releases
// the two, in order, and refuses the one, whose version the next takes.
func TestMergeQueueGroupGatesEachPullRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	first := e.openApproved("fix: one")
	unreviewed := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: two", Author: "alice",
		Files: map[string]string{"src/two.go": "package src\n"}})
	e.gh.SetStatus(repo, e.gh.PullRequest(repo, unreviewed).HeadSHA, "ci/test", "success")
	last := e.openApproved("feat: six")
	prs := []int{first, unreviewed, last}
	g := e.gh.EnqueueMergeGroup(repo, "main", prs...)
	before, after, merges := e.gh.LandMergeGroup(repo, g, "")
	e.deliver("push", e.gh.PushEvent(owner, name, "refs/heads/main", before, after))
	for _, pr := range prs {
		e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, pr, "closed"))
	}
	r1 := e.released(merged{pr: first, sha: merges[0]})
	r3 := e.released(merged{pr: last, sha: merges[2]})
	if r1.Tag != "v0.1.0" || r3.Tag != "v0.2.0" {
		t.Errorf("released %s (#%d) and %s (#%d); want v0.1.0 and v0.2.0", r1.Tag, first, r3.Tag, last)
	}
	refused, err := e.st.RunBySHA(context.Background(), repo, merges[1])
	if err != nil || refused.State != store.RunRefused || refused.PR != unreviewed {
		t.Fatalf("the unreviewed #%d's run: %+v (%v); want refused", unreviewed, refused, err)
	}
	if cr := e.waitCheck(merges[1]); cr.Conclusion != "action_required" {
		t.Errorf("the unreviewed merge's %s: %s %q; want action_required", rolloutCheck, cr.Conclusion, cr.Title)
	}
	e.waitDone(r1.ID)
	e.waitDone(r3.ID)
	var order []string
	for _, tr := range e.spin.received("api-prod") {
		order = append(order, tr.str("tag"))
	}
	if want := []string{"v0.1.0", "v0.2.0"}; !slices.Equal(order, want) {
		t.Errorf("prod deployed %v; want %v", order, want)
	}
}

// A merge group's preview concludes as a PR head's would: neutral when the
// group's last pull request would be refused, failure when its
// configuration is invalid; and it comes within seconds (logged).
func TestMergeGroupPreviewConclusions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		spec       githubtest.PullRequestSpec
		approve    bool
	}{
		{"refused", "neutral", githubtest.PullRequestSpec{Title: "fix: unreviewed", Author: "alice"}, false},
		{"invalid configuration", "failure", githubtest.PullRequestSpec{Title: "fix: config", Author: "alice",
			Files: map[string]string{configFile: "version: 1\nstages: [{name: qa}]\n"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{decide: always("succeeded")})
			n := e.gh.OpenPullRequest(repo, tc.spec)
			e.gh.SetStatus(repo, e.gh.PullRequest(repo, n).HeadSHA, "ci/test", "success")
			if tc.approve {
				e.gh.AddReview(repo, n, "bob", "APPROVED", "")
			}
			g := e.gh.EnqueueMergeGroup(repo, "main", n)
			start := time.Now()
			e.waitDelivery(e.deliver("merge_group", e.gh.MergeGroupEvent(owner, name, g, "checks_requested")))
			took := time.Since(start)
			cr, ok := e.gh.CheckRun(repo, g.HeadSHA, "shipbot/preview")
			if !ok || cr.Status != "completed" || cr.Conclusion != tc.want {
				t.Fatalf("shipbot/preview on the group's head: %s %s %q (found %v); want completed, %s",
					cr.Status, cr.Conclusion, cr.Title, ok, tc.want)
			}
			// Seconds at most: waitDelivery gives up after waitFor. The
			// figure is logged rather than bounded tighter, since a
			// loaded -race run on two cores is no measure of latency.
			t.Logf("merge group preview completed %v after the delivery", took.Round(time.Millisecond))
		})
	}
}

// What a merge queue sends besides checks_requested asks nothing of
// shipbot: merge_group destroyed is acknowledged and ignored, and so are
// the pushes that create and delete the group's gh-readonly-queue branch.
func TestMergeQueueBranchAndDestroyedAreIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	n := e.openApproved("fix: queued")
	g := e.gh.EnqueueMergeGroup(repo, "main", n)
	e.gh.ResetRequests()
	created := e.deliver("push", e.gh.PushEvent(owner, name, g.HeadRef, "0000000000000000000000000000000000000000", g.HeadSHA))
	e.gh.DequeueMergeGroup(repo, g, "dequeued")
	destroyed := e.deliver("merge_group", e.gh.MergeGroupEvent(owner, name, g, "destroyed"))
	deleted := e.deliver("push", e.gh.PushEvent(owner, name, g.HeadRef, g.HeadSHA, "0000000000000000000000000000000000000000"))
	patience.Processed(t, e.st, created, destroyed, deleted)
	for _, id := range []string{created, destroyed, deleted} {
		d, err := e.st.GetDelivery(context.Background(), id)
		if err != nil || d.Status == store.StatusFailed {
			t.Errorf("delivery %s (%s): %s %q (%v)", id, d.Event, d.Status, d.LastError, err)
		}
	}
	if d, _ := e.st.GetDelivery(context.Background(), destroyed); d.Status != store.StatusIgnored {
		t.Errorf("merge_group destroyed: %s; want ignored", d.Status)
	}
	if runs, err := e.st.ListRuns(context.Background(), repo, 10); err != nil || len(runs) != 0 {
		t.Errorf("runs after the queue's own pushes: %+v (%v); want none", runs, err)
	}
	if got := e.gh.Requests(); len(got) != 0 {
		t.Errorf("%d GitHub calls for the queue's branch and destroyed group (first %s); want none", len(got), got[0].Pattern)
	}
}

// A head's checks finishing one after the other refresh its preview at
// most once every RefreshEvery, and the last of them is never lost: a
// delivery that comes too soon after a refresh is deferred to the next
// one, which speaks for every delivery received before it. The check run
// names its pull request (no lookup); the status does not (one lookup of
// the commit's pull requests).
func TestPreviewRefreshesSpacedPerHead(t *testing.T) {
	t.Parallel()
	const every = 2 * time.Second
	e := newEnv(t, options{decide: always("succeeded"), refreshEvery: every})
	n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: soon green", Author: "alice"})
	head := e.gh.PullRequest(repo, n).HeadSHA
	e.gh.AddReview(repo, n, "bob", "APPROVED", "")
	e.gh.SetStatus(repo, head, "ci/test", "pending")
	build := e.gh.AddCheckRun(repo, head, "build", "ci", "in_progress", "")
	e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "opened")))
	e.gh.ResetRequests()

	e.gh.CompleteCheckRun(repo, build, "success")
	e.waitDelivery(e.deliver("check_run", e.gh.CheckRunEvent(owner, name, build, "completed")))
	e.gh.SetStatus(repo, head, "ci/test", "success")
	status := e.deliver("status", e.gh.StatusEvent(owner, name, head, "ci/test", "success"))
	suite := e.deliver("check_suite", e.gh.CheckSuiteEvent(owner, name, head, "ci", "", "completed"))
	patience.Processed(t, e.st, status, suite)
	if cr, _ := e.gh.CheckRun(repo, head, "shipbot/preview"); cr.Conclusion != "success" {
		t.Errorf("preview once CI is green: %s %q; want success", cr.Conclusion, cr.Title)
	}
	// A refresh starts with the pull request: read from the check run's
	// list, or looked up for the status's commit.
	var starts []time.Time
	for _, r := range e.gh.Requests() {
		switch r.Pattern {
		case "GET /repos/{owner}/{repo}/pulls/{pull_number}", "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls":
			starts = append(starts, r.Time)
		}
	}
	// Two: the check run's, then the status's deferred one, which the
	// check suite received before it leaves alone. (Three only when the
	// machine is so slow that the status came every after the first.)
	if len(starts) < 2 || len(starts) > 3 {
		t.Fatalf("%d preview refreshes for three check deliveries; want 2", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < every-every/4 {
			t.Errorf("refreshes %v apart; want at least %v", gap.Round(time.Millisecond), every)
		}
	}
	if got := e.gh.Count("GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"); got != 1 {
		t.Errorf("%d lookups of the commit's pull requests; want 1", got)
	}
}

// A refresh that fails is retried, and its retry is not taken for a
// refresh already made: the preview still turns green.
func TestPreviewRefreshRetriedAfterAFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded")})
	n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: soon green", Author: "alice"})
	head := e.gh.PullRequest(repo, n).HeadSHA
	e.gh.AddReview(repo, n, "bob", "APPROVED", "")
	e.gh.SetStatus(repo, head, "ci/test", "pending")
	e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "opened")))
	e.gh.SetStatus(repo, head, "ci/test", "success")
	// GitHub does not know the commit yet (a replica behind): the lookup
	// answers 404 once.
	e.gh.FailNext("GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls", 404, 1)
	id := e.deliver("status", e.gh.StatusEvent(owner, name, head, "ci/test", "success"))
	e.waitDelivery(id)
	if d, _ := e.st.GetDelivery(context.Background(), id); d.Attempts < 2 {
		t.Errorf("status delivery done after %d attempts; want the failed one and its retry", d.Attempts)
	}
	if cr, _ := e.gh.CheckRun(repo, head, "shipbot/preview"); cr.Conclusion != "success" {
		t.Errorf("preview after the retried refresh: %s %q; want success", cr.Conclusion, cr.Title)
	}
}

// Any push that lands several merges at once is taken apart as a merge
// queue's is: an outside merge bot squashing or merging three pull
// requests and pushing the branch once gets a run per merge from the push
// alone, each released and deployed in branch order; the pull_request
// deliveries, late, find those runs.
func TestBatchedPushReleasesEveryMerge(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"squash", "merge"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{decide: always("succeeded")})
			prs := []int{e.openApproved("fix: one"), e.openApproved("fix: two"), e.openApproved("feat: six")}
			before := e.gh.BranchSHA(repo, "main")
			var merges []string
			for _, n := range prs {
				if method == "squash" {
					merges = append(merges, e.gh.SquashMerge(repo, n, "merge-bot"))
				} else {
					merges = append(merges, e.gh.Merge(repo, n, "merge-bot"))
				}
			}
			// The push alone: the pull_request deliveries come late.
			e.deliver("push", e.gh.PushEvent(owner, name, "refs/heads/main", before, merges[len(merges)-1]))
			e.deployedInBranchOrder(prs, merges, "v0.1.0", "v0.1.1", "v0.2.0")
			var late []string
			for _, n := range prs {
				late = append(late, e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "closed")))
			}
			patience.Processed(t, e.st, late...)
			if runs, err := e.st.ListRuns(context.Background(), repo, 10); err != nil || len(runs) != 3 {
				t.Errorf("%d runs after the late pull_request deliveries (%v); want the push's 3", len(runs), err)
			}
		})
	}
}

// Each of the three check events on its own moves a waiting preview to
// ready: a check run completing, its suite completing, a status.
func TestPreviewRefreshedByEachCheckEvent(t *testing.T) {
	t.Parallel()
	for _, event := range []string{"check_run", "check_suite", "status"} {
		t.Run(event, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{decide: always("succeeded")})
			n := e.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: "fix: soon green", Author: "alice"})
			head := e.gh.PullRequest(repo, n).HeadSHA
			e.gh.AddReview(repo, n, "bob", "APPROVED", "")
			var build int64
			if event == "status" {
				e.gh.SetStatus(repo, head, "ci/test", "pending")
			} else {
				// The branch's required check, as a check run.
				build = e.gh.AddCheckRun(repo, head, "ci/test", "ci", "in_progress", "")
			}
			e.waitDelivery(e.deliver("pull_request", e.gh.PullRequestEvent(owner, name, n, "opened")))
			if cr, _ := e.gh.CheckRun(repo, head, "shipbot/preview"); cr.Conclusion == "success" {
				t.Fatalf("preview with CI running: %s %q; want it not ready", cr.Conclusion, cr.Title)
			}
			var body []byte
			switch event {
			case "status":
				e.gh.SetStatus(repo, head, "ci/test", "success")
				body = e.gh.StatusEvent(owner, name, head, "ci/test", "success")
			case "check_run":
				e.gh.CompleteCheckRun(repo, build, "success")
				body = e.gh.CheckRunEvent(owner, name, build, "completed")
			default:
				e.gh.CompleteCheckRun(repo, build, "success")
				body = e.gh.CheckSuiteEvent(owner, name, head, "ci", "", "completed")
			}
			e.waitDelivery(e.deliver(event, body))
			if cr, _ := e.gh.CheckRun(repo, head, "shipbot/preview"); cr.Conclusion != "success" {
				t.Errorf("preview after %s: %s %q\n%s\n%s; want success", event, cr.Conclusion, cr.Title, cr.Summary, cr.Text)
			}
		})
	}
}

// deployedInBranchOrder checks that the merges of prs (in branch order)
// were released as want, each as its own pull request's, and reached prod
// in that order.
func (e *env) deployedInBranchOrder(prs []int, merges []string, want ...string) {
	e.t.Helper()
	var ids []string
	for i, sha := range merges {
		rr := e.released(merged{pr: prs[i], sha: sha})
		if rr.Tag != want[i] || rr.PR != prs[i] {
			e.t.Errorf("merge %d (#%d): %s of #%d; want %s", i, prs[i], rr.Tag, rr.PR, want[i])
		}
		ids = append(ids, rr.ID)
	}
	for _, id := range ids {
		e.waitDone(id)
	}
	var order []string
	for _, tr := range e.spin.received("api-prod") {
		order = append(order, tr.str("tag"))
	}
	if !slices.Equal(order, want) {
		e.t.Errorf("prod deployed %v; want %v, in branch order", order, want)
	}
}
