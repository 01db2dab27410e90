package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shipbot/shipbot/internal/metrics"
)

// fakeSleep records the waits the transport asks for and returns at once.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeSleep) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

var testNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// step is one scripted server answer.
type step struct {
	status int
	header map[string]string
	body   string
}

// scriptServer answers the i-th request with steps[i] (the last step
// repeats) and records each request's body.
type scriptServer struct {
	*httptest.Server
	mu     sync.Mutex
	steps  []step
	bodies []string
}

func newScriptServer(t *testing.T, steps ...step) *scriptServer {
	t.Helper()
	s := &scriptServer{steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		i := min(len(s.bodies), len(s.steps)-1)
		s.bodies = append(s.bodies, string(b))
		st := s.steps[i]
		s.mu.Unlock()
		for k, v := range st.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st.status)
		_, _ = io.WriteString(w, st.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptServer) Bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// tokenClient is a go-github client over the transport under test.
func tokenClient(t *testing.T, srv *scriptServer, p RetryPolicy, calls *CallCounter) *gh.Client {
	t.Helper()
	c, err := NewTokenClient(Options{BaseURL: srv.URL, Retry: p, Calls: calls, Logger: quietLogger()}, "test-token")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const prClass = "GET /repos/{owner}/{repo}/pulls/{pull_number}"

func TestRetryIdempotentThenSucceed(t *testing.T) {
	tests := []struct {
		name  string
		first step
	}{
		{"502", step{status: 502, body: `{"message":"Server Error"}`}},
		{"503", step{status: 503}},
		{"500", step{status: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, tt.first, step{status: 200, body: `{"number":1}`})
			sleep := &fakeSleep{}
			calls := &CallCounter{}
			c := tokenClient(t, srv, RetryPolicy{Sleep: sleep.Sleep}, calls)

			pr, _, err := c.PullRequests.Get(context.Background(), "acme", "api", 1)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if pr.GetNumber() != 1 {
				t.Errorf("number = %d", pr.GetNumber())
			}
			if got := calls.Count(prClass); got != 2 {
				t.Errorf("calls = %d, want 2 (%v)", got, calls.Snapshot())
			}
			waits := sleep.Waits()
			if len(waits) != 1 || waits[0] < 0 || waits[0] > DefaultBaseDelay {
				t.Errorf("waits = %v, want one backoff within [0, %s]", waits, DefaultBaseDelay)
			}
		})
	}
}

func TestRetryMetric(t *testing.T) {
	srv := newScriptServer(t, step{status: 502}, step{status: 200, body: `{}`})
	class := "GET /repos/{owner}/{repo}/releases/latest"
	before502 := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(class, "502"))
	before200 := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(class, "200"))
	c := tokenClient(t, srv, RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, nil)
	if _, _, err := c.Repositories.GetLatestRelease(context.Background(), "acme", "api"); err != nil {
		t.Fatal(err)
	}
	if d := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(class, "502")) - before502; d != 1 {
		t.Errorf("502 metric delta = %v, want 1", d)
	}
	if d := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(class, "200")) - before200; d != 1 {
		t.Errorf("200 metric delta = %v, want 1", d)
	}
}

