package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/gate"
	"github.com/shipbot/shipbot/internal/githubtest"
)

// Route patterns of the fake, as it records them.
const (
	routeContents    = "GET /repos/{owner}/{repo}/contents/{path}"
	routePull        = "GET /repos/{owner}/{repo}/pulls/{pull_number}"
	routeCommitPulls = "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"
	routeReviews     = "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"
	routeProtection  = "GET /repos/{owner}/{repo}/branches/{branch}/protection"
	routeRules       = "GET /repos/{owner}/{repo}/rules/branches/{branch}"
	routeStatuses    = "GET /repos/{owner}/{repo}/commits/{ref}/statuses"
	routeCheckRuns   = "GET /repos/{owner}/{repo}/commits/{ref}/check-runs"
	routeTags        = "GET /repos/{owner}/{repo}/tags"
)

const testConfig = "version: 1\nstages:\n  - name: qa\n    target: spinnaker-qa\n"

// world is a repository on the fake with one merged, approved, green pull
// request on a protected main.
type world struct {
	srv      *githubtest.Server
	client   *gh.Client
	pr       int
	head     string // the PR's head
	merge    string // its merge commit
	initial  string // the first commit of main
	openPR   int    // an open PR whose head is openHead
	openHead string
}

const staticToken = "ghs_facts_test"

func newWorld(t testing.TB, opts ...githubtest.Option) *world {
	t.Helper()
	srv := githubtest.New(opts...)
	t.Cleanup(srv.Close)
	srv.AddStaticToken(staticToken)
	w := &world{srv: srv, client: newClient(t, srv, nil)}
	w.initial = srv.AddRepo(testRepo, githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml": testConfig}})
	srv.SetPermission(testRepo, "bob", "write")
	srv.SetBranchProtection(testRepo, "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci"}})
	w.pr = srv.OpenPullRequest(testRepo, githubtest.PullRequestSpec{
		Title: "feat: widgets", Body: "Adds widgets.", Author: "alice", Labels: []string{"no-deploy-to-qa"},
		Files: map[string]string{"widgets.go": "package widgets\n"},
	})
	w.head = srv.PullRequest(testRepo, w.pr).HeadSHA
	srv.AddReview(testRepo, w.pr, "bob", "APPROVED", "")
	srv.SetStatus(testRepo, w.head, "ci", "success")
	srv.AddCheckRun(testRepo, w.head, "lint", "ci", "completed", "success")
	w.merge = srv.Merge(testRepo, w.pr, "alice")
	srv.AddTag(testRepo, "v1.0.0", w.initial)

	w.openPR = srv.OpenPullRequest(testRepo, githubtest.PullRequestSpec{Title: "wip", Author: "carol"})
	w.openHead = srv.PullRequest(testRepo, w.openPR).HeadSHA
	srv.ResetRequests()
	return w
}

