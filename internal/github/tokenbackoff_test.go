package github

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func backoffApps(t *testing.T, baseURL string, clock *fakeClock, calls *CallCounter) *Apps {
	t.Helper()
	a, err := NewApps(Options{
		BaseURL:      baseURL,
		AppID:        testAppID,
		PrivateKey:   pkcs1PEM(t),
		Retry:        RetryPolicy{Sleep: (&fakeSleep{}).Sleep, Now: clock.Now},
		Calls:        calls,
		Logger:       quietLogger(),
		TokenBackoff: TokenBackoff{Now: clock.Now},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// While GitHub's token endpoint fails, an installation's calls do not each
// fetch a token: after a failed fetch (with the transport's own retries)
// the next waits 1 s, then 2 s, 4 s…, and calls in between fail at once,
// saying which installation and when the next try is. A token fetched
// again ends the backoff.
func TestTokenFailuresBackOff(t *testing.T) {
	f := newFakeGitHub(t, "")
	f.tokenFails.Store(1 << 30) // the token endpoint answers 502, for now
	clock := &fakeClock{now: testNow}
	calls := &CallCounter{}
	apps := backoffApps(t, f.URL, clock, calls)
	c, err := apps.Installation(42)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	call := func() error {
		_, _, err := c.Repositories.Get(ctx, "acme", "api")
		return err
	}

	const n = 20
	var last error
	for range n {
		if last = call(); last == nil {
			t.Fatal("call succeeded without a token")
		}
	}
	// One fetch, with the transport's retries; the other 19 calls sent
	// nothing.
	if got := f.tokenRequests(42); got > DefaultMaxAttempts {
		t.Fatalf("%d calls made %d token requests; want at most %d (one fetch)", n, got, DefaultMaxAttempts)
	}
	var be *TokenBackoffError
	if !errors.As(last, &be) {
		t.Fatalf("error %v; want a *TokenBackoffError", last)
	}
	if be.Installation != 42 || !be.NextTry.Equal(testNow.Add(time.Second)) {
		t.Errorf("backoff for installation %d until %v; want 42 until %v", be.Installation, be.NextTry, testNow.Add(time.Second))
	}
	for _, want := range []string{"installation 42", "next try at " + testNow.Add(time.Second).Format(time.RFC3339), "502"} {
		if !strings.Contains(last.Error(), want) {
			t.Errorf("error %q does not say %q", last, want)
		}
	}

	// Once the wait is over, one more fetch; it fails, and the wait doubles.
	clock.Advance(time.Second)
	before := f.tokenRequests(42)
	call()
	if got := f.tokenRequests(42) - before; got == 0 || got > DefaultMaxAttempts {
		t.Fatalf("after the backoff: %d token requests; want one fetch", got)
	}
	clock.Advance(1500 * time.Millisecond)
	before = f.tokenRequests(42)
	if err := call(); !errors.As(err, &be) || be.Failures != 2 {
		t.Fatalf("1.5 s into the second backoff: %v; want a *TokenBackoffError after 2 failures", err)
	}
	if got := f.tokenRequests(42) - before; got != 0 {
		t.Fatalf("1.5 s into a 2 s backoff: %d token requests; want none", got)
	}

	// Another installation is not held back by this one's failures.
	other, _ := apps.Installation(7)
	if _, _, err := other.Repositories.Get(ctx, "acme", "web"); err == nil || errors.As(err, &be) {
		t.Errorf("installation 7's first call: %v; want a fetch of its own (failing with 502)", err)
	}

	// GitHub recovers: at the end of the wait the token comes, calls work.
	f.tokenFails.Store(0)
	clock.Advance(500 * time.Millisecond)
	if err := call(); err != nil {
		t.Fatalf("after GitHub recovered: %v", err)
	}
}

// A GitHub that cannot be reached at all (connection refused) is paced the
// same way.
func TestTokenFetchUnreachableBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	clock := &fakeClock{now: testNow}
	calls := &CallCounter{}
	apps := backoffApps(t, "http://"+addr+"/", clock, calls)
	c, _ := apps.Installation(42)
	var last error
	for range 20 {
		_, _, last = c.Repositories.Get(context.Background(), "acme", "api")
	}
	if got := calls.Count(tokenClass); got > DefaultMaxAttempts {
		t.Fatalf("20 calls made %d token requests; want at most %d (one fetch)", got, DefaultMaxAttempts)
	}
	if !strings.Contains(last.Error(), "installation 42") || !strings.Contains(last.Error(), "next try at") {
		t.Errorf("error %q; want it to name installation 42 and the next try", last)
	}
}

func TestTokenBackoffDefaults(t *testing.T) {
	b := TokenBackoff{}.withDefaults()
	var got []time.Duration
	for i := 1; i <= 10; i++ {
		got = append(got, b.wait(i))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v; want %v", got, want)
		}
	}
}
