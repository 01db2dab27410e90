package githubtest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestReviewsPaginationLinkHeader(t *testing.T) {
	s := newServer(t)
	s.AddRepo(testRepo, RepoSpec{})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x", Author: "alice"})
	for i := range 7 {
		s.AddReview(testRepo, pr, fmt.Sprintf("reviewer%d", i), "COMMENTED", "")
	}
	c := tokenClient(t, s)
	status, h, body := c.do("GET", fmt.Sprintf("repos/acme/api/pulls/%d/reviews?per_page=3", pr), nil)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	link := h.Get("Link")
	for _, want := range []string{`page=2&per_page=3>; rel="next"`, `page=3&per_page=3>; rel="last"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	if !regexp.MustCompile(`^<http://127\.0\.0\.1:\d+/repos/acme/api/pulls/1/reviews\?`).MatchString(link) {
		t.Errorf("Link %q is not an absolute URL of the same endpoint", link)
	}
	_, h, _ = c.do("GET", fmt.Sprintf("repos/acme/api/pulls/%d/reviews?per_page=3&page=3", pr), nil)
	if link := h.Get("Link"); strings.Contains(link, `rel="next"`) || !strings.Contains(link, `rel="prev"`) || !strings.Contains(link, `rel="first"`) {
		t.Errorf("last page Link = %q", link)
	}

	// go-github follows the Link header to collect every review.
	gh := ghClient(t, s)
	opts := &github.ListOptions{PerPage: 2}
	var all []*github.PullRequestReview
	for {
		page, resp, err := gh.PullRequests.ListReviews(context.Background(), "acme", "api", pr, opts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(all) != 7 || all[0].GetUser().GetLogin() != "reviewer0" || all[6].GetUser().GetLogin() != "reviewer6" {
		t.Errorf("collected %d reviews", len(all))
	}
	if got := s.Count("GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"); got != 2+4 {
		t.Errorf("Count = %d, want 6", got)
	}
}

func TestETagAndNotModified(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	c := tokenClient(t, s)
	path := "repos/acme/api/contents/.github/shipbot.yml?ref=" + merge
	status, h, _ := c.do("GET", path, nil)
	etag := h.Get("ETag")
	if status != 200 || etag == "" {
		t.Fatalf("status %d, ETag %q", status, etag)
	}
	remaining := h.Get("X-RateLimit-Remaining")
	status, h, body := c.do("GET", path, nil, "If-None-Match", etag)
	if status != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("conditional GET = %d with %d bytes, want 304 and no body", status, len(body))
	}
	if h.Get("X-RateLimit-Remaining") != remaining {
		t.Errorf("a 304 used rate limit: %s → %s", remaining, h.Get("X-RateLimit-Remaining"))
	}
	// Weak validators match too, as GitHub sends them.
	if status, _, _ := c.do("GET", path, nil, "If-None-Match", "W/"+etag); status != http.StatusNotModified {
		t.Errorf("weak ETag: %d", status)
	}
	// A change to the resource changes the ETag.
	_, h1, _ := c.do("GET", "repos/acme/api/issues/1/labels", nil)
	s.AddLabels(testRepo, 1, "semver:major")
	status, _, _ = c.do("GET", "repos/acme/api/issues/1/labels", nil, "If-None-Match", h1.Get("ETag"))
	if status != 200 {
		t.Errorf("changed resource answered %d", status)
	}
	var got []int
	for _, r := range s.Requests() {
		if r.Pattern == "GET /repos/{owner}/{repo}/contents/{path}" {
			got = append(got, r.Status)
		}
	}
	if fmt.Sprint(got) != "[200 304 304]" {
		t.Errorf("recorded statuses %v", got)
	}
}

func TestRequestRecording(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	c := tokenClient(t, s)
	c.call("POST", "repos/acme/api/issues/1/comments?x=1", map[string]string{"body": "hello"}, 201)
	c.call("GET", "repos/acme/api/pulls/1", nil, 200)
	c.call("GET", "repos/acme/api/pulls/1", nil, 200)
	status, _, body := c.do("GET", "repos/acme/api/teleport", nil)
	if status != 404 || !strings.Contains(string(body), `"documentation_url"`) || !strings.Contains(string(body), `"Not Found"`) {
		t.Errorf("unknown endpoint: %d %s", status, body)
	}
	c.do("PUT", "repos/acme/api/pulls/1/merge", nil)

	reqs := s.Requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	first := reqs[0]
	if first.Method != "POST" || first.Path != "/repos/acme/api/issues/1/comments" ||
		first.Pattern != "POST /repos/{owner}/{repo}/issues/{issue_number}/comments" ||
		first.Query.Get("x") != "1" || first.Status != 201 || string(first.Body) != `{"body":"hello"}` || first.Time.IsZero() {
		t.Errorf("first request recorded as %+v", first)
	}
	if got := s.Count("GET /repos/{owner}/{repo}/pulls/{pull_number}"); got != 2 {
		t.Errorf("Count(get pull) = %d", got)
	}
	if got := s.Count("UNKNOWN"); got != 2 {
		t.Errorf("Count(UNKNOWN) = %d", got)
	}
	if got := s.Count("*"); got != 5 {
		t.Errorf("Count(*) = %d", got)
	}
	s.ResetRequests()
	if len(s.Requests()) != 0 || s.Count("*") != 0 {
		t.Error("ResetRequests kept requests")
	}
	if len(s.Comments(testRepo, 1)) != 1 {
		t.Error("ResetRequests dropped state")
	}
}

func TestFailNext(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	c := tokenClient(t, s)
	const pattern = "POST /repos/{owner}/{repo}/check-runs"
	s.FailNext(pattern, http.StatusServiceUnavailable, 2, "Retry-After", "1")
	body := map[string]any{"name": "shipbot/rollout", "head_sha": s.BranchSHA(testRepo, "main")}
	for range 2 {
		status, h, out := c.do("POST", "repos/acme/api/check-runs", body)
		if status != 503 || h.Get("Retry-After") != "1" || !strings.Contains(string(out), "message") {
			t.Errorf("injected fault = %d, Retry-After %q: %s", status, h.Get("Retry-After"), out)
		}
	}
	c.call("POST", "repos/acme/api/check-runs", body, 201)
	if runs := s.CheckRuns(testRepo, s.BranchSHA(testRepo, "main")); len(runs) != 1 {
		t.Errorf("%d check runs exist; failed requests must change nothing", len(runs))
	}
	// "*" matches any route, and other routes are untouched by a
	// pattern-specific fault.
	s.FailNext("*", http.StatusBadGateway, 1)
	c.call("GET", "repos/acme/api", nil, 502)
	c.call("GET", "repos/acme/api", nil, 200)
	var statuses []int
	for _, r := range s.Requests() {
		if r.Pattern == pattern {
			statuses = append(statuses, r.Status)
		}
	}
	if fmt.Sprint(statuses) != "[503 503 201]" {
		t.Errorf("recorded %v", statuses)
	}
}

func TestLatency(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	c := tokenClient(t, s)
	s.SetLatency(30 * time.Millisecond)
	start := time.Now()
	for range 3 {
		c.call("GET", "repos/acme/api", nil, 200)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("3 sequential requests took %v with 30ms latency", d)
	}
	s.SetLatency(0)
	// Latency must not serialise concurrent requests.
	s.SetLatency(50 * time.Millisecond)
	start = time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.do("GET", "repos/acme/api", nil)
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("5 concurrent requests took %v with 50ms latency", d)
	}
}

