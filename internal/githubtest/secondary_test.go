package githubtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

// testClock is a clock the test moves by hand; safe for the fake's
// handler goroutines to read.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitsEnv is a fake with a driven clock, one repository and one open pull
// request to comment on.
type limitsEnv struct {
	s     *Server
	clock *testClock
	pr    int
}

func newLimitsEnv(t *testing.T, opts ...Option) *limitsEnv {
	t.Helper()
	clock := newTestClock()
	s := newServer(t, append([]Option{WithClock(clock.Now)}, opts...)...)
	s.AddRepo(testRepo, RepoSpec{})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x", Author: "alice"})
	return &limitsEnv{s: s, clock: clock, pr: pr}
}

// comment posts an issue comment with c and returns the answer.
func (e *limitsEnv) comment(c *rawClient, body string) (int, http.Header, []byte) {
	c.t.Helper()
	return c.do("POST", fmt.Sprintf("repos/%s/issues/%d/comments", testRepo, e.pr), map[string]string{"body": body})
}

// mustComment posts n comments that must all be created.
func (e *limitsEnv) mustComment(t *testing.T, c *rawClient, n int) {
	t.Helper()
	for i := range n {
		if st, _, out := e.comment(c, fmt.Sprintf("comment %d", i)); st != http.StatusCreated {
			t.Fatalf("comment %d of %d = %d, want 201: %s", i+1, n, st, out)
		}
	}
}

// wantSecondaryRefusal insists on GitHub's secondary rate limit 403 with
// Retry-After retryAfter.
func wantSecondaryRefusal(t *testing.T, status int, h http.Header, body []byte, retryAfter string) {
	t.Helper()
	if status != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %s", status, body)
	}
	if got := h.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
	id := h.Get("X-GitHub-Request-Id")
	if id == "" {
		t.Error("no X-GitHub-Request-Id")
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	want := map[string]any{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID " + id + ".",
		"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		"status":            "403",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body\n got %v\nwant %v", got, want)
	}
}

func TestGitHubSecondaryLimits(t *testing.T) {
	numbers := func(l SecondaryLimits) [3]int { return [3]int{l.PerMinute, l.PerHour, l.Concurrent} }
	if got := numbers(GitHubSecondaryLimits()); got != [3]int{80, 500, 100} {
		t.Errorf("GitHubSecondaryLimits() = %v, want 80/minute, 500/hour, 100 at once", got)
	}
	if got := (SecondaryLimits{}).withDefaults(); numbers(got) != numbers(GitHubSecondaryLimits()) {
		t.Errorf("zero SecondaryLimits means %+v, want GitHub's", got)
	}
}

// TestSecondaryLimitPerMinute: 80 writes in a rolling minute, the 81st
// refused with no effect until the oldest write leaves the window.
func TestSecondaryLimitPerMinute(t *testing.T) {
	e := newLimitsEnv(t, WithSecondaryLimits(SecondaryLimits{}), WithSchemaCheck(schemacheck.ValidateResponse))
	c := tokenClient(t, e.s)

	// 80 writes half a second apart: T+0 … T+39.5s.
	for i := range 80 {
		if st, _, out := e.comment(c, "hello"); st != http.StatusCreated {
			t.Fatalf("write %d = %d: %s", i+1, st, out)
		}
		e.clock.Advance(500 * time.Millisecond)
	}
	// T+40s: the window is full until T+60s, when the first write leaves.
	st, h, out := e.comment(c, "one too many")
	wantSecondaryRefusal(t, st, h, out, "20")
	if n := len(e.s.Comments(testRepo, e.pr)); n != 80 {
		t.Errorf("%d comments after the refusal, want 80 (a refused request has no effect)", n)
	}

	// T+59.9s: 0.1 s to go, rounded up to a whole second.
	e.clock.Advance(19*time.Second + 900*time.Millisecond)
	st, h, out = e.comment(c, "still too many")
	wantSecondaryRefusal(t, st, h, out, "1")

	// T+60s: the T+0 write has left; the refusals took no room.
	e.clock.Advance(100 * time.Millisecond)
	if st, _, out := e.comment(c, "now it fits"); st != http.StatusCreated {
		t.Fatalf("write at the window's edge = %d: %s", st, out)
	}
	// The window is full again until the T+0.5s write leaves at T+60.5s.
	st, h, out = e.comment(c, "full again")
	wantSecondaryRefusal(t, st, h, out, "1")

	if got := e.s.SecondaryLimitRefusals(); got != 3 {
		t.Errorf("SecondaryLimitRefusals() = %d, want 3", got)
	}
	if got := e.s.MaxWritesInAnyMinute(e.s.InstallationID()); got != 80 {
		t.Errorf("MaxWritesInAnyMinute = %d, want 80", got)
	}
	if got := len(e.s.Comments(testRepo, e.pr)); got != 81 {
		t.Errorf("%d comments, want 81", got)
	}
	if v := e.s.SchemaViolations(); len(v) > 0 {
		t.Errorf("schema violations: %v", v)
	}
}

