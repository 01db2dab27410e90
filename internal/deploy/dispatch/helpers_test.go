package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/deploytest"
	"github.com/shipbot/shipbot/internal/syncbuf"
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

type fixture struct {
	tr     *deploy.Triggerer
	sleeps *deploytest.Sleeps
	logs   *syncbuf.Buffer
}

func newFixture() *fixture {
	f := &fixture{sleeps: &deploytest.Sleeps{}, logs: &syncbuf.Buffer{}}
	drivers := deploy.NewRegistry()
	drivers.Register(Driver{})
	f.tr = &deploy.Triggerer{Drivers: drivers, Env: deploy.Env{
		Retry: deploy.RetryPolicy{
			MaxAttempts: 4, Budget: time.Minute, AttemptTimeout: 5 * time.Second,
			Sleep: f.sleeps.Sleep,
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
