package pipeline_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// notAccessible is GitHub's answer to a release an installation without
// Contents: write creates.
const notAccessible = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/releases/releases#create-a-release","status":"403"}`

// refuseReleases makes GitHub refuse, with status and body, every release
// creation whose body names a tag starting with prefix, and counts them.
func (e *env) refuseReleases(prefix string, status int, body string) *atomic.Int32 {
	var n atomic.Int32
	e.refuseOnGitHub(func(req *http.Request) bool {
		if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/repos/"+repo+"/releases") {
			return false
		}
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		if !strings.Contains(string(b), `"tag_name":"`+prefix) {
			return false
		}
		n.Add(1)
		return true
	}, status, body)
	return &n
}

// retryRefusedAtOnce has a refused release tried again after a
// millisecond (doubling) instead of 5 s, for tests that retry it.
func retryRefusedAtOnce(e *env) { e.parts.Coordinator.RefusedRetry = time.Millisecond }

// reportWrites counts the check run and comment writes that reached GitHub.
func (e *env) reportWrites() int {
	n := 0
	for _, p := range []string{"POST /repos/{owner}/{repo}/check-runs", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
		"POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"} {
		n += e.gh.Count(p)
	}
	return n
}

// A release GitHub refuses (here: the App was installed without Contents:
// write) is shown on the pull request, the rollout check run waiting and
// the comment quoting GitHub, once: the retries that meet the same answer
// write nothing. Once GitHub allows it, the release is cut and rolled out,
// and the rollout's reports take the check run and comment over.
func TestRefusedReleaseShownUntilGitHubAllowsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded"), prepare: retryRefusedAtOnce})
	refusals := e.refuseReleases("v", http.StatusForbidden, notAccessible)
	m := e.merge("fix: something")

	want := "GitHub refused the release **v0.1.0**: 403 Resource not accessible by integration"
	e.waitComment(m.pr, want)
	cr := e.waitCheckText(m.sha, want)
	if cr.Status != "in_progress" || cr.Title != "Waiting: GitHub refused the release v0.1.0" {
		t.Errorf("check run %s %q; want in progress, waiting for the refused release", cr.Status, cr.Title)
	}
	writes, tries := e.reportWrites(), refusals.Load()
	// Sweeps now rather than at the next tick; one that finds the first
	// evaluation still holding the repository's lease does nothing.
	eventually(t, "two more evaluations meet the refusal", func() bool {
		e.parts.Coordinator.Sweep(context.Background())
		return refusals.Load() >= tries+2
	})
	if n := e.reportWrites(); n != writes {
		t.Errorf("%d check run and comment writes after retries met the same refusal; want %d (shown once)", n, writes)
	}
	if r, err := e.st.RunBySHA(context.Background(), repo, m.sha); err != nil || r.State != store.RunReleasing {
		t.Errorf("run %s (%v) while its release is refused; want it releasing, to be tried again", r.State, err)
	}

	e.refuseOnGitHub(nil, 0, "")
	e.parts.Coordinator.Sweep(context.Background())
	rr := e.waitDone(e.released(m).ID)
	if rr.Tag != "v0.1.0" || stageOf(rr, "prod").State != schedule.Passed {
		t.Errorf("rollout %s %s; want v0.1.0 deployed once GitHub allows the release", rr.Tag, e.snapshot(rr.ID))
	}
	e.parts.Reporter.Wait()
	cr, _ = e.check(m.sha)
	if cr.Conclusion != "success" || strings.Contains(cr.Summary+cr.Title, "refused") {
		t.Errorf("check run %s %q:\n%s\nwant the rollout's success, no refusal", cr.Conclusion, cr.Title, cr.Summary)
	}
	if n := len(e.gh.CheckRuns(repo, m.sha)); n != 1 {
		t.Errorf("%d check runs on the merge commit; want one", n)
	}
	cs := e.stickyComments(m.pr)
	if len(cs) != 1 || strings.Contains(cs[0].Body, "refused") || !strings.Contains(cs[0].Body, "| prod | v0.1.0 | succeeded |") {
		t.Errorf("%d sticky comments %+v; want one, the rollout's, without the refusal", len(cs), cs)
	}
	if got := tagNames(e.gh); !slices.Equal(got, []string{"v0.1.0"}) {
		t.Errorf("tags %v; want v0.1.0", got)
	}
}

