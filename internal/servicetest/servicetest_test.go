package servicetest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

// fakeTB records what a helper reports, and runs its cleanups when told.
// Fatalf ends the calling goroutine, as testing's does.
type fakeTB struct {
	testing.TB // nil: a method not overridden here is not expected

	mu       sync.Mutex
	failed   bool
	fatal    bool
	msgs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) record(failed bool, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || failed
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(format string, args ...any)   { f.record(false, format, args...) }
func (f *fakeTB) Errorf(format string, args ...any) { f.record(true, format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(true, format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// runCleanups runs the cleanups last-in first-out.
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func (f *fakeTB) messages() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// inGoroutine runs fn as a test body would run: a Fatalf ends it.
func inGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestEventually(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	servicetest.Eventually(t, "the third look", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("cond called %d times; want 3", got)
	}

	f := &fakeTB{}
	start := time.Now()
	inGoroutine(func() {
		servicetest.Wait{Limit: 50 * time.Millisecond, Interval: time.Millisecond}.Eventually(f, "never", func() bool { return false })
		t.Error("Eventually returned although cond never held")
	})
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("gave up after %s; want at least the 50ms limit", took)
	}
	if !f.fatal || !strings.Contains(f.messages(), "timed out after 50ms waiting until never") {
		t.Errorf("fatal %v, messages %q; want a fatal timeout naming the limit and what", f.fatal, f.messages())
	}
}

func TestLogBufferDumpsOnFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		tail     int
		failed   bool
		want     string
		wantNone bool
	}{
		{name: "passed", failed: false, wantNone: true},
		{name: "failed", failed: true, want: "service logs:\nline 1\nline 2\n"},
		{name: "failed, tail", tail: 7, failed: true, want: "service logs (tail):\n…\nline 2\n"},
		{name: "failed, tail longer than the logs", tail: 1 << 10, failed: true, want: "service logs:\nline 1\nline 2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{failed: tc.failed}
			b := servicetest.NewLogBuffer(f, tc.tail)
			fmt.Fprintf(b, "line 1\n")
			fmt.Fprintf(b, "line 2\n")
			if got := b.String(); got != "line 1\nline 2\n" {
				t.Fatalf("String() = %q", got)
			}
			f.runCleanups()
			if got := f.messages(); tc.wantNone && got != "" || !tc.wantNone && got != tc.want {
				t.Errorf("dumped %q; want %q", got, tc.want)
			}
		})
	}
}

