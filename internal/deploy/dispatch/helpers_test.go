package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

const (
	testSecret   = "s3cr3t"
	testCallback = "https://shipbot.example/api/v1/callbacks/tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
)

func testPayload() deploy.Payload {
	return deploy.Payload{
		Repository: "acme/api", SHA: "0123456789abcdef0123456789abcdef01234567",
		Version: "1.4.2", Tag: "v1.4.2", Stage: "qa", PullRequest: 123,
		RunID: "run-42", Attempt: 1, CallbackURL: testCallback,
	}
}

// sleepRecorder replaces real waits: tests assert the waits asked for
// and stay fast.
type sleepRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

// lockedBuffer collects log output written from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	tr     *deploy.Triggerer
	sleeps *sleepRecorder
	logs   *lockedBuffer
}

func newFixture() *fixture {
	f := &fixture{sleeps: &sleepRecorder{}, logs: &lockedBuffer{}}
	drivers := deploy.NewRegistry()
	drivers.Register(Driver{})
	f.tr = &deploy.Triggerer{Drivers: drivers, Env: deploy.Env{
		Retry: deploy.RetryPolicy{
			MaxAttempts: 4, Budget: time.Minute, AttemptTimeout: 5 * time.Second,
			Sleep: f.sleeps.sleep,
			Rand:  func(n time.Duration) time.Duration { return n }, // the ceiling, deterministically
		},
		Log:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version: "1.2.3",
	}}
	return f
}

// PollDispatch follows the workflow run as the driver's Poll does, and
// says all it found.
func (f *fixture) PollDispatch(ctx context.Context, t config.Target, p deploy.Payload, since time.Time, runID int64) (WorkflowRun, error) {
	return Driver{}.followRun(ctx, &f.tr.Env, t, p, since, runID)
}