// TestSecondaryLimitPerHour: 500 writes in a rolling hour; Retry-After
// counts to when the oldest write leaves the hour.
func TestSecondaryLimitPerHour(t *testing.T) {
	e := newLimitsEnv(t, WithSecondaryLimits(GitHubSecondaryLimits()))
	c := tokenClient(t, e.s)

	// 80 writes at the start of each of minutes 0–5, then 20 in minute 6.
	for range 6 {
		e.mustComment(t, c, 80)
		e.clock.Advance(time.Minute)
	}
	e.mustComment(t, c, 20)

	// T+6m: the minute holds 20, but the hour holds 500 until T+60m.
	st, h, out := e.comment(c, "501st")
	wantSecondaryRefusal(t, st, h, out, "3240")

	// Tokens live an hour of the fake's clock too; mint a fresh one.
	e.clock.Advance(54*time.Minute - time.Second)
	c = tokenClient(t, e.s)
	st, h, out = e.comment(c, "501st")
	wantSecondaryRefusal(t, st, h, out, "1")

	// T+60m: the 80 writes of T+0 have left the hour.
	e.clock.Advance(time.Second)
	e.mustComment(t, c, 80)
	st, h, out = e.comment(c, "and the next minute's")
	wantSecondaryRefusal(t, st, h, out, "60")

	if got := len(e.s.Comments(testRepo, e.pr)); got != 580 {
		t.Errorf("%d comments, want 580", got)
	}
	if got := e.s.SecondaryLimitRefusals(); got != 3 {
		t.Errorf("SecondaryLimitRefusals() = %d, want 3", got)
	}
	inst := e.s.InstallationID()
	if got := e.s.MaxWritesInAnyHour(inst); got != 500 {
		t.Errorf("MaxWritesInAnyHour = %d, want 500", got)
	}
	if got := e.s.MaxWritesInAnyMinute(inst); got != 80 {
		t.Errorf("MaxWritesInAnyMinute = %d, want 80", got)
	}
}