// newClient is a plain go-github client for the fake, without the
// production transport's retries, so that every request the code makes is
// one the fake records. rt wraps the default transport when non-nil.
func newClient(t testing.TB, srv *githubtest.Server, rt func(http.RoundTripper) http.RoundTripper) *gh.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	var base http.RoundTripper = tr
	if rt != nil {
		base = rt(base)
	}
	c := gh.NewClient(&http.Client{Transport: base}).WithAuthToken(staticToken)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func (w *world) reader(t testing.TB) *GitHub {
	t.Helper()
	g, err := NewGitHub(w.client, testRepo)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewGitHubRejectsBadRepo(t *testing.T) {
	for _, repo := range []string{"", "acme", "/api", "acme/"} {
		if _, err := NewGitHub(gh.NewClient(nil), repo); err == nil {
			t.Errorf("NewGitHub(%q) succeeded", repo)
		}
	}
}

// TestGitHubReadsEachFactOnce asks every fact many times at once and
// checks that the fake served each read exactly once, and that every asker
// got the same answer.
func TestGitHubReadsEachFactOnce(t *testing.T) {
	w := newWorld(t)
	g := w.reader(t)
	ctx := context.Background()

	type answers struct {
		config     []byte
		found      bool
		pr         PR
		forCommit  PR
		ok         bool
		reviews    []gate.Review
		protection gate.Protection
		checks     []gate.Check
		tags       []Tag
		files      []string
		complete   bool
		errs       []error
	}
	const askers = 16
	got := make([]answers, askers)
	var wg sync.WaitGroup
	for i := range askers {
		wg.Go(func() {
			a := &got[i]
			var inner sync.WaitGroup
			var mu sync.Mutex
			keep := func(e error) {
				mu.Lock()
				defer mu.Unlock()
				if e != nil {
					a.errs = append(a.errs, e)
				}
			}
			inner.Go(func() { var e error; a.config, a.found, e = g.Config(ctx, w.merge); keep(e) })
			inner.Go(func() { var e error; a.pr, e = g.PullRequest(ctx, w.pr); keep(e) })
			inner.Go(func() { var e error; a.forCommit, a.ok, e = g.PullRequestForCommit(ctx, w.merge); keep(e) })
			inner.Go(func() { var e error; a.reviews, e = g.Reviews(ctx, w.pr); keep(e) })
			inner.Go(func() { var e error; a.protection, e = g.Protection(ctx, "main"); keep(e) })
			inner.Go(func() { var e error; a.checks, e = g.Checks(ctx, w.head); keep(e) })
			inner.Go(func() { var e error; a.tags, e = g.Tags(ctx); keep(e) })
			inner.Go(func() { var e error; a.files, a.complete, e = g.Files(ctx, w.pr, 1); keep(e) })
			inner.Wait()
		})
	}
	wg.Wait()

	for _, route := range []string{routeContents, routePull, routeCommitPulls, routeReviews, routeProtection, routeRules, routeStatuses, routeCheckRuns, routeTags, routeFiles} {
		if n := w.srv.Count(route); n != 1 {
			t.Errorf("%s served %d times, want 1", route, n)
		}
	}
	if n := w.srv.Count("*"); n != 10 {
		t.Errorf("%d requests in all, want 10 (one per fact, two each for protection and checks)", n)
	}

	first := got[0]
	if len(first.errs) > 0 {
		t.Fatalf("errors: %v", first.errs)
	}
	for i, a := range got[1:] {
		if diff := cmp.Diff(first, a, cmp.AllowUnexported(answers{})); diff != "" {
			t.Errorf("asker %d got other answers (-first +got):\n%s", i+1, diff)
		}
	}

	// The answers are the repository's facts.
	if !first.found || string(first.config) != testConfig {
		t.Errorf("Config = %q, %v; want the file", first.config, first.found)
	}
	fakePR := w.srv.PullRequest(testRepo, w.pr)
	wantPR := PR{
		Number: w.pr, Title: "feat: widgets", Body: "Adds widgets.", Author: "alice",
		URL:     w.srv.WebURL() + fmt.Sprintf("%s/pull/%d", testRepo, w.pr),
		HeadSHA: w.head, BaseRef: "main", Labels: []string{"no-deploy-to-qa"},
		Merged: true, MergeSHA: w.merge, MergedAt: fakePR.MergedAt.Truncate(time.Second), // GitHub times are in seconds
	}
	timeEq := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	// Only the full pull request counts its comments and files; lists do
	// not.
	wantFull := wantPR
	wantFull.Comments = new(int)
	wantFull.ChangedFiles = 1
	if diff := cmp.Diff(wantFull, first.pr, timeEq); diff != "" {
		t.Errorf("PullRequest mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantPR, first.forCommit, timeEq); !first.ok || diff != "" {
		t.Errorf("PullRequestForCommit ok=%v, mismatch (-want +got):\n%s", first.ok, diff)
	}
	if len(first.reviews) != 1 || first.reviews[0].User != "bob" || first.reviews[0].State != gate.StateApproved || first.reviews[0].CommitID != w.head {
		t.Errorf("Reviews = %+v, want bob's approval of the head", first.reviews)
	}
	wantProt := gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceBranchProtection}, RequiredApprovals: 1, RequiredChecks: []string{"ci"}}
	if diff := cmp.Diff(wantProt, first.protection); diff != "" {
		t.Errorf("Protection mismatch (-want +got):\n%s", diff)
	}
	var checks []string
	for _, c := range first.checks {
		checks = append(checks, c.Source+":"+c.Name+"="+c.State)
	}
	if want := []string{"check_run:lint=success", "status:ci=success"}; !slices.Equal(checks, want) {
		t.Errorf("Checks = %q, want %q", checks, want)
	}
	if want := []Tag{{Name: "v1.0.0", SHA: w.initial}}; !slices.Equal(first.tags, want) {
		t.Errorf("Tags = %+v, want %+v", first.tags, want)
	}
	if want := []string{"widgets.go"}; !slices.Equal(first.files, want) || !first.complete {
		t.Errorf("Files = %q, complete %v; want %q, complete", first.files, first.complete, want)
	}

	// Another key is another fact.
	if _, _, err := g.Config(ctx, w.head); err != nil {
		t.Fatal(err)
	}
	if n := w.srv.Count(routeContents); n != 2 {
		t.Errorf("config at a second ref: %d contents reads, want 2", n)
	}
}