func TestDBPathAndOpenStore(t *testing.T) {
	base := t.TempDir()
	t.Setenv("SHIPBOT_TEST_DBDIR", base)
	f := &fakeTB{}
	path := servicetest.DBPath(f)
	if filepath.Base(path) != "shipbot.db" || !strings.HasPrefix(path, base+string(filepath.Separator)) {
		t.Fatalf("DBPath = %s; want shipbot.db in a directory under %s", path, base)
	}
	st := servicetest.OpenStore(t, path)
	if _, err := st.ListRuns(context.Background(), "acme/api", 1); err != nil {
		t.Errorf("the opened store is not migrated: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	f.runCleanups()
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("the database's directory is left after the cleanup: %v", err)
	}
}

func TestAppsAndSeedRepo(t *testing.T) {
	t.Parallel()
	gh := servicetest.NewGitHub(t, githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	servicetest.SeedRepo(gh, "acme/api", map[string]string{"README.md": "# api\n"})
	for _, base := range []string{"", gh.GHESURL()} {
		c, err := servicetest.Apps(t, gh, ghclient.Options{BaseURL: base}).Installation(gh.InstallationID())
		if err != nil {
			t.Fatal(err)
		}
		gh.ResetRequests()
		prot, _, err := c.Repositories.GetBranchProtection(context.Background(), "acme", "api", "main")
		if err != nil {
			t.Fatalf("base %q: %v", base, err)
		}
		if r := prot.GetRequiredPullRequestReviews(); r == nil || r.RequiredApprovingReviewCount != 1 {
			t.Errorf("base %q: main's required reviews %+v; want one approval", base, r)
		}
		if s := prot.GetRequiredStatusChecks(); s == nil || s.Contexts == nil || len(*s.Contexts) != 1 || (*s.Contexts)[0] != "ci/test" {
			t.Errorf("base %q: main's required checks %+v; want ci/test", base, s)
		}
		for _, r := range gh.Requests() {
			if base != "" && !strings.HasPrefix(r.Path, "/api/v3/") {
				t.Errorf("base %q: %s %s did not use the base", base, r.Method, r.Path)
			}
		}
		perm, _, err := c.Repositories.GetPermissionLevel(context.Background(), "acme", "api", "bob")
		if err != nil || perm.GetPermission() != "write" {
			t.Errorf("base %q: bob's permission %q, %v; want write", base, perm.GetPermission(), err)
		}
	}
}

// pushes is a webhook handler that counts the push deliveries it handled.
type pushes struct{ n atomic.Int64 }

func (p *pushes) Handles() []string { return []string{"push"} }

func (p *pushes) Handle(context.Context, store.Delivery) error {
	p.n.Add(1)
	return nil
}

func TestStartSendProcessStop(t *testing.T) {
	t.Parallel()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	defer st.Close()
	h := &pushes{}
	srv := servicetest.Start(t, servicetest.Listen(t), service.Options{
		Store: st, WebhookSecret: []byte("s3cret"), Handlers: []webhook.Handler{h},
		Log: slog.New(slog.DiscardHandler), WorkerPoll: 10 * time.Millisecond,
	})
	hook := srv.Hook()
	if want := srv.URL + "/webhooks/github"; hook.URL != want || string(hook.Secret) != "s3cret" {
		t.Fatalf("Hook() = %s %q; want %s with the service's secret", hook.URL, hook.Secret, want)
	}
	var ds servicetest.Deliveries
	push := ds.New("push", []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}`))
	other := ds.New("push", push.Body)
	if push.ID != "delivery-1" || other.ID != "delivery-2" || push.Event != "push" {
		t.Fatalf("deliveries %+v, %+v; want delivery-1 and delivery-2", push, other)
	}
	hook.SendOK(t, push, other)
	servicetest.WaitProcessed(t, st, push.ID, other.ID)
	if n := h.n.Load(); n != 2 {
		t.Errorf("handled %d deliveries; want both", n)
	}
	if code := hook.Send(t, push); code != http.StatusOK {
		t.Errorf("a known delivery answered %d; want 200", code)
	}
	// A delivery signed with another secret is refused.
	if code := (servicetest.Hook{URL: hook.URL, Secret: []byte("wrong")}).Send(t, ds.New("push", push.Body)); code == http.StatusOK || code == http.StatusAccepted {
		t.Errorf("a delivery signed with the wrong secret answered %d", code)
	}

	srv.Stop()
	srv.Stop() // idempotent
	srv.Kill() // too, after Stop
	if _, err := http.Get(srv.URL + "/healthz"); err == nil {
		t.Error("the service still answers after Stop")
	}
}

func TestCancelThenKill(t *testing.T) {
	t.Parallel()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	defer st.Close()
	srv := servicetest.Start(t, servicetest.Listen(t), service.Options{
		Store: st, WebhookSecret: []byte("s3cret"), Handlers: []webhook.Handler{&pushes{}},
		Log: slog.New(slog.DiscardHandler),
	})
	srv.Cancel() // never blocks
	servicetest.Eventually(t, "the service stops answering", func() bool {
		resp, err := http.Get(srv.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	srv.Kill()
}

func TestLogBufferConcurrentUse(t *testing.T) {
	t.Parallel()
	b := servicetest.NewLogBuffer(t, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(b, "writer %d\n", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Errorf("%d lines; want 800", n)
	}
}