// TestSecondaryLimitWhatCounts: only an installation's own
// content-generating requests fill its windows.
func TestSecondaryLimitWhatCounts(t *testing.T) {
	const limit = 3
	for _, tc := range []struct {
		name  string
		noise func(t *testing.T, e *limitsEnv)
	}{
		{"nothing", func(*testing.T, *limitsEnv) {}},
		{"GETs", func(t *testing.T, e *limitsEnv) {
			c := tokenClient(t, e.s)
			for range 10 {
				c.call("GET", fmt.Sprintf("repos/%s/issues/%d/comments", testRepo, e.pr), nil, http.StatusOK)
				c.call("GET", "repos/"+testRepo, nil, http.StatusOK)
			}
		}},
		{"token exchanges", func(t *testing.T, e *limitsEnv) {
			now := e.clock.Now()
			c := &rawClient{t: t, base: e.s.URL(), auth: "Bearer " + signJWT(t, e.s.PrivateKeyPEM(), jwt.MapClaims{
				"iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(2 * time.Minute).Unix(), "iss": e.s.AppID(),
			})}
			for range 10 {
				c.call("POST", fmt.Sprintf("app/installations/%d/access_tokens", e.s.InstallationID()), nil, http.StatusCreated)
			}
		}},
		{"a static token's writes", func(t *testing.T, e *limitsEnv) {
			e.s.AddStaticToken("ghs_workflow")
			c := &rawClient{t: t, base: e.s.URL(), auth: "token ghs_workflow"}
			e.mustComment(t, c, 10)
		}},
		{"another installation's writes", func(t *testing.T, e *limitsEnv) {
			other := e.s.AddInstallation("globex")
			e.s.AddRepo("globex/web", RepoSpec{InstallationID: other})
			pr := e.s.OpenPullRequest("globex/web", PullRequestSpec{Title: "x", Author: "alice"})
			c := &rawClient{t: t, base: e.s.URL(), auth: "token " + e.s.InstallationToken(other)}
			path := fmt.Sprintf("repos/globex/web/issues/%d/comments", pr)
			for range limit {
				c.call("POST", path, map[string]string{"body": "hi"}, http.StatusCreated)
			}
			st, h, out := c.do("POST", path, map[string]string{"body": "hi"})
			wantSecondaryRefusal(t, st, h, out, "60")
		}},
		{"writes refused for a bad token", func(t *testing.T, e *limitsEnv) {
			c := &rawClient{t: t, base: e.s.URL(), auth: "token ghs_nonsense"}
			for range 10 {
				if st, _, out := e.comment(c, "hi"); st != http.StatusUnauthorized {
					t.Fatalf("bad token = %d: %s", st, out)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t, WithSecondaryLimits(SecondaryLimits{PerMinute: limit}))
			tc.noise(t, e)
			c := tokenClient(t, e.s)
			e.mustComment(t, c, limit)
			st, h, out := e.comment(c, "over")
			wantSecondaryRefusal(t, st, h, out, "60")
		})
	}
}

// TestSecondaryLimitWriteMethods: POST, PATCH and DELETE all count, and a
// refused one of each changes nothing.
func TestSecondaryLimitWriteMethods(t *testing.T) {
	for _, tc := range []struct {
		name      string
		write     func(c *rawClient, e *limitsEnv, commentID int64) (int, http.Header, []byte)
		unchanged func(t *testing.T, e *limitsEnv, commentID int64)
	}{
		{"POST a comment",
			func(c *rawClient, e *limitsEnv, _ int64) (int, http.Header, []byte) {
				return e.comment(c, "new")
			},
			func(t *testing.T, e *limitsEnv, _ int64) {
				if n := len(e.s.Comments(testRepo, e.pr)); n != 1 {
					t.Errorf("%d comments, want only the seeded one", n)
				}
			}},
		{"PATCH a comment",
			func(c *rawClient, _ *limitsEnv, id int64) (int, http.Header, []byte) {
				return c.do("PATCH", fmt.Sprintf("repos/%s/issues/comments/%d", testRepo, id), map[string]string{"body": "edited"})
			},
			func(t *testing.T, e *limitsEnv, _ int64) {
				if got := e.s.Comments(testRepo, e.pr)[0].Body; got != "seeded" {
					t.Errorf("comment body %q, want it unchanged", got)
				}
			}},
		{"DELETE a label",
			func(c *rawClient, e *limitsEnv, _ int64) (int, http.Header, []byte) {
				return c.do("DELETE", fmt.Sprintf("repos/%s/issues/%d/labels/keep", testRepo, e.pr), nil)
			},
			func(t *testing.T, e *limitsEnv, _ int64) {
				if got := e.s.Labels(testRepo, e.pr); len(got) != 1 || got[0] != "keep" {
					t.Errorf("labels %v, want [keep]", got)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t, WithSecondaryLimits(SecondaryLimits{PerMinute: 2}))
			id := e.s.AddComment(testRepo, e.pr, "bob", "seeded")
			e.s.AddLabels(testRepo, e.pr, "keep")
			c := tokenClient(t, e.s)
			// Fill the window with writes that leave no trace on the
			// state checked: label additions of another label.
			for range 2 {
				c.call("POST", fmt.Sprintf("repos/%s/issues/%d/labels", testRepo, e.pr), map[string]any{"labels": []string{"other"}}, http.StatusOK)
			}
			e.s.RemoveLabel(testRepo, e.pr, "other")
			st, h, out := tc.write(c, e, id)
			wantSecondaryRefusal(t, st, h, out, "60")
			tc.unchanged(t, e, id)
		})
	}
}

// TestSecondaryLimitGoGitHub: go-github sees the refusal as
// *github.AbuseRateLimitError with RetryAfter, as it would GitHub's.
func TestSecondaryLimitGoGitHub(t *testing.T) {
	e := newLimitsEnv(t, WithSecondaryLimits(SecondaryLimits{}))
	gh := ghClient(t, e.s)
	ctx := context.Background()
	owner, repo, _ := strings.Cut(testRepo, "/")
	for i := range 80 {
		if _, _, err := gh.Issues.CreateComment(ctx, owner, repo, e.pr, &github.IssueComment{Body: github.String("hi")}); err != nil {
			t.Fatalf("comment %d: %v", i+1, err)
		}
	}
	e.clock.Advance(15 * time.Second)
	_, resp, err := gh.Issues.CreateComment(ctx, owner, repo, e.pr, &github.IssueComment{Body: github.String("81st")})
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) {
		t.Fatalf("81st comment: got %T %v, want *github.AbuseRateLimitError", err, err)
	}
	if abuse.RetryAfter == nil || *abuse.RetryAfter != 45*time.Second {
		t.Errorf("RetryAfter = %v, want 45s", abuse.RetryAfter)
	}
	if !strings.Contains(abuse.Message, "secondary rate limit") {
		t.Errorf("Message = %q", abuse.Message)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("response %v, want a 403", resp)
	}
}

