package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/metrics"
	"github.com/shipbot/shipbot/internal/store"
)

// Handler acts on the deliveries of some events. One handler per concern,
// each saying which events it takes, in the manner of go-githubapp.
type Handler interface {
	// Handles lists the keys it takes: "event" for every action of an event,
	// or "event.action" for one action.
	Handles() []string
	Handle(ctx context.Context, d store.Delivery) error
}

// Dispatcher routes a delivery to the handler registered for it.
type Dispatcher struct {
	byKey map[string]Handler
}

// NewDispatcher registers handlers; two handlers claiming one key is a
// wiring mistake and an error.
func NewDispatcher(hs ...Handler) (*Dispatcher, error) {
	d := &Dispatcher{byKey: map[string]Handler{}}
	for _, h := range hs {
		for _, k := range h.Handles() {
			if _, dup := d.byKey[k]; dup {
				return nil, fmt.Errorf("two handlers for %q", k)
			}
			d.byKey[k] = h
		}
	}
	return d, nil
}

func (d *Dispatcher) handler(event, action string) Handler {
	if h, ok := d.byKey[event+"."+action]; ok {
		return h
	}
	return d.byKey[event]
}

// Wants reports whether a handler takes the event and action.
func (d *Dispatcher) Wants(event, action string) bool { return d.handler(event, action) != nil }