// In the pipelines: form, with every release refused no rollout reports
// on the merge: the merge's comment shows each pipeline's refusal itself.
func TestMonorepoEveryReleaseRefusedShownInTheComment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{config: monoConfig, constraints: monoConstraints(), decide: always("succeeded"), prepare: retryRefusedAtOnce})
	e.refuseReleases("", http.StatusForbidden, notAccessible)
	m := e.mergeFiles("feat: both", map[string]string{"services/api/a.go": "package api\n", "services/web/a.go": "package web\n"})
	for _, p := range []string{"api", "web"} {
		e.waitCommentTable(m.pr, p, "GitHub refused the release **"+p+"/v0.1.0**: 403 Resource not accessible by integration")
	}
	if crs := e.gh.CheckRuns(repo, m.sha); len(crs) != 0 {
		t.Errorf("check runs %+v; want none before a pipeline's rollout starts", crs)
	}
	e.refuseOnGitHub(nil, 0, "")
	e.parts.Coordinator.Sweep(context.Background())
	rs := e.rolloutsOf(m, "api", "web")
	for _, p := range []string{"api", "web"} {
		if done := e.waitDone(rs[p].ID); done.Tag != p+"/v0.1.0" || stageOf(done, "prod").State != schedule.Passed {
			t.Errorf("%s: %s %s", p, done.Tag, e.snapshot(rs[p].ID))
		}
	}
	e.parts.Reporter.Wait()
	if cs := e.stickyComments(m.pr); len(cs) != 1 || strings.Contains(cs[0].Body, "refused") {
		t.Errorf("sticky comments %+v; want one, without the refusals", cs)
	}
}

// A release GitHub refuses is not tried again at the sweep's pace: a
// person has to fix what it refuses, and an evaluation every 5 s (8 calls)
// would spend the installation's 5,000 calls an hour. It waits RefusedRetry
// (doubling each time): sweeps, the delivery's retries and the next
// merge's deliveries meanwhile ask GitHub nothing about it, and the next
// merge waits behind it, versions in merge order.
func TestRefusedReleaseBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{decide: always("succeeded"), prepare: func(e *env) { e.parts.Coordinator.RefusedRetry = time.Hour }})
	refusals := e.refuseReleases("v", http.StatusForbidden, notAccessible)
	m := e.merge("fix: something")
	e.waitComment(m.pr, "GitHub refused the release **v0.1.0**")
	calls := e.gh.Count("*")
	for range 3 {
		e.parts.Coordinator.Sweep(context.Background())
	}
	next := e.merge("fix: another")
	eventually(t, "the next merge is recorded", func() bool {
		_, err := e.st.RunBySHA(context.Background(), repo, next.sha)
		return err == nil
	})
	e.parts.Coordinator.Sweep(context.Background())
	if n := refusals.Load(); n != 1 {
		t.Errorf("the release was tried %d times within its backoff; want once", n)
	}
	// The next merge's pull request and reviews are read when it is
	// evaluated, not while it waits: its recording costs nothing.
	if n := e.gh.Count("*") - calls; n != 0 {
		t.Errorf("%d GitHub calls while the refused merge waits out its backoff; want none", n)
	}
	for _, sha := range []string{m.sha, next.sha} {
		if r, err := e.st.RunBySHA(context.Background(), repo, sha); err != nil || !r.Open() {
			t.Errorf("run %s: %s (%v); want it open, waiting", sha[:7], r.State, err)
		}
	}
}
