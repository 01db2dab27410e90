package deploy

import (
	"context"
	"time"

	"github.com/shipbot/shipbot/internal/syncbuf"
)

const testCallback = "https://shipbot.example/api/v1/callbacks/tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"

func testPayload() Payload {
	return Payload{
		Repository: "acme/api", SHA: "0123456789abcdef0123456789abcdef01234567",
		Version: "1.4.2", Tag: "v1.4.2", Stage: "qa", PullRequest: 123,
		RunID: "run-42", Attempt: 1, CallbackURL: testCallback,
	}
}

type fixture struct {
	tr   *Triggerer
	logs *syncbuf.Buffer
}

// newFixture triggers through shipbot's own kinds, without waiting between
// retries.
func newFixture() *fixture {
	f := &fixture{logs: &syncbuf.Buffer{}}
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