// Keys lists the registered keys, sorted, for logs and docs.
func (d *Dispatcher) Keys() []string {
	ks := make([]string, 0, len(d.byKey))
	for k := range d.byKey {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Dispatch hands d to its handler.
func (d *Dispatcher) Dispatch(ctx context.Context, del store.Delivery) error {
	h := d.handler(del.Event, del.Action)
	if h == nil {
		return Permanent(fmt.Errorf("no handler for %s.%s", del.Event, del.Action))
	}
	return h.Handle(ctx, del)
}

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent marks an error that retrying cannot fix (a payload the handler
// cannot use): the delivery fails at once instead of backing off.
func Permanent(err error) error { return permanent{err} }

// later is Later's answer.
type later struct{ at time.Time }

func (l later) Error() string { return "deferred until " + l.at.Format(time.RFC3339Nano) }

// Later is a handler's answer for a delivery it will act on, but not yet:
// the worker puts it back in the inbox until at, as it does a delivery to
// retry, without calling it a failure. It is durable (a restart, or
// another replica, takes the delivery up at at), which a timer in the
// handler would not be; the attempt counts towards MaxAttempts.
func Later(at time.Time) error { return later{at} }

// Lane is a part of the inbox that a goroutine of the worker drains on its
// own, beside the other lanes, so that a flood of one kind of delivery
// cannot hold up another.
type Lane struct {
	Name string
	// Events are the events (X-GitHub-Event) the lane takes. Empty means
	// every event no other lane names; exactly one lane is such.
	Events []string
}

// DefaultLanes give /shipbot commands (issue_comment deliveries) a lane of
// their own: 150 commands in the inbox once held a merge's release up for
// 70 s, one after the other in a single queue. Within a lane deliveries
// still go one at a time in arrival order; merges and pushes share the main
// lane, which keeps their relative order. Check results (a busy CI sends
// one per check, per commit) refresh previews in a lane of their own too:
// they must never hold a merge up.
var DefaultLanes = []Lane{{Name: "main"}, {Name: "commands", Events: []string{"issue_comment"}},
	{Name: "checks", Events: []string{"check_suite", "check_run", "status"}}}

// Worker drains the inbox. Deliveries are claimed with a short lease that
// the worker renews while it holds them, so a worker that dies
// mid-delivery delays it only until the lease runs out (seconds), however
// long a delivery may take, and several replicas can share one database.
type Worker struct {
	Inbox    store.Inbox
	Dispatch func(context.Context, store.Delivery) error
	Owner    string
	Log      *slog.Logger

	// Lanes split the inbox between goroutines; nil means DefaultLanes.
	Lanes []Lane

	Lease       time.Duration // default DefaultClaim; renewed every third of it
	Poll        time.Duration // how often to look without a wake-up; default 1s
	Batch       int           // default 16
	MaxAttempts int           // default 5
	// HandleTimeout bounds one delivery's processing; default 1m.
	HandleTimeout time.Duration
	// Backoff is how long a delivery waits after its attempt-th attempt
	// failed; nil means 2^attempt seconds, at most 5 minutes.
	Backoff func(attempt int) time.Duration

	once    sync.Once
	lanes   []*lane
	laneErr error
}

// DefaultClaim is how long a claim on a delivery lasts unless renewed:
// another replica takes a dead worker's deliveries over this long after
// its last renewal.
const DefaultClaim = 10 * time.Second

// lane is a Lane as the worker runs it.
type lane struct {
	name   string
	filter store.EventFilter
	wake   chan struct{}
}

func (w *Worker) init() {
	w.once.Do(func() {
		if w.Lease == 0 {
			w.Lease = DefaultClaim
		}
		if w.Poll == 0 {
			w.Poll = time.Second
		}
		if w.Batch == 0 {
			w.Batch = 16
		}
		if w.MaxAttempts == 0 {
			w.MaxAttempts = 5
		}
		if w.HandleTimeout == 0 {
			w.HandleTimeout = time.Minute
		}
		if w.Backoff == nil {
			w.Backoff = backoff
		}
		lanes := w.Lanes
		if lanes == nil {
			lanes = DefaultLanes
		}
		w.lanes, w.laneErr = planLanes(lanes)
	})
}

// planLanes turns lanes into claim filters: each named set on its own, and
// the one lane without events taking everything the others do not.
func planLanes(lanes []Lane) ([]*lane, error) {
	var named []string
	rest := -1
	owner := map[string]string{}
	for i, l := range lanes {
		if len(l.Events) == 0 {
			if rest >= 0 {
				return nil, fmt.Errorf("lanes %q and %q both take every other event", lanes[rest].Name, l.Name)
			}
			rest = i
		}
		for _, e := range l.Events {
			if o, dup := owner[e]; dup {
				return nil, fmt.Errorf("event %q is in lanes %q and %q", e, o, l.Name)
			}
			owner[e] = l.Name
			named = append(named, e)
		}
	}
	if rest < 0 {
		// Deliveries of other events would wait in the inbox forever.
		return nil, errors.New("no lane takes the events the others do not name")
	}
	out := make([]*lane, len(lanes))
	for i, l := range lanes {
		f := store.EventFilter{Only: l.Events}
		if i == rest {
			f = store.EventFilter{Except: named}
		}
		out[i] = &lane{name: l.Name, filter: f, wake: make(chan struct{}, 1)}
	}
	return out, nil
}

// Wake makes every lane look at the inbox now; it never blocks.
func (w *Worker) Wake() {
	w.init()
	for _, l := range w.lanes {
		l.nudge()
	}
}

// WakeFor makes the lane that takes event look at the inbox now: a new
// delivery wakes its own lane only, not the others to an empty claim.
func (w *Worker) WakeFor(event string) {
	w.init()
	for _, l := range w.lanes {
		if l.filter.Takes(event) {
			l.nudge()
		}
	}
}

func (l *lane) nudge() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run drains the inbox, each lane on its own goroutine, until ctx ends. A
// delivery already being processed when ctx ends is finished (with its own
// timeout), not abandoned, so a SIGTERM does not leave half-done work
// behind.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	if w.laneErr != nil {
		w.Log.Error("worker lanes", "err", w.laneErr)
		return w.laneErr
	}
	var wg sync.WaitGroup
	for _, l := range w.lanes {
		wg.Go(func() { w.runLane(ctx, l) })
	}
	wg.Wait()
	return nil
}

func (w *Worker) runLane(ctx context.Context, l *lane) {
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		if err := w.drain(ctx, l); err != nil && ctx.Err() == nil {
			w.Log.Error("drain inbox", "lane", l.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-t.C:
		}
	}
}

// drain processes the lane's claimed batches until it has nothing
// claimable.
func (w *Worker) drain(ctx context.Context, l *lane) error {
	for ctx.Err() == nil {
		ds, err := w.Inbox.ClaimDeliveries(context.WithoutCancel(ctx), w.Owner, w.Lease, w.Batch, l.filter)
		if err != nil {
			return err
		}
		w.batch(ctx, l, ds)
		if n, err := w.Inbox.InboxDepth(context.WithoutCancel(ctx)); err == nil {
			metrics.InboxDepth.Set(float64(n))
		}
		if len(ds) < w.Batch {
			return nil
		}
	}
	return nil
}

// batch processes claimed deliveries in order, renewing the claims on
// those not yet finished while it works.
func (w *Worker) batch(ctx context.Context, l *lane, ds []store.Delivery) {
	if len(ds) == 0 {
		return
	}
	held := &claims{ids: map[string]bool{}}
	for _, d := range ds {
		held.ids[d.ID] = true
	}
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		w.renew(ctx, held, stop)
	}()
	defer func() {
		close(stop)
		<-renewed
	}()
	for i, d := range ds {
		if ctx.Err() != nil {
			// Give back what we hold but have not started, so a
			// restart (or another replica) need not wait for the claim.
			for _, rest := range ds[i:] {
				if err := w.Inbox.FinishDelivery(context.WithoutCancel(ctx), rest.ID, store.StatusPending, rest.LastError, time.Time{}); err != nil {
					w.Log.Warn("release delivery", "delivery", rest.ID, "err", err)
				}
			}
			return
		}
		if !held.has(d.ID) {
			// The claim lapsed (the database was out of reach for longer
			// than it lasts) and another worker may have the delivery now.
			w.Log.Warn("claim on delivery lost before it was processed; leaving it to its new holder", "delivery", d.ID)
			continue
		}
		w.process(ctx, l, d)
		held.drop(d.ID)
	}
}

