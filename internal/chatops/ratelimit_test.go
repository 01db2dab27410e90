package chatops_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/chatops"
)

// clock is a settable time for limiters.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiter(t *testing.T) {
	const (
		A = chatops.Allowed
		R = chatops.Refused
		D = chatops.Dropped
	)
	type step struct {
		wait        time.Duration // before the command
		repo, login string
		want        chatops.Verdict
	}
	burst := func(n int, repo, login string, want chatops.Verdict) []step {
		return slices.Repeat([]step{{0, repo, login, want}}, n)
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"five at once, then one refusal, then silence", slices.Concat(
			burst(5, "acme/api", "rita", A),
			burst(1, "acme/api", "rita", R),
			burst(20, "acme/api", "rita", D),
		)},
		{"the allowance grows by one every 12s, without a second refusal", slices.Concat(
			burst(5, "acme/api", "rita", A),
			burst(2, "acme/api", "rita", R)[:1], burst(1, "acme/api", "rita", D),
			[]step{{12 * time.Second, "acme/api", "rita", A}},
			burst(3, "acme/api", "rita", D),
			[]step{{11 * time.Second, "acme/api", "rita", D}, {time.Second, "acme/api", "rita", A}},
		)},
		{"a pause of a minute starts a new burst, with its own refusal", slices.Concat(
			burst(5, "acme/api", "rita", A),
			burst(1, "acme/api", "rita", R),
			[]step{{time.Minute, "acme/api", "rita", A}},
			burst(4, "acme/api", "rita", A),
			burst(1, "acme/api", "rita", R),
			burst(1, "acme/api", "rita", D),
		)},
		{"per user and per repository, without case", slices.Concat(
			burst(5, "acme/api", "rita", A),
			burst(1, "ACME/Api", "Rita", R),
			burst(5, "acme/api", "wendy", A),
			burst(5, "acme/web", "rita", A),
			burst(1, "acme/web", "rita", R),
			burst(1, "acme/api", "wendy", R),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			l := &chatops.Limiter{Now: c.now}
			for i, s := range tc.steps {
				c.advance(s.wait)
				if got := l.Admit(s.repo, s.login); got != s.want {
					t.Fatalf("command %d (%s on %s after %s): %s; want %s", i+1, s.login, s.repo, s.wait, got, s.want)
				}
			}
		})
	}
}

func TestLimiterRefusalText(t *testing.T) {
	got := (&chatops.Limiter{}).RefusalText()
	for _, want := range []string{"5 at once", "one every 12 seconds", "pause for a minute", "did not run"} {
		if !strings.Contains(got, want) {
			t.Errorf("refusal %q does not say %q", got, want)
		}
	}
}