// TestGitHubPagination fills each paginated list past one page of 100 and
// checks that every item is read, with per_page=100, in two requests.
func TestGitHubPagination(t *testing.T) {
	const n = 130
	tests := []struct {
		name  string
		route string
		fill  func(w *world)
		read  func(ctx context.Context, w *world, g *GitHub) (int, error)
	}{
		{
			name:  "reviews",
			route: routeReviews,
			fill: func(w *world) {
				for i := range n - 1 { // bob's approval is one already
					w.srv.AddReview(testRepo, w.pr, fmt.Sprintf("reviewer%d", i), "COMMENTED", "")
				}
			},
			read: func(ctx context.Context, w *world, g *GitHub) (int, error) {
				rs, err := g.Reviews(ctx, w.pr)
				return len(rs), err
			},
		},
		{
			name:  "tags",
			route: routeTags,
			fill: func(w *world) {
				for i := range n - 1 { // v1.0.0 is one already
					w.srv.AddTag(testRepo, fmt.Sprintf("v0.0.%d", i), w.initial)
				}
			},
			read: func(ctx context.Context, w *world, g *GitHub) (int, error) {
				ts, err := g.Tags(ctx)
				return len(ts), err
			},
		},
		{
			name:  "statuses",
			route: routeStatuses,
			fill: func(w *world) {
				for i := range n - 1 { // ci is one already
					w.srv.SetStatus(testRepo, w.head, fmt.Sprintf("ctx-%03d", i), "success")
				}
			},
			read: func(ctx context.Context, w *world, g *GitHub) (int, error) {
				cs, err := g.Checks(ctx, w.head)
				return count(cs, gate.SourceStatus), err
			},
		},
		{
			name:  "check runs",
			route: routeCheckRuns,
			fill: func(w *world) {
				for i := range n - 1 { // lint is one already
					w.srv.AddCheckRun(testRepo, w.head, fmt.Sprintf("run-%03d", i), "ci", "completed", "success")
				}
			},
			read: func(ctx context.Context, w *world, g *GitHub) (int, error) {
				cs, err := g.Checks(ctx, w.head)
				return count(cs, gate.SourceCheckRun), err
			},
		},
		{
			name:  "ruleset rules",
			route: routeRules,
			fill: func(w *world) {
				for i := range n {
					w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: fmt.Sprint("rs", i), Branches: []string{"main"}, RequiredStatusChecks: []string{fmt.Sprintf("rule-%03d", i)}})
				}
			},
			read: func(ctx context.Context, w *world, g *GitHub) (int, error) {
				p, err := g.Protection(ctx, "main")
				got := 0
				for _, c := range p.RequiredChecks {
					if strings.HasPrefix(c, "rule-") {
						got++
					}
				}
				return got, err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.fill(w)
			got, err := tt.read(context.Background(), w, w.reader(t))
			if err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("read %d items, want %d", got, n)
			}
			reqs := requestsOf(w.srv, tt.route)
			if len(reqs) != 2 {
				t.Errorf("%d requests to %s, want 2", len(reqs), tt.route)
			}
			for _, r := range reqs {
				if r.Query.Get("per_page") != "100" {
					t.Errorf("request %s?%s does not ask for 100 a page", r.Path, r.Query.Encode())
				}
			}
		})
	}
}

// TestGitHubRulesBeyondDefaultPage pins what paginating the rules fixed:
// 31 rules are more than the endpoint's default page of 30, and the 31st
// here is the one that requires reviews.
func TestGitHubRulesBeyondDefaultPage(t *testing.T) {
	w := newWorld(t)
	w.srv.RemoveBranchProtection(testRepo, "main")
	for i := range 30 {
		w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: fmt.Sprint("rs", i), RequiredStatusChecks: []string{fmt.Sprintf("c%02d", i)}})
	}
	w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "reviews", PullRequest: &githubtest.PullRequestRule{RequiredApprovingReviewCount: 3, DismissStaleReviewsOnPush: true}})
	p, err := w.reader(t).Protection(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if p.RequiredApprovals != 3 || !p.DismissStale || len(p.RequiredChecks) != 30 {
		t.Errorf("Protection = approvals %d, dismiss stale %v, %d required checks; want 3, true, 30 (the 31st rule must be read)", p.RequiredApprovals, p.DismissStale, len(p.RequiredChecks))
	}
}

