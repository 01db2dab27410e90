package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/config"
)

// probe is a kind whose every answer the test sets.
type probe struct {
	name    string
	keys    []string
	learns  Learning
	status  Status
	err     error
	overdue string
}

func (k probe) Kind() string                        { return k.name }
func (k probe) Keys() []string                      { return k.keys }
func (probe) ReadSettings(*config.Section) any      { return nil }
func (k probe) Learns(*Env, config.Target) Learning { return k.learns }
func (probe) Trigger(context.Context, *Env, config.Target, Payload) (Result, error) {
	return Result{Attempts: 1}, nil
}

// poller is a probe that polls.
type poller struct{ probe }

func (poller) Polls() string { return "probe runs" }
func (k poller) Poll(context.Context, *Env, config.Target, Check) (Status, error) {
	return k.status, k.err
}
func (k poller) Overdue(config.Target, Check) string { return k.overdue }

func TestRegisterRefusesClashes(t *testing.T) {
	for name, d := range map[string]Driver{
		"twice":          probe{name: "webhook"},
		"a common key":   probe{name: "new", keys: []string{"repos"}},
		"an invalid key": probe{name: "new", keys: []string{""}},
		"a bad name":     probe{name: "two words"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			r := NewRegistry()
			r.Register(probe{name: "webhook", keys: []string{"url", "signing_secret"}})
			r.Register(d)
		}()
	}
}

func TestLearns(t *testing.T) {
	r := NewRegistry()
	r.Register(probe{name: "hook", learns: ByCallback})
	r.Register(probe{name: "fire-and-forget", learns: Never})
	r.Register(probe{name: "claims-to-poll", learns: ByPolling}) // but is no Poller
	r.Register(poller{probe{name: "polled", learns: ByPolling}})
	tr := &Triggerer{Drivers: r}
	for kind, want := range map[string]Learning{
		"hook": ByCallback, "fire-and-forget": Never, "claims-to-poll": ByCallback, "polled": ByPolling,
		"unknown": ByCallback,
	} {
		if got := tr.Learns(config.Target{Kind: kind}); got != want {
			t.Errorf("Learns(%s) = %s, want %s", kind, got, want)
		}
	}
	if got := (&Triggerer{}).Learns(config.Target{Kind: "hook"}); got != ByCallback {
		t.Errorf("without drivers: Learns = %s", got)
	}
}

// A permanent poll error says that polling stopped; the execution keeps
// that text, and the timeout quotes it rather than the driver's account.
func TestPollStoppedAndOverdue(t *testing.T) {
	const secret = "probe-S3CRET-99"
	failing := poller{probe{name: "polled", learns: ByPolling, overdue: "run 7 still running",
		err: &Error{Op: "poll probe runs for p", Permanent: true, Msg: "403 Forbidden: token " + secret}}}
	r := NewRegistry()
	r.Register(failing)
	r.Register(probe{name: "hook"})
	tr := &Triggerer{Drivers: r}
	tgt := config.Target{Name: "p", Kind: "polled", Constraints: map[string]string{"k": secret}}

	_, err := tr.Poll(context.Background(), tgt, Check{})
	const want = "probe runs polling stopped: poll probe runs for p: 403 Forbidden: token [REDACTED]"
	if err == nil || err.Error() != want || !IsPermanent(err) {
		t.Fatalf("Poll: %v; want a permanent %q", err, want)
	}
	if got := tr.Overdue(tgt, Check{}, err.Error()); got != want {
		t.Errorf("Overdue after the stop = %q, want the stop", got)
	}
	if got := tr.Overdue(tgt, Check{}, "trigger not accepted yet: 503"); got != "run 7 still running" {
		t.Errorf("Overdue = %q, want the driver's", got)
	}
	hook := config.Target{Name: "h", Kind: "hook"}
	if got := tr.Overdue(hook, Check{}, ""); got != "" {
		t.Errorf("Overdue of a callback-only target = %q", got)
	}
	if _, err := tr.Poll(context.Background(), hook, Check{}); !IsPermanent(err) {
		t.Errorf("Poll of a callback-only target: %v", err)
	}

	// A transient error is no news, and says nothing of stopping.
	failing.err = &Error{Op: "poll probe runs for p", Msg: "502"}
	r2 := NewRegistry()
	r2.Register(failing)
	_, err = (&Triggerer{Drivers: r2}).Poll(context.Background(), tgt, Check{})
	var e *Error
	if !errors.As(err, &e) || IsPermanent(err) || strings.Contains(err.Error(), "stopped") {
		t.Errorf("transient: %v", err)
	}
}

// A driver's error that is not an *Error (against the contract) is
// scrubbed all the same.
func TestDriverSlipIsScrubbed(t *testing.T) {
	const secret = "slip-S3CRET-12"
	r := NewRegistry()
	r.Register(poller{probe{name: "polled", learns: ByPolling, err: errors.New("GET https://x/?key=" + secret + ": 500")}})
	tgt := config.Target{Name: "p", Kind: "polled", Constraints: map[string]string{"k": secret}}
	_, err := (&Triggerer{Drivers: r}).Poll(context.Background(), tgt, Check{})
	var e *Error
	if !errors.As(err, &e) || strings.Contains(err.Error(), secret) || errors.Unwrap(err) != nil || IsPermanent(err) {
		t.Errorf("err = %v (%T); want a transient *Error without the secret or a cause", err, err)
	}
}
