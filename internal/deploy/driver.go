package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/config"
)

// Driver is one kind of target. It reads its keys of the targets file,
// triggers a deploy, and says how the deploy's outcome reaches shipbot.
// Each kind is a package under internal/deploy; internal/deploy/drivers
// registers them.
type Driver interface {
	// Kind, Keys and ReadSettings: the kind's name and its keys of a
	// target's entry, read and checked when the targets file is.
	config.TargetKind
	// Trigger sends p to t. The Triggerer has already checked that t's
	// variables are set and that p has every field its idempotency key
	// needs, and scrubs the error's text of every secret. A nil error
	// means the downstream accepted the trigger, not that it deployed. An
	// error is an *Error (IsPermanent, ErrExhausted: see Error) or the
	// context's.
	Trigger(ctx context.Context, env *Env, t config.Target, p Payload) (Result, error)
	// Learns says how the outcome of a deploy to t reaches shipbot
	// (ByPolling only for a Poller).
	Learns(env *Env, t config.Target) Learning
}

// Learning is how shipbot learns the outcome of a deploy.
type Learning int

const (
	// ByCallback: the downstream POSTs it to the payload's callback_url;
	// without a report by the stage's timeout, the stage fails.
	ByCallback Learning = iota
	// ByPolling: the driver's Poll asks for it (a Spinnaker execution, a
	// dispatched workflow run); a callback may still come first.
	ByPolling
	// Never: nothing will tell. The stage passes once the trigger is
	// accepted, and the downstream owns the outcome ("handed off").
	Never
)

func (l Learning) String() string {
	switch l {
	case ByCallback:
		return "callback"
	case ByPolling:
		return "polling"
	case Never:
		return "never"
	}
	return fmt.Sprintf("Learning(%d)", int(l))
}

// Poller is a Driver that can ask how a deploy it triggered is going, for
// the targets where its Learns says ByPolling.
type Poller interface {
	Driver
	// Polls names what Poll follows, for logs and reasons ("workflow
	// run").
	Polls() string
	// Poll asks once how the deploy of c is going. It does not retry:
	// the engine polls on its own schedule, and takes an error for no news
	// unless IsPermanent, which stops the polling of that execution (a
	// callback or the timeout ends it then).
	Poll(ctx context.Context, env *Env, t config.Target, c Check) (Status, error)
	// Overdue explains what polling found out by the time the stage's
	// timeout ran out without an outcome (c as the last poll left it), for
	// the stage's reason; "" adds nothing.
	Overdue(t config.Target, c Check) string
}

// Check is what a Poller is told about one triggered execution.
type Check struct {
	// Payload names the execution: Repository, RunID, Stage and Attempt,
	// and so its IdempotencyKey, are set; the other fields may not be.
	Payload Payload
	// Ref is what the trigger (Result.EventID) or an earlier poll
	// (Status.Ref) left to find the deploy by: Echo's event id, the
	// dispatched workflow run's id. Empty when there is none.
	Ref string
	// Began is when the execution began, Triggered when its trigger was
	// accepted, Now the engine's clock.
	Began, Triggered, Now time.Time
}

// Status is what one poll found.
type Status struct {
	// State is StatePending while nothing is known of the deploy.
	State State
	// Ref, when set, is what later polls find the deploy by (Check.Ref):
	// the workflow run found, say.
	Ref string
	// URL, when set, is the deploy's page, which the pull request links.
	URL string
	// Reason says why a StateFailed deploy failed.
	Reason string
	// Wait, when longer than the engine's polling interval, is how long
	// the next poll should wait: there is no hurry.
	Wait time.Duration
}

// State is what a poll says about a deploy.
type State string

const (
	// StatePending: nothing is known of the deploy yet. Echo starts
	// pipelines asynchronously, and an event that matched no pipeline
	// (wrong constraint secret, say) stays pending forever, so the
	// stage's timeout is what ends it.
	StatePending   State = "pending"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// Registry maps kind names to their drivers. Register every driver before
// the registry is used: then it is only read, by concurrent triggers and
// polls.
type Registry struct {
	kinds   config.Kinds
	drivers map[string]Driver
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{drivers: map[string]Driver{}} }

// Register adds d. It panics when d's kind is registered already or d is
// unfit (config.CheckKind): a programming error, which shows at start.
func (r *Registry) Register(d Driver) {
	if err := config.CheckKind(d); err != nil {
		panic("deploy: register: " + err.Error())
	}
	if _, dup := r.drivers[d.Kind()]; dup {
		panic(fmt.Sprintf("deploy: register: target kind %q registered twice", d.Kind()))
	}
	r.drivers[d.Kind()] = d
	r.kinds = append(r.kinds, d)
}

// Driver returns the driver of kind; a nil registry has none.
func (r *Registry) Driver(kind string) (Driver, bool) {
	if r == nil {
		return nil, false
	}
	d, ok := r.drivers[kind]
	return d, ok
}

// Kinds are the registered kinds in the order they were registered, for
// config.ParseTargets.
func (r *Registry) Kinds() config.Kinds {
	if r == nil {
		return nil
	}
	return r.kinds
}