// TestSecondaryLimitConcurrency: at most 100 requests of an installation
// in flight; the 101st is refused, another installation's is not.
func TestSecondaryLimitConcurrency(t *testing.T) {
	e := newLimitsEnv(t, WithSecondaryLimits(SecondaryLimits{}))
	inst := e.s.InstallationID()
	other := e.s.AddInstallation("globex")
	e.s.AddRepo("globex/web", RepoSpec{InstallationID: other})

	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	e.s.holdInFlight(func(id int64) {
		if id == inst {
			entered <- struct{}{}
			<-release
		}
	})
	token := e.s.InstallationToken(inst)

	// status does one request without testing.T, for goroutines.
	status := func(method, path, token string) (int, http.Header, []byte, error) {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(`{"body":"hi"}`)
		}
		req, err := http.NewRequest(method, e.s.URL()+path, body)
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, out, err
	}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			st, _, out, err := status("GET", "repos/"+testRepo, token)
			if err == nil && st != http.StatusOK {
				err = fmt.Errorf("held request = %d: %s", st, out)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	for range 100 {
		<-entered
	}

	// 100 in flight: one more of any method is refused and has no effect.
	for _, method := range []string{"GET", "POST"} {
		path := "repos/" + testRepo
		if method == "POST" {
			path = fmt.Sprintf("repos/%s/issues/%d/comments", testRepo, e.pr)
		}
		st, h, out, err := status(method, path, token)
		if err != nil {
			t.Fatal(err)
		}
		wantSecondaryRefusal(t, st, h, out, "1")
	}
	if n := len(e.s.Comments(testRepo, e.pr)); n != 0 {
		t.Errorf("%d comments, want none", n)
	}
	// Another installation has its own 100.
	if st, _, out, err := status("GET", "repos/globex/web", e.s.InstallationToken(other)); err != nil || st != http.StatusOK {
		t.Errorf("other installation = %d, %v: %s", st, err, out)
	}

	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.s.holdInFlight(nil)
	if st, _, out, err := status("GET", "repos/"+testRepo, token); err != nil || st != http.StatusOK {
		t.Errorf("after the held requests finished = %d, %v: %s", st, err, out)
	}
	if got := e.s.MaxConcurrentRequests(inst); got != 100 {
		t.Errorf("MaxConcurrentRequests = %d, want 100", got)
	}
	if got := e.s.SecondaryLimitRefusals(); got != 2 {
		t.Errorf("SecondaryLimitRefusals() = %d, want 2", got)
	}
	// The refused POST took no room in the write windows either.
	if got := e.s.MaxWritesInAnyMinute(inst); got != 0 {
		t.Errorf("MaxWritesInAnyMinute = %d, want 0", got)
	}
}

// TestSecondaryLimitsOffByDefault: without WithSecondaryLimits nothing is
// refused, but the accessors still measure.
func TestSecondaryLimitsOffByDefault(t *testing.T) {
	e := newLimitsEnv(t)
	e.mustComment(t, tokenClient(t, e.s), 600)
	if got := e.s.SecondaryLimitRefusals(); got != 0 {
		t.Errorf("SecondaryLimitRefusals() = %d, want 0", got)
	}
	inst := e.s.InstallationID()
	if got := e.s.MaxWritesInAnyMinute(inst); got != 600 {
		t.Errorf("MaxWritesInAnyMinute = %d, want 600", got)
	}
	if got := e.s.MaxWritesInAnyHour(inst); got != 600 {
		t.Errorf("MaxWritesInAnyHour = %d, want 600", got)
	}
}

// TestMaxWritesInAnyWindow: the accessors report the busiest rolling
// window, whose bounds are (end-window, end].
func TestMaxWritesInAnyWindow(t *testing.T) {
	for _, tc := range []struct {
		name               string
		offsets            []time.Duration // when each write happens, from the start
		wantMinute, wantHr int
	}{
		{"none", nil, 0, 0},
		{"one", []time.Duration{0}, 1, 1},
		{"a minute apart do not share a window", []time.Duration{0, time.Minute, 2 * time.Minute}, 1, 3},
		{"just under a minute apart do", []time.Duration{0, time.Minute - time.Millisecond}, 2, 2},
		{"busiest window in the middle",
			[]time.Duration{0, 30 * time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second, 119 * time.Second}, 4, 6},
		{"an hour apart do not share a window", []time.Duration{0, time.Hour, time.Hour + time.Second}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			c := tokenClient(t, e.s)
			var at time.Duration
			for _, off := range tc.offsets {
				e.clock.Advance(off - at)
				at = off
				c.auth = "token " + e.s.InstallationToken(e.s.InstallationID()) // outlive the hour
				e.mustComment(t, c, 1)
			}
			inst := e.s.InstallationID()
			if got := e.s.MaxWritesInAnyMinute(inst); got != tc.wantMinute {
				t.Errorf("MaxWritesInAnyMinute = %d, want %d", got, tc.wantMinute)
			}
			if got := e.s.MaxWritesInAnyHour(inst); got != tc.wantHr {
				t.Errorf("MaxWritesInAnyHour = %d, want %d", got, tc.wantHr)
			}
		})
	}
}