func count(cs []gate.Check, source string) int {
	n := 0
	for _, c := range cs {
		if c.Source == source {
			n++
		}
	}
	return n
}

func requestsOf(srv *githubtest.Server, route string) []githubtest.Request {
	var out []githubtest.Request
	for _, r := range srv.Requests() {
		if r.Pattern == route {
			out = append(out, r)
		}
	}
	return out
}

func TestGitHubProtection(t *testing.T) {
	warnAdmin := `"Administration: read"`
	tests := []struct {
		name   string
		opts   []githubtest.Option
		setup  func(w *world)
		branch string
		want   gate.Protection
		// warnings are substrings, one per warning, in order.
		warnings []string
		classic  int // status of the classic protection read
	}{
		{
			name: "classic protection",
			setup: func(w *world) {
				w.srv.SetBranchProtection(testRepo, "main", githubtest.BranchProtection{
					RequiredApprovingReviewCount: 2, DismissStaleReviews: true, RequiredStatusChecks: []string{"lint", "ci"},
				})
			},
			want:    gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceBranchProtection}, RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"ci", "lint"}},
			classic: http.StatusOK,
		},
		{
			name:    "classic 404 and no rulesets: known to be unprotected",
			setup:   func(w *world) { w.srv.RemoveBranchProtection(testRepo, "main") },
			want:    gate.Protection{Known: true},
			classic: http.StatusNotFound,
		},
		{
			name:     "classic 403 and no rulesets: unknown, with the missing permission named",
			setup:    func(w *world) { w.srv.SetAdministrationReadDenied(testRepo, true) },
			want:     gate.Protection{},
			warnings: []string{warnAdmin},
			classic:  http.StatusForbidden,
		},
		{
			name: "classic 403 (App without Administration: read) but a ruleset protects",
			opts: []githubtest.Option{githubtest.WithAdministrationReadDenied()},
			setup: func(w *world) {
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "main", Branches: []string{"~DEFAULT_BRANCH"},
					PullRequest: &githubtest.PullRequestRule{RequiredApprovingReviewCount: 1}, RequiredStatusChecks: []string{"ci"}})
			},
			want:     gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceRuleset}, RequiredApprovals: 1, RequiredChecks: []string{"ci"}},
			warnings: []string{warnAdmin},
			classic:  http.StatusForbidden,
		},
		{
			name: "rulesets only",
			setup: func(w *world) {
				w.srv.RemoveBranchProtection(testRepo, "main")
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "reviews", Branches: []string{"main"},
					PullRequest: &githubtest.PullRequestRule{RequiredApprovingReviewCount: 2, DismissStaleReviewsOnPush: true}})
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "ci", Branches: []string{"~ALL"}, RequiredStatusChecks: []string{"test", "build"}})
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "elsewhere", Branches: []string{"release/*"}, RequiredStatusChecks: []string{"nope"}})
			},
			want:    gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceRuleset}, RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"build", "test"}},
			classic: http.StatusNotFound,
		},
		{
			name: "classic and rulesets combined",
			setup: func(w *world) {
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "ci", RequiredStatusChecks: []string{"test"},
					PullRequest: &githubtest.PullRequestRule{RequiredApprovingReviewCount: 2}})
			},
			want:    gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceBranchProtection, gate.SourceRuleset}, RequiredApprovals: 2, RequiredChecks: []string{"ci", "test"}},
			classic: http.StatusOK,
		},
		{
			name:   "a branch with slashes",
			branch: "release/1.x",
			setup: func(w *world) {
				w.srv.AddBranch(testRepo, "release/1.x", "")
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "releases", Branches: []string{"release/*"}, RequiredStatusChecks: []string{"release-ci"}})
			},
			want:    gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceRuleset}, RequiredChecks: []string{"release-ci"}},
			classic: http.StatusNotFound,
		},
		{
			name:   "a branch with a # (not a URL fragment)",
			branch: "hotfix#12",
			setup: func(w *world) {
				w.srv.AddBranch(testRepo, "hotfix#12", "")
				w.srv.AddBranch(testRepo, "hotfix", "")
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "hotfix", Branches: []string{"hotfix"}, RequiredStatusChecks: []string{"wrong-branch"}})
				w.srv.AddRuleset(testRepo, githubtest.Ruleset{Name: "hotfixes", Branches: []string{"hotfix#*"}, RequiredStatusChecks: []string{"hotfix-ci"}})
			},
			want:    gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceRuleset}, RequiredChecks: []string{"hotfix-ci"}},
			classic: http.StatusNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(w)
			}
			branch := tt.branch
			if branch == "" {
				branch = "main"
			}
			got, err := w.reader(t).Protection(context.Background(), branch)
			if err != nil {
				t.Fatal(err)
			}
			warnings := got.Warnings
			got.Warnings = nil
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Protection mismatch (-want +got):\n%s", diff)
			}
			if len(warnings) != len(tt.warnings) {
				t.Errorf("Warnings = %q, want %d", warnings, len(tt.warnings))
			}
			for i, sub := range tt.warnings {
				if i < len(warnings) && !strings.Contains(warnings[i], sub) {
					t.Errorf("Warnings[%d] = %q, want it to contain %s", i, warnings[i], sub)
				}
			}
			classic := requestsOf(w.srv, routeProtection)
			if len(classic) != 1 || classic[0].Status != tt.classic {
				t.Errorf("classic protection reads: %+v, want one answered %d", statuses(classic), tt.classic)
			}
			if n := w.srv.Count(routeRules); n != 1 {
				t.Errorf("%d rules reads, want 1", n)
			}
		})
	}
}

