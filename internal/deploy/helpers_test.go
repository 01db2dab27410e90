package deploy

import (
	"bytes"
	"context"
	"sync"
	"time"
)

const testCallback = "https://shipbot.example/api/v1/callbacks/tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"

func testPayload() Payload {
	return Payload{
		Repository: "acme/api", SHA: "0123456789abcdef0123456789abcdef01234567",
		Version: "1.4.2", Tag: "v1.4.2", Stage: "qa", PullRequest: 123,
		RunID: "run-42", Attempt: 1, CallbackURL: testCallback,
	}
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
	tr   *Triggerer
	logs *lockedBuffer
}

// newFixture triggers through shipbot's own kinds, without waiting between
// retries.
func newFixture() *fixture {
	f := &fixture{logs: &lockedBuffer{}}
	f.tr = &Triggerer{Drivers: DriversForTest, Env: Env{
		Retry: RetryPolicy{
			MaxAttempts: 4, Budget: time.Minute, AttemptTimeout: 5 * time.Second,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		},
		Log:     newTestLogger(f.logs),
		Version: "1.2.3",
	}}
	return f
}