func TestGHESPrefix(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	if !strings.HasSuffix(s.GHESURL(), "/api/v3/") || !strings.HasSuffix(s.URL(), "/") {
		t.Fatalf("URL %q GHESURL %q", s.URL(), s.GHESURL())
	}
	c := &rawClient{t: t, base: s.GHESURL(), auth: "token " + s.InstallationToken(s.InstallationID())}
	pr := obj(t, c.call("GET", "repos/acme/api/pulls/1", nil, 200))
	if !strings.Contains(pr["url"].(string), "/api/v3/repos/acme/api/pulls/1") {
		t.Errorf("GHES response links to %v", pr["url"])
	}
	gh, err := github.NewClient(nil).WithAuthToken(s.InstallationToken(s.InstallationID())).WithEnterpriseURLs(s.GHESURL(), s.GHESURL())
	if err != nil {
		t.Fatal(err)
	}
	prs, _, err := gh.PullRequests.ListPullRequestsWithCommit(context.Background(), "acme", "api", merge, nil)
	if err != nil || len(prs) != 1 || prs[0].GetNumber() != 1 {
		t.Fatalf("PRs for merge commit via GHES: %v %v", prs, err)
	}
	if got := s.Count("GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"); got != 1 {
		t.Errorf("GHES request counted under its pattern %d times", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	c := tokenClient(t, s)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.do("POST", "repos/acme/api/statuses/"+merge, map[string]string{"state": "success", "context": fmt.Sprintf("c%d", i)})
			c.do("GET", "repos/acme/api/commits/"+merge+"/status", nil)
			s.Statuses(testRepo, merge)
			s.Count("*")
		}()
	}
	wg.Wait()
	if n := len(s.Statuses(testRepo, merge)); n != 8 {
		t.Errorf("%d statuses", n)
	}
}