func statuses(rs []githubtest.Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %d", r.Path, r.Status))
	}
	return out
}

func TestGitHubProtectionErrors(t *testing.T) {
	tests := []struct {
		name  string
		fail  string
		code  int
		want  string // error substring; "" means no error
		known bool
	}{
		{name: "classic 500 fails the read", fail: routeProtection, code: http.StatusInternalServerError, want: "branch protection of main"},
		{name: "rules 500 fails the read", fail: routeRules, code: http.StatusInternalServerError, want: "rules of main"},
		{name: "rules 403 fails the read", fail: routeRules, code: http.StatusForbidden, want: "rules of main"},
		{name: "rules 404: no rulesets apply", fail: routeRules, code: http.StatusNotFound, known: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.srv.FailNext(tt.fail, tt.code, 1)
			p, err := w.reader(t).Protection(context.Background(), "main")
			if tt.want == "" {
				if err != nil || p.Known != tt.known || !p.Protected {
					t.Errorf("Protection = %+v, %v; want protected by classic, Known %v", p, err, tt.known)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Protection error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestGitHubRulesDecodedRaw feeds the rules endpoint rule types go-github
// v60 cannot decode (merge_queue, code_scanning, …) around the two that
// matter, and checks that protection is still read from the raw JSON.
func TestGitHubRulesDecodedRaw(t *testing.T) {
	const body = `[
	  {"type":"creation","ruleset_source_type":"Repository","ruleset_source":"acme/api","ruleset_id":1},
	  {"type":"merge_queue","parameters":{"check_response_timeout_minutes":60,"grouping_strategy":"ALLGREEN","max_entries_to_build":5,"max_entries_to_merge":5,"merge_method":"MERGE","min_entries_to_merge":1,"min_entries_to_merge_wait_minutes":5},"ruleset_id":1},
	  {"type":"pull_request","parameters":{"required_approving_review_count":2,"dismiss_stale_reviews_on_push":true,"require_code_owner_review":false,"require_last_push_approval":false,"required_review_thread_resolution":false,"allowed_merge_methods":["squash"],"automatic_copilot_code_review_enabled":false},"ruleset_id":2},
	  {"type":"code_scanning","parameters":{"code_scanning_tools":[{"tool":"CodeQL","security_alerts_threshold":"high_or_higher","alerts_threshold":"errors"}]},"ruleset_id":2},
	  {"type":"required_status_checks","parameters":{"strict_required_status_checks_policy":false,"do_not_enforce_on_create":false,"required_status_checks":[{"context":"ci","integration_id":15368},{"context":"e2e"}]},"ruleset_id":3},
	  {"type":"copilot_code_review","parameters":{"review_on_push":true},"ruleset_id":3}
	]`
	// The premise: go-github itself gives up on this body.
	var typed []*gh.RepositoryRule
	if err := json.Unmarshal([]byte(body), &typed); err == nil {
		t.Log("go-github now decodes these rule types; the raw decoding still guards against the next new one")
	} else {
		t.Logf("go-github's own decoding: %v", err)
	}

	w := newWorld(t)
	w.srv.RemoveBranchProtection(testRepo, "main")
	var served int
	var mu sync.Mutex
	w.client = newClient(t, w.srv, func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if !strings.Contains(r.URL.Path, "/rules/branches/") {
				return next.RoundTrip(r)
			}
			mu.Lock()
			served++
			mu.Unlock()
			return &http.Response{
				StatusCode: http.StatusOK, Status: "200 OK", Request: r,
				Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
				Body:   io.NopCloser(bytes.NewReader([]byte(body))),
			}, nil
		})
	})
	got, err := w.reader(t).Protection(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	want := gate.Protection{Known: true, Protected: true, Sources: []string{gate.SourceRuleset}, RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"ci", "e2e"}}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Protection mismatch (-want +got):\n%s", diff)
	}
	if served != 1 {
		t.Errorf("rules served %d times, want 1", served)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGitHubConfig(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("found", func(t *testing.T) {
		data, found, err := w.reader(t).Config(ctx, w.merge)
		if err != nil || !found || string(data) != testConfig {
			t.Errorf("Config = %q, %v, %v; want the file", data, found, err)
		}
	})
	t.Run("404: not found, no error", func(t *testing.T) {
		w.srv.AddRepo("acme/web", githubtest.RepoSpec{})
		g, err := NewGitHub(w.client, "acme/web")
		if err != nil {
			t.Fatal(err)
		}
		data, found, err := g.Config(ctx, "main")
		if err != nil || found || data != nil {
			t.Errorf("Config = %q, %v, %v; want not found and no error", data, found, err)
		}
		if r := requestsOf(w.srv, routeContents); len(r) == 0 || r[len(r)-1].Status != http.StatusNotFound {
			t.Errorf("contents reads %v, want a 404", statuses(r))
		}
	})
	t.Run("empty file is found", func(t *testing.T) {
		sha := w.srv.AddCommit(testRepo, "empty-config", "empty config", map[string]string{".github/shipbot.yml": ""})
		data, found, err := w.reader(t).Config(ctx, sha)
		if err != nil || !found || len(data) != 0 {
			t.Errorf("Config = %q, %v, %v; want an empty file found", data, found, err)
		}
	})
	t.Run("unknown ref: an error, not a missing file", func(t *testing.T) {
		const unknown = "abcdefabcdefabcdefabcdefabcdefabcdefabcd"
		_, found, err := w.reader(t).Config(ctx, unknown)
		if err == nil || found {
			t.Fatalf("Config at an unknown ref = found %v, %v; want an error (the commit may not be readable yet)", found, err)
		}
		if !strings.Contains(err.Error(), "abcdefa") {
			t.Errorf("error %q does not name the ref", err)
		}
	})
	t.Run("a directory is an error", func(t *testing.T) {
		w.srv.AddRepo("acme/dir", githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml/a": "x"}})
		g, err := NewGitHub(w.client, "acme/dir")
		if err != nil {
			t.Fatal(err)
		}
		_, found, err := g.Config(ctx, "main")
		if err == nil || found {
			t.Errorf("Config of a directory = found %v, %v; want an error", found, err)
		}
	})
	t.Run("500 is an error", func(t *testing.T) {
		w.srv.FailNext(routeContents, http.StatusInternalServerError, 1)
		_, found, err := w.reader(t).Config(ctx, w.merge)
		if err == nil || found {
			t.Errorf("Config = found %v, %v; want an error", found, err)
		}
	})
}

func TestGitHubPullRequestForCommit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tests := []struct {
		name string
		sha  string
		want int // 0: none
	}{
		{"merge commit: the merged PR", w.merge, w.pr},
		{"head of the merged PR is not its merge", w.head, 0},
		{"head of an open PR", w.openHead, 0},
		{"direct push", w.srv.AddCommit(testRepo, "main", "direct", map[string]string{"x": "y"}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, ok, err := w.reader(t).PullRequestForCommit(ctx, tt.sha)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.want != 0) || pr.Number != tt.want {
				t.Errorf("PullRequestForCommit = #%d, %v; want #%d", pr.Number, ok, tt.want)
			}
		})
	}
}

func TestGitHubErrorsAreNotHidden(t *testing.T) {
	for _, route := range []string{routeReviews, routeStatuses, routeCheckRuns, routeTags, routeCommitPulls, routePull} {
		t.Run(route, func(t *testing.T) {
			w := newWorld(t)
			w.srv.FailNext(route, http.StatusInternalServerError, 1)
			g := w.reader(t)
			ctx := context.Background()
			var err error
			switch route {
			case routeReviews:
				_, err = g.Reviews(ctx, w.pr)
			case routeStatuses, routeCheckRuns:
				_, err = g.Checks(ctx, w.head)
			case routeTags:
				_, err = g.Tags(ctx)
			case routeCommitPulls:
				_, _, err = g.PullRequestForCommit(ctx, w.merge)
			case routePull:
				_, err = g.PullRequest(ctx, w.pr)
			}
			if err == nil || !strings.Contains(err.Error(), "500") {
				t.Errorf("error = %v, want the 500", err)
			}
		})
	}
}

// waves is the length of the longest chain of requests in which each one
// started after the one before it had finished: the number of sequential
// round trips on the critical path. It uses only the order of the recorded
// start and end times, never their size.
func waves(reqs []githubtest.Request) (depth []int, n int) {
	depth = make([]int, len(reqs))
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return reqs[a].Time.Compare(reqs[b].Time) })
	for _, i := range order {
		depth[i] = 1
		for _, j := range order {
			if end := reqs[j].Time.Add(reqs[j].Duration); !end.After(reqs[i].Time) {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		n = max(n, depth[i])
	}
	return depth, n
}

// TestGatherWaves proves Gather's concurrency by its structure: with a
// latency on every request, a read that waits for another starts after it
// ends, and reads that do not wait overlap.
func TestGatherWaves(t *testing.T) {
	const latency = 30 * time.Millisecond
	ctx := context.Background()

	t.Run("PR in hand: one wave", func(t *testing.T) {
		w := newWorld(t)
		pr, err := w.reader(t).PullRequest(ctx, w.pr)
		if err != nil {
			t.Fatal(err)
		}
		w.srv.SetLatency(latency)
		w.srv.ResetRequests()
		s, err := Gather(ctx, w.reader(t), Input{Repo: testRepo, SHA: w.merge, Branch: "main", PR: &pr})
		if err != nil {
			t.Fatal(err)
		}
		if !s.HasPR || len(s.Reviews) == 0 || len(s.Checks) == 0 || !s.ConfigFound || len(s.Tags) == 0 {
			t.Fatalf("incomplete snapshot: %+v", s)
		}
		reqs := w.srv.Requests()
		wantRoutes := slices.Sorted(slices.Values([]string{routeCheckRuns, routeContents, routeProtection, routeReviews, routeRules, routeStatuses, routeTags}))
		if got := patterns(reqs); !slices.Equal(got, wantRoutes) {
			t.Fatalf("requests %q, want %q", got, wantRoutes)
		}
		// Every read starts before the first one finishes.
		firstEnd := reqs[0].Time.Add(reqs[0].Duration)
		for _, r := range reqs {
			firstEnd = minTime(firstEnd, r.Time.Add(r.Duration))
		}
		for _, r := range reqs {
			if !r.Time.Before(firstEnd) {
				t.Errorf("%s started after the first read had finished", r.Pattern)
			}
		}
		if _, n := waves(reqs); n != 1 {
			t.Errorf("%d waves, want 1", n)
		}
		t.Logf("PR in hand: %d requests in 1 wave", len(reqs))
	})

	t.Run("LookupPR: two waves", func(t *testing.T) {
		w := newWorld(t)
		w.srv.SetLatency(latency)
		s, err := Gather(ctx, w.reader(t), Input{Repo: testRepo, SHA: w.merge, Branch: "main", LookupPR: true})
		if err != nil {
			t.Fatal(err)
		}
		if !s.HasPR || s.PR.Number != w.pr || len(s.Reviews) == 0 || len(s.Checks) == 0 {
			t.Fatalf("incomplete snapshot: %+v", s)
		}
		reqs := w.srv.Requests()
		depth, n := waves(reqs)
		if n != 2 {
			t.Errorf("%d waves, want 2", n)
		}
		byWave := map[int][]string{}
		for i, r := range reqs {
			byWave[depth[i]] = append(byWave[depth[i]], r.Pattern)
		}
		for _, ws := range byWave {
			slices.Sort(ws)
		}
		want := map[int][]string{
			1: slices.Sorted(slices.Values([]string{routeCommitPulls, routeContents, routeProtection, routeRules, routeTags})),
			2: slices.Sorted(slices.Values([]string{routeCheckRuns, routeReviews, routeStatuses})),
		}
		if diff := cmp.Diff(want, byWave); diff != "" {
			t.Errorf("requests by wave (-want +got):\n%s", diff)
		}
		t.Logf("LookupPR: %d requests in %d waves", len(reqs), n)
	})

	t.Run("LookupPR, no PR: one wave", func(t *testing.T) {
		w := newWorld(t)
		direct := w.srv.AddCommit(testRepo, "main", "direct push", map[string]string{"x": "y"})
		w.srv.SetLatency(latency)
		s, err := Gather(ctx, w.reader(t), Input{Repo: testRepo, SHA: direct, Branch: "main", LookupPR: true})
		if err != nil {
			t.Fatal(err)
		}
		if s.HasPR {
			t.Fatalf("HasPR for a direct push: %+v", s.PR)
		}
		reqs := w.srv.Requests()
		if got, want := patterns(reqs), slices.Sorted(slices.Values([]string{routeCommitPulls, routeContents, routeProtection, routeRules, routeTags})); !slices.Equal(got, want) {
			t.Errorf("requests %q, want %q", got, want)
		}
		if _, n := waves(reqs); n != 1 {
			t.Errorf("%d waves, want 1", n)
		}
	})
}

// TestWaves checks the wave count on hand-made timelines.
func TestWaves(t *testing.T) {
	t0 := time.Unix(0, 0)
	req := func(start, dur int) githubtest.Request {
		return githubtest.Request{Time: t0.Add(time.Duration(start)), Duration: time.Duration(dur)}
	}
	tests := []struct {
		name string
		reqs []githubtest.Request
		want int
	}{
		{"none", nil, 0},
		{"overlapping", []githubtest.Request{req(0, 10), req(1, 10), req(9, 10)}, 1},
		{"back to back", []githubtest.Request{req(0, 10), req(10, 10)}, 2},
		{"a chain beside a long read", []githubtest.Request{req(0, 100), req(0, 10), req(20, 10), req(40, 10)}, 3},
	}
	for _, tt := range tests {
		if _, n := waves(tt.reqs); n != tt.want {
			t.Errorf("%s: %d waves, want %d", tt.name, n, tt.want)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func patterns(reqs []githubtest.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Pattern
	}
	slices.Sort(out)
	return out
}

func BenchmarkGather(b *testing.B) {
	ctx := context.Background()

	// Gather's own cost: the fake Reader answers at once.
	b.Run("reader/pr", func(b *testing.B) {
		f := newFakeReader()
		in := Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Gather(ctx, f, in); err != nil {
				b.Fatal(err)
			}
			f.calls = f.calls[:0]
		}
	})
	b.Run("reader/lookup", func(b *testing.B) {
		f := newFakeReader()
		in := Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", LookupPR: true}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Gather(ctx, f, in); err != nil {
				b.Fatal(err)
			}
			f.calls = f.calls[:0]
		}
	})

	// End to end over loopback HTTP with a fresh (uncached) GitHub reader
	// each time, as each merge gets.
	for _, lookup := range []bool{false, true} {
		name := "github/pr"
		if lookup {
			name = "github/lookup"
		}
		b.Run(name, func(b *testing.B) {
			w := newWorld(b)
			pr := PRFromEvent(&gh.PullRequest{Number: gh.Int(w.pr), Head: &gh.PullRequestBranch{SHA: gh.String(w.head)}})
			in := Input{Repo: testRepo, SHA: w.merge, Branch: "main", PR: &pr}
			if lookup {
				in.PR, in.LookupPR = nil, true
			}
			b.ReportAllocs()
			for b.Loop() {
				g, err := NewGitHub(w.client, testRepo)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Gather(ctx, g, in); err != nil {
					b.Fatal(err)
				}
				w.srv.ResetRequests() // the fake keeps every request otherwise
			}
		})
	}
}