// claims are the deliveries of a batch still held.
type claims struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (c *claims) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id]
}

func (c *claims) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ids, id)
}

func (c *claims) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.ids))
	for id := range c.ids {
		out = append(out, id)
	}
	return out
}

// renew extends the claims held every third of the claim's length until
// stop closes.
func (w *Worker) renew(ctx context.Context, held *claims, stop <-chan struct{}) {
	t := time.NewTicker(w.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ids := held.list()
		lost, err := w.Inbox.RenewClaims(context.WithoutCancel(ctx), w.Owner, ids, w.Lease)
		if err != nil {
			w.Log.Warn("renew delivery claims", "deliveries", len(ids), "err", err)
			continue
		}
		for _, id := range lost {
			held.drop(id)
		}
	}
}

// process runs one delivery and records the outcome. A failure that will
// be retried is a warning; the one that ends the delivery is an error,
// logged once with all an operator needs to find it, and counted.
func (w *Worker) process(ctx context.Context, l *lane, d store.Delivery) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.HandleTimeout)
	defer cancel()
	log := w.Log.With("lane", l.name, "delivery", d.ID, "event", d.Event, "action", d.Action, "repo", d.Repo)
	err := w.safeDispatch(hctx, d)
	status, msg, retryAt := store.StatusDone, "", time.Time{}
	perm := errors.As(err, new(permanent))
	var deferred later
	switch {
	case err == nil:
		log.Info("delivery processed", "attempt", d.Attempts)
	case errors.As(err, &deferred):
		status, retryAt = store.StatusPending, deferred.at
		log.Debug("delivery deferred", "attempt", d.Attempts, "until", deferred.at)
	case perm || d.Attempts >= w.MaxAttempts:
		status, msg = store.StatusFailed, err.Error()
		metrics.DeliveriesFailed.WithLabelValues(d.Event).Inc()
		log.Error("delivery failed for good", "attempts", d.Attempts, "permanent", perm, "err", err)
	default:
		status, msg = store.StatusPending, err.Error()
		retryAt = time.Now().Add(w.Backoff(d.Attempts))
		log.Warn("delivery will be retried", "attempt", d.Attempts, "max_attempts", w.MaxAttempts, "err", err, "retry_at", retryAt)
	}
	if err := w.Inbox.FinishDelivery(context.WithoutCancel(ctx), d.ID, status, msg, retryAt); err != nil {
		log.Error("record delivery outcome", "status", status, "err", err)
	}
}

// safeDispatch turns a handler panic into a failed attempt rather than a
// dead worker.
func (w *Worker) safeDispatch(ctx context.Context, d store.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return w.Dispatch(ctx, d)
}

// backoff is 2^attempt seconds, capped at 5 minutes.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 9)
	return min(d, 5*time.Minute)
}
