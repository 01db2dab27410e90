package github

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/store"
)

func TestWriteClass(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         pacing.Class
		write        bool
	}{
		{"POST", "/repos/acme/api/releases", pacing.Rollout, true},
		{"POST", "/api/v3/repos/acme/api/git/refs", pacing.Rollout, true},
		{"POST", "/repos/acme/api/actions/workflows/deploy.yml/dispatches", pacing.Rollout, true},
		{"POST", "/repos/acme/api/check-runs", pacing.Report, true},
		{"PATCH", "/repos/acme/api/check-runs/12", pacing.Report, true},
		{"PATCH", "/repos/acme/api/issues/comments/3", pacing.Report, true},
		{"POST", "/repos/acme/api/deployments/4/statuses", pacing.Report, true},
		{"DELETE", "/repos/acme/api/issues/1/labels/x", pacing.Report, true},
		{"GET", "/repos/acme/api/releases", 0, false},
		{"HEAD", "/repos/acme/api", 0, false},
	} {
		c, ok := writeClass(tc.method, Classify(tc.method, tc.path))
		if ok != tc.write || c != tc.want {
			t.Errorf("%s %s: class %v, write %v; want %v, %v", tc.method, tc.path, c, ok, tc.want, tc.write)
		}
	}
}

// pacedEnv is a fake GitHub enforcing scaled-down secondary limits on a
// virtual clock, and an installation client paced under the same limits
// by a real SQLite ledger.
type pacedEnv struct {
	srv    *githubtest.Server
	client *gh.Client
	pr     int
}

func newPacedEnv(t *testing.T, fake githubtest.SecondaryLimits, paced bool) *pacedEnv {
	t.Helper()
	clock := pacing.NewVirtualClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	fake.Now = clock.Now
	srv := githubtest.New(githubtest.WithSecondaryLimits(fake))
	t.Cleanup(srv.Close)
	srv.AddRepo("acme/api", githubtest.RepoSpec{})
	pr := srv.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: "fix: x", Author: "alice"})
	opts := Options{BaseURL: srv.URL(), AppID: srv.AppID(), PrivateKey: srv.PrivateKeyPEM(), Logger: quietLogger(),
		Retry: RetryPolicy{MaxAttempts: 1}}
	if paced {
		db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "shipbot.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		opts.Pacer = &pacing.Pacer{Ledger: db, Clock: clock, Limits: pacing.Limits{PerMinute: fake.PerMinute, PerHour: fake.PerHour},
			InFlight: fake.Concurrent}
	}
	apps, err := NewApps(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apps.Installation(srv.InstallationID())
	if err != nil {
		t.Fatal(err)
	}
	return &pacedEnv{srv: srv, client: c, pr: pr}
}

// burst sends comments and releases at once and returns the errors.
func (e *pacedEnv) burst(comments, releases int) []error {
	ctx := context.Background()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range comments + releases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i < releases {
				tag := fmt.Sprintf("v1.0.%d", i)
				_, _, err = e.client.Repositories.CreateRelease(ctx, "acme", "api", &gh.RepositoryRelease{TagName: &tag, Name: &tag})
			} else {
				_, _, err = e.client.Issues.CreateComment(ctx, "acme", "api", e.pr, &gh.IssueComment{Body: gh.String(fmt.Sprintf("comment %d", i))})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// TestPacedWritesStayUnderSecondaryLimits: a burst of 45 writes at once
// against limits of 10 a minute and 40 an hour draws 403s unpaced; paced,
// every write lands (over an hour of the virtual clock), none refused,
// no window over its limit.
func TestPacedWritesStayUnderSecondaryLimits(t *testing.T) {
	limits := githubtest.SecondaryLimits{PerMinute: 10, PerHour: 40, Concurrent: 100}

	unpaced := newPacedEnv(t, limits, false)
	if errs := unpaced.burst(40, 5); len(errs) == 0 || unpaced.srv.SecondaryLimitRefusals() == 0 {
		t.Fatalf("unpaced: %d errors, %d refusals; the fake must refuse a burst past its limits", len(errs), unpaced.srv.SecondaryLimitRefusals())
	}

	e := newPacedEnv(t, limits, true)
	if errs := e.burst(40, 5); len(errs) > 0 {
		t.Fatalf("paced: %d writes failed, first: %v", len(errs), errs[0])
	}
	inst := e.srv.InstallationID()
	if n := e.srv.SecondaryLimitRefusals(); n != 0 {
		t.Errorf("paced: %d secondary-limit refusals; want 0", n)
	}
	if n := len(e.srv.Releases("acme/api")); n != 5 {
		t.Errorf("%d releases; want 5", n)
	}
	if n := len(e.srv.Comments("acme/api", e.pr)); n != 40 {
		t.Errorf("%d comments; want 40", n)
	}
	if m, h := e.srv.MaxWritesInAnyMinute(inst), e.srv.MaxWritesInAnyHour(inst); m > 10 || h > 40 {
		t.Errorf("at most %d writes in a minute, %d in an hour; the limits are 10 and 40", m, h)
	}
}

// TestPacedRequestsInFlight: the fake refuses a fourth concurrent request;
// a pacer allowing 3 in flight keeps 12 slow reads at once from it.
func TestPacedRequestsInFlight(t *testing.T) {
	e := newPacedEnv(t, githubtest.SecondaryLimits{Concurrent: 3}, true)
	e.srv.SetLatency(20 * time.Millisecond)
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := e.client.Repositories.Get(context.Background(), "acme", "api"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.srv.SecondaryLimitRefusals(); n != 0 {
		t.Errorf("%d refusals of concurrent requests; want 0", n)
	}
	if n := e.srv.MaxConcurrentRequests(e.srv.InstallationID()); n > 3 {
		t.Errorf("%d requests in flight at once; the pacer allows 3", n)
	}
}