func TestGiveUp(t *testing.T) {
	tests := []struct {
		name         string
		policy       RetryPolicy
		steps        []step
		wantAttempts int
		wantWaits    []time.Duration // nil: do not check exact values
		wantNWaits   int
		wantWait     time.Duration // RetryError.Wait
		wantIn       []string
	}{
		{
			name:         "attempts run out",
			steps:        []step{{status: 502}},
			wantAttempts: 4,
			wantNWaits:   3,
			wantIn:       []string{"github " + prClass + ": giving up after 4 attempts: 502 Bad Gateway"},
		},
		{
			name:         "budget spent on Retry-After",
			policy:       RetryPolicy{MaxWait: 25 * time.Second, MaxAttempts: 10},
			steps:        []step{{status: 503, header: map[string]string{"Retry-After": "10"}, body: `{"message":"Service Unavailable"}`}},
			wantAttempts: 3,
			wantWaits:    []time.Duration{10 * time.Second, 10 * time.Second},
			wantNWaits:   2,
			wantWait:     10 * time.Second,
			wantIn: []string{
				"giving up after 3 attempts: 503 Service Unavailable: Service Unavailable",
				"more than the 5s left of the retry budget",
			},
		},
		{
			name:         "primary rate limit resets too late",
			steps:        []step{{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(testNow.Add(2*time.Hour).Unix(), 10)}, body: `{"message":"API rate limit exceeded"}`}},
			wantAttempts: 1,
			wantNWaits:   0,
			wantWait:     2 * time.Hour,
			wantIn:       []string{"giving up after 1 attempt: 403 Forbidden: API rate limit exceeded"},
		},
		{
			name:         "secondary rate limit without Retry-After needs a minute",
			steps:        []step{{status: 403, body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`}},
			wantAttempts: 1,
			wantNWaits:   0,
			wantWait:     time.Minute,
			wantIn:       []string{"giving up after 1 attempt: 403 Forbidden: You have exceeded a secondary rate limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, tt.steps...)
			sleep := &fakeSleep{}
			calls := &CallCounter{}
			p := tt.policy
			p.Sleep, p.Now = sleep.Sleep, func() time.Time { return testNow }
			c := tokenClient(t, srv, p, calls)

			_, resp, err := c.PullRequests.Get(context.Background(), "acme", "api", 1)
			if err == nil {
				t.Fatal("Get succeeded, want an error")
			}
			if resp != nil {
				t.Errorf("response = %v, want nil after giving up", resp.Status)
			}
			var re *RetryError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RetryError", err, err)
			}
			if re.Attempts != tt.wantAttempts || calls.Count(prClass) != tt.wantAttempts {
				t.Errorf("attempts = %d, calls = %d, want %d", re.Attempts, calls.Count(prClass), tt.wantAttempts)
			}
			if re.Wait != tt.wantWait {
				t.Errorf("RetryError.Wait = %s, want %s", re.Wait, tt.wantWait)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.steps[0].status {
				t.Errorf("no *StatusError with status %d in %v", tt.steps[0].status, err)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			waits := sleep.Waits()
			if len(waits) != tt.wantNWaits {
				t.Errorf("waits = %v, want %d", waits, tt.wantNWaits)
			}
			if tt.wantWaits != nil && fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tt.wantWaits)
			}
		})
	}
}

func TestRateLimitWaits(t *testing.T) {
	reset := strconv.FormatInt(testNow.Add(5*time.Second).Unix(), 10)
	tests := []struct {
		name   string
		method string
		policy RetryPolicy
		first  step
		want   time.Duration
	}{
		{"429 Retry-After", "GET", RetryPolicy{}, step{status: 429, header: map[string]string{"Retry-After": "2"}}, 2 * time.Second},
		{"429 Retry-After on POST", "POST", RetryPolicy{}, step{status: 429, header: map[string]string{"Retry-After": "2"}}, 2 * time.Second},
		{"secondary 403 Retry-After", "GET", RetryPolicy{}, step{status: 403, header: map[string]string{"Retry-After": "3"}, body: `{"message":"You have exceeded a secondary rate limit."}`}, 3 * time.Second},
		{"secondary 403 Retry-After on POST", "POST", RetryPolicy{}, step{status: 403, header: map[string]string{"Retry-After": "3"}}, 3 * time.Second},
		{"secondary 403 message only", "PATCH", RetryPolicy{MaxWait: 2 * time.Minute}, step{status: 403, body: `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`}, time.Minute},
		{"primary 403 reset", "GET", RetryPolicy{}, step{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}}, 5 * time.Second},
		{"primary 429 reset on POST", "POST", RetryPolicy{}, step{status: 429, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}}, 5 * time.Second},
		{"primary reset in the past waits a second", "GET", RetryPolicy{}, step{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(testNow.Add(-time.Minute).Unix(), 10)}}, time.Second},
		{"503 Retry-After", "GET", RetryPolicy{}, step{status: 503, header: map[string]string{"Retry-After": "7"}}, 7 * time.Second},
		{"Retry-After as HTTP date", "GET", RetryPolicy{}, step{status: 429, header: map[string]string{"Retry-After": testNow.Add(4 * time.Second).Format(http.TimeFormat)}}, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, tt.first, step{status: 200, body: `{}`})
			sleep := &fakeSleep{}
			calls := &CallCounter{}
			p := tt.policy
			p.Sleep, p.Now = sleep.Sleep, func() time.Time { return testNow }
			rt := NewTransport(nil, p, calls, quietLogger())

			req, _ := http.NewRequest(tt.method, srv.URL+"/repos/acme/api/check-runs", strings.NewReader(`{"name":"shipbot/rollout"}`))
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			drainClose(resp.Body)
			if resp.StatusCode != 200 {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if got := sleep.Waits(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("waits = %v, want [%s]", got, tt.want)
			}
			if got := calls.Total(); got != 2 {
				t.Errorf("calls = %d, want 2", got)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		st         step
		wantStatus int
	}{
		{"POST 502", "POST", step{status: 502, body: `{"message":"Server Error"}`}, 502},
		{"PATCH 500", "PATCH", step{status: 500}, 500},
		{"GET 404", "GET", step{status: 404, body: `{"message":"Not Found"}`}, 404},
		{"GET 422", "GET", step{status: 422, body: `{"message":"Validation Failed"}`}, 422},
		{"GET 501", "GET", step{status: 501}, 501},
		{"GET 403 permission", "GET", step{status: 403, body: `{"message":"Resource not accessible by integration"}`}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, tt.st, step{status: 200, body: `{}`})
			sleep := &fakeSleep{}
			calls := &CallCounter{}
			c := tokenClient(t, srv, RetryPolicy{Sleep: sleep.Sleep}, calls)

			req, err := c.NewRequest(tt.method, "repos/acme/api/check-runs", map[string]string{"name": "x"})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(context.Background(), req, nil)
			var er *gh.ErrorResponse
			if !errors.As(err, &er) {
				t.Fatalf("error = %v (%T), want *gh.ErrorResponse passed through", err, err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			// The body was peeked for rate-limit messages; go-github must
			// still see all of it.
			if wantMsg := strings.TrimSuffix(strings.TrimPrefix(tt.st.body, `{"message":"`), `"}`); er.Message != wantMsg {
				t.Errorf("message = %q, want %q", er.Message, wantMsg)
			}
			if calls.Total() != 1 || len(sleep.Waits()) != 0 {
				t.Errorf("calls = %d, waits = %v, want one call and no wait", calls.Total(), sleep.Waits())
			}
		})
	}
}

// failingTransport fails the first n requests with err, then delegates.
type failingTransport struct {
	mu   sync.Mutex
	n    int
	err  error
	next http.RoundTripper
}

func (f *failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, f.err
	}
	return f.next.RoundTrip(req)
}

func TestConnectionErrors(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	resetErr := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name      string
		method    string
		err       error
		wantCalls int
		wantOK    bool
	}{
		{"GET read error retried", "GET", resetErr, 2, true},
		{"PUT unexpected EOF retried", "PUT", io.ErrUnexpectedEOF, 2, true},
		{"POST dial error retried", "POST", dialErr, 2, true},
		{"POST DNS error retried", "POST", &net.DNSError{Err: "no such host", Name: "api.github.com"}, 2, true},
		{"POST read error not retried", "POST", resetErr, 1, false},
		{"PATCH unexpected EOF not retried", "PATCH", io.ErrUnexpectedEOF, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, step{status: 200, body: `{}`})
			sleep := &fakeSleep{}
			calls := &CallCounter{}
			base := &failingTransport{n: 1, err: tt.err, next: http.DefaultTransport}
			rt := NewTransport(base, RetryPolicy{Sleep: sleep.Sleep}, calls, quietLogger())

			req, _ := http.NewRequest(tt.method, srv.URL+"/repos/acme/api/git/refs", strings.NewReader(`{"ref":"refs/tags/v1.0.0"}`))
			resp, err := rt.RoundTrip(req)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				drainClose(resp.Body)
			} else {
				if err == nil {
					drainClose(resp.Body)
					t.Fatal("RoundTrip succeeded, want the connection error")
				}
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), "github "+tt.method+" /repos/{owner}/{repo}/git/refs: ") {
					t.Errorf("error = %v, want it to wrap %v with the endpoint", err, tt.err)
				}
			}
			if calls.Total() != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls.Total(), tt.wantCalls)
			}
		})
	}
}

func TestConnectionErrorGiveUp(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	base := &failingTransport{n: 100, err: refused}
	calls := &CallCounter{}
	rt := NewTransport(base, RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, calls, quietLogger())
	req, _ := http.NewRequest("GET", "http://github.invalid/repos/acme/api/pulls/1", nil)
	_, err := rt.RoundTrip(req)
	want := "github " + prClass + ": giving up after 4 attempts: dial tcp: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if !errors.Is(err, refused) {
		t.Errorf("error does not wrap the cause")
	}
	if got := calls.Snapshot(); got[prClass] != 4 {
		t.Errorf("calls = %v, want 4", got)
	}
}

func TestContextStopsWaiting(t *testing.T) {
	t.Run("cancel during a real sleep", func(t *testing.T) {
		srv := newScriptServer(t, step{status: 429, header: map[string]string{"Retry-After": "20"}})
		calls := &CallCounter{}
		c := tokenClient(t, srv, RetryPolicy{}, calls) // the real sleep
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, _, err := c.PullRequests.Get(ctx, "acme", "api", 1)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s after cancel", d)
		}
		if calls.Total() != 1 {
			t.Errorf("calls = %d, want 1", calls.Total())
		}
	})
	t.Run("deadline before the required wait", func(t *testing.T) {
		srv := newScriptServer(t, step{status: 429, header: map[string]string{"Retry-After": "5"}})
		sleep := &fakeSleep{}
		rt := NewTransport(nil, RetryPolicy{Sleep: sleep.Sleep}, nil, quietLogger())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/repos/acme/api/pulls/1", nil)
		_, err := rt.RoundTrip(req)
		var re *RetryError
		if !errors.As(err, &re) || re.Attempts != 1 || re.Wait != 5*time.Second {
			t.Fatalf("error = %v, want a RetryError after 1 attempt needing 5s", err)
		}
		if !strings.Contains(err.Error(), "past the context deadline") {
			t.Errorf("error %q does not say why", err)
		}
		if len(sleep.Waits()) != 0 {
			t.Errorf("slept %v, want no sleep", sleep.Waits())
		}
	})
}

func TestBodyReplayed(t *testing.T) {
	for _, method := range []string{"PUT", "POST"} {
		t.Run(method, func(t *testing.T) {
			first := step{status: 502}
			if method == "POST" {
				first = step{status: 429, header: map[string]string{"Retry-After": "1"}}
			}
			srv := newScriptServer(t, first, first, step{status: 200, body: `{}`})
			calls := &CallCounter{}
			rt := NewTransport(nil, RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, calls, quietLogger())
			payload := `{"labels":["no-deploy-to-prod"],"big":"` + strings.Repeat("x", 100<<10) + `"}`
			req, _ := http.NewRequest(method, srv.URL+"/repos/acme/api/issues/5/labels", bytes.NewBufferString(payload))
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			drainClose(resp.Body)
			bodies := srv.Bodies()
			if len(bodies) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(bodies))
			}
			for i, b := range bodies {
				if b != payload {
					t.Errorf("attempt %d body differs (%d bytes, want %d)", i+1, len(b), len(payload))
				}
			}
		})
	}
}

func TestBodyNotReplayable(t *testing.T) {
	srv := newScriptServer(t, step{status: 502}, step{status: 200})
	rt := NewTransport(nil, RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, nil, quietLogger())
	req, _ := http.NewRequest("PUT", srv.URL+"/repos/acme/api/contents/a.txt", io.NopCloser(strings.NewReader("data")))
	req.GetBody = nil
	_, err := rt.RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "giving up after 1 attempt: 502 Bad Gateway (request body cannot be replayed)") {
		t.Fatalf("error = %v", err)
	}
}

func TestTransportLogsNoSecrets(t *testing.T) {
	srv := newScriptServer(t, step{status: 502}, step{status: 200, body: `{}`})
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := NewTokenClient(Options{BaseURL: srv.URL, Retry: RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, Logger: log}, "ghs_SECRETTOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PullRequests.Get(context.Background(), "acme", "api", 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "retrying") {
		t.Errorf("no retry log line: %s", buf.String())
	}
	for _, s := range []string{"SECRETTOKEN", "Bearer", "Authorization"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log contains %q: %s", s, buf.String())
		}
	}
}

func TestCallCounter(t *testing.T) {
	var c CallCounter
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Record("GET /test/{id}", "200")
			if i%2 == 0 {
				c.Record("POST /test", "error")
			}
		}()
	}
	wg.Wait()
	if c.Count("GET /test/{id}") != 50 || c.Count("POST /test") != 25 || c.Total() != 75 {
		t.Errorf("counts = %v, total %d", c.Snapshot(), c.Total())
	}
	snap := c.Snapshot()
	snap["GET /test/{id}"] = 0
	if c.Count("GET /test/{id}") != 50 {
		t.Error("Snapshot is not a copy")
	}
	c.Reset()
	if c.Total() != 0 || len(c.Snapshot()) != 0 {
		t.Errorf("after Reset: %v", c.Snapshot())
	}
	var nilCounter *CallCounter
	nilCounter.Record("GET /test/{id}", "200") // must not panic
	if nilCounter.Total() != 0 {
		t.Error("nil counter counts")
	}
}
