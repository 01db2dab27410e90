package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shipbot/shipbot/internal/metrics"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

func openInbox(t *testing.T) *store.SQLite {
	t.Helper()
	s := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { s.Close() })
	return s
}

func save(t *testing.T, s store.Inbox, id, event, action string) {
	t.Helper()
	if _, err := s.SaveDelivery(context.Background(), store.Delivery{
		ID: id, Event: event, Action: action, Repo: "acme/api", Payload: []byte(`{}`), Status: store.StatusPending,
	}); err != nil {
		t.Fatal(err)
	}
}

// funcHandler is a fake handler for some events.
type funcHandler struct {
	keys []string
	fn   func(context.Context, store.Delivery) error
}

func (h funcHandler) Handles() []string { return h.keys }
func (h funcHandler) Handle(ctx context.Context, d store.Delivery) error {
	return h.fn(ctx, d)
}

// run starts w and returns a function that stops it and waits for it.
func run(t *testing.T, w *webhook.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// A flood of /shipbot commands in the inbox must not delay a merge behind
// them (issue 10: 150 comments held a release up from 1.4 s to 72.6 s). The
// command handler here never finishes its first command until the test
// ends; the merge must be handled all the same.
func TestCommandsNeverDelayMerges(t *testing.T) {
	s := openInbox(t)
	const flood = 150
	for i := range flood {
		save(t, s, fmt.Sprint("cmd-", i), "issue_comment", "created")
	}
	save(t, s, "merge", "pull_request", "closed")

	release := make(chan struct{})
	var mu sync.Mutex
	commandsStarted := 0
	commands := funcHandler{[]string{"issue_comment"}, func(ctx context.Context, _ store.Delivery) error {
		mu.Lock()
		commandsStarted++
		mu.Unlock()
		<-release
		return nil
	}}
	merged := make(chan string, 1)
	merges := funcHandler{[]string{"pull_request.closed"}, func(_ context.Context, d store.Delivery) error {
		merged <- d.ID
		return nil
	}}
	disp, err := webhook.NewDispatcher(commands, merges)
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook.Worker{Inbox: s, Dispatch: disp.Dispatch, Owner: "t", Log: slog.New(slog.DiscardHandler), Poll: time.Hour}
	stop := run(t, w)
	defer func() { close(release); stop() }()

	select {
	case id := <-merged:
		if id != "merge" {
			t.Fatalf("merge handler got %s", id)
		}
	case <-time.After(10 * time.Second): // a deadline, not a pace: the merge comes at once or never
		t.Fatal("the merge was not handled while commands were in the inbox before it")
	}
	mu.Lock()
	defer mu.Unlock()
	if commandsStarted > 1 {
		t.Errorf("%d commands handled before the merge; want it not to wait for them", commandsStarted)
	}
}

// Commands still run one at a time, in arrival order, in their own lane,
// and everything else (merges and pushes) in order in the main lane.
func TestLanesKeepArrivalOrder(t *testing.T) {
	s := openInbox(t)
	events := []string{"issue_comment", "push", "pull_request", "issue_comment", "push", "issue_comment"}
	for i, ev := range events {
		save(t, s, fmt.Sprint("d", i), ev, "closed")
	}
	var mu sync.Mutex
	seen := map[string][]string{}
	inFlight := map[string]int{}
	all := make(chan struct{})
	record := func(lane string) func(context.Context, store.Delivery) error {
		return func(_ context.Context, d store.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if inFlight[lane]++; inFlight[lane] > 1 {
				t.Errorf("two %s deliveries at once", lane)
			}
			seen[lane] = append(seen[lane], d.ID)
			if len(seen["commands"])+len(seen["main"]) == len(events) {
				close(all)
			}
			inFlight[lane]--
			return nil
		}
	}
	disp, err := webhook.NewDispatcher(
		funcHandler{[]string{"issue_comment"}, record("commands")},
		funcHandler{[]string{"push", "pull_request"}, record("main")},
	)
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook.Worker{Inbox: s, Dispatch: disp.Dispatch, Owner: "t", Log: slog.New(slog.DiscardHandler), Poll: time.Hour}
	stop := run(t, w)
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("not every delivery was handled")
	}
	stop()
	if got := fmt.Sprint(seen); got != "map[commands:[d0 d3 d5] main:[d1 d2 d4]]" {
		t.Errorf("handled %s; want each lane in arrival order", got)
	}
}

func TestWorkerRejectsBadLanes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lanes []webhook.Lane
		want  string
	}{
		{"event in two lanes", []webhook.Lane{{Name: "main"}, {Name: "a", Events: []string{"push"}}, {Name: "b", Events: []string{"push"}}}, `"push" is in lanes "a" and "b"`},
		{"two catch-all lanes", []webhook.Lane{{Name: "main"}, {Name: "other"}}, "both take every other event"},
		{"no catch-all lane", []webhook.Lane{{Name: "a", Events: []string{"push"}}}, "no lane takes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &webhook.Worker{Lanes: tc.lanes, Log: slog.New(slog.DiscardHandler)}
			if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// finishes tells of each recorded outcome.
type finishes struct {
	store.Inbox
	ch chan string // "id status"
}

func (f finishes) FinishDelivery(ctx context.Context, id, status, lastError string, retryAt time.Time) error {
	err := f.Inbox.FinishDelivery(ctx, id, status, lastError, retryAt)
	f.ch <- id + " " + status
	return err
}

// A delivery whose retries run out is visible: counted once in
// shipbot_webhook_deliveries_failed_total, and one error line in the log
// (the retries before it are warnings) that says which delivery, event,
// repository, how many attempts and the last error.
func TestFailedDeliveryIsCountedAndLoggedOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		attempts int
	}{
		{"retries exhausted", errors.New("GET https://api.github.com/repos/acme/api/pulls/7: dial tcp: connection refused"), 5},
		{"permanent", webhook.Permanent(errors.New("decode pull_request delivery: unexpected end of JSON input")), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openInbox(t)
			in := finishes{Inbox: s, ch: make(chan string, 16)}
			save(t, s, "d-77", "pull_request", "closed")
			disp, err := webhook.NewDispatcher(funcHandler{[]string{"pull_request"}, func(context.Context, store.Delivery) error {
				return tc.err
			}})
			if err != nil {
				t.Fatal(err)
			}
			logs := servicetest.NewLogBuffer(t, 0)
			w := &webhook.Worker{Inbox: in, Dispatch: disp.Dispatch, Owner: "t", Poll: time.Hour,
				Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Backoff: func(int) time.Duration { return 0 }} // retry at once; the test need not wait
			counter := metrics.DeliveriesFailed.WithLabelValues("pull_request")
			before := testutil.ToFloat64(counter)

			stop := run(t, w)
			for i := 1; ; i++ {
				var got string
				select {
				case got = <-in.ch:
				case <-time.After(10 * time.Second):
					t.Fatalf("attempt %d not recorded", i)
				}
				if got == "d-77 "+store.StatusFailed {
					if i != tc.attempts {
						t.Errorf("failed after %d attempts; want %d", i, tc.attempts)
					}
					break
				}
				if i >= tc.attempts {
					t.Fatalf("attempt %d recorded %q; want failed", i, got)
				}
				w.Wake() // the retry is due now; the poll is an hour away
			}
			stop()

			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("shipbot_webhook_deliveries_failed_total{event=pull_request} grew by %v; want 1", got)
			}
			var errorLines, warnLines []string
			for l := range strings.Lines(logs.String()) {
				switch {
				case strings.Contains(l, "level=ERROR"):
					errorLines = append(errorLines, l)
				case strings.Contains(l, "level=WARN"):
					warnLines = append(warnLines, l)
				}
			}
			if len(errorLines) != 1 {
				t.Fatalf("%d error lines; want exactly one:\n%s", len(errorLines), logs.String())
			}
			for _, want := range []string{"delivery=d-77", "event=pull_request", "repo=acme/api",
				fmt.Sprintf("attempts=%d", tc.attempts), "connection refused"} {
				if tc.attempts == 1 && want == "connection refused" {
					want = "unexpected end of JSON input"
				}
				if !strings.Contains(errorLines[0], want) {
					t.Errorf("error line %q does not say %s", errorLines[0], want)
				}
			}
			if len(warnLines) != tc.attempts-1 {
				t.Errorf("%d warnings; want one per retried attempt (%d):\n%s", len(warnLines), tc.attempts-1, logs.String())
			}
		})
	}
}

// claimCounter counts each lane's claims of the inbox it wraps.
type claimCounter struct {
	store.Inbox
	mu     sync.Mutex
	claims map[string]int // by the filter's first Only event, "" for the rest
}

func (c *claimCounter) ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, limit int, f store.EventFilter) ([]store.Delivery, error) {
	c.mu.Lock()
	key := ""
	if len(f.Only) > 0 {
		key = f.Only[0]
	}
	c.claims[key]++
	c.mu.Unlock()
	return c.Inbox.ClaimDeliveries(ctx, owner, lease, limit, f)
}

func (c *claimCounter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims[key]
}

// A delivery wakes its own lane only: waking the others would cost each
// an empty claim (a query on the database's writer) per delivery.
func TestWakeForWakesTheEventsLaneOnly(t *testing.T) {
	in := &claimCounter{Inbox: openInbox(t), claims: map[string]int{}}
	disp, err := webhook.NewDispatcher(funcHandler{keys: []string{"issue_comment", "push"}, fn: func(context.Context, store.Delivery) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook.Worker{Inbox: in, Dispatch: disp.Dispatch, Owner: "t", Log: slog.New(slog.DiscardHandler), Poll: time.Hour}
	stop := run(t, w)
	defer stop()
	eventually(t, "both lanes looked once at start", func() bool { return in.count("") == 1 && in.count("issue_comment") == 1 })
	w.WakeFor("issue_comment")
	eventually(t, "the commands lane looked again", func() bool { return in.count("issue_comment") == 2 })
	w.WakeFor("push")
	eventually(t, "the main lane looked again", func() bool { return in.count("") == 2 })
	if n := in.count("issue_comment"); n != 2 {
		t.Errorf("the commands lane claimed %d times; a push must not wake it", n)
	}
}

var eventually = servicetest.Wait{Limit: 10 * time.Second, Interval: 5 * time.Millisecond}.Eventually

// A delivery that takes longer than the claim lasts stays with the worker
// that holds it, and so do the deliveries of its batch still waiting: the
// worker renews their claims, so a second worker (another replica) never
// processes them too.
func TestClaimsRenewedWhileABatchIsWorkedOn(t *testing.T) {
	s := openInbox(t)
	for i := range 4 {
		save(t, s, fmt.Sprint("d", i), "push", "")
	}
	const claim = 600 * time.Millisecond
	var mu sync.Mutex
	by := map[string][]string{}
	handler := func(owner string) funcHandler {
		return funcHandler{keys: []string{"push"}, fn: func(ctx context.Context, d store.Delivery) error {
			mu.Lock()
			by[d.ID] = append(by[d.ID], owner)
			mu.Unlock()
			if d.ID == "d0" {
				time.Sleep(3 * claim) // its claim renewed nine times meanwhile
			}
			return nil
		}}
	}
	worker := func(owner string) *webhook.Worker {
		disp, err := webhook.NewDispatcher(handler(owner))
		if err != nil {
			t.Fatal(err)
		}
		return &webhook.Worker{Inbox: s, Dispatch: disp.Dispatch, Owner: owner, Lease: claim,
			Poll: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	}
	stopA := run(t, worker("a"))
	defer stopA()
	// b starts once a has claimed the batch.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		started := len(by["d0"]) > 0
		mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never started d0")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopB := run(t, worker("b"))
	defer stopB()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if n, err := s.InboxDepth(t.Context()); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the inbox was not drained within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopA()
	stopB()
	mu.Lock()
	defer mu.Unlock()
	for i := range 4 {
		id := fmt.Sprint("d", i)
		if got := by[id]; len(got) != 1 || got[0] != "a" {
			t.Errorf("%s was processed by %v; want once, by a (its claim's holder)", id, got)
		}
	}
}

// A delivery a handler defers with Later comes back once its time has
// come, not before, and deferring it is no failure: nothing is logged
// above debug and the failure counter does not move.
func TestLaterComesBackAtItsTime(t *testing.T) {
	s := openInbox(t)
	save(t, s, "d-8", "status", "")
	const wait = 300 * time.Millisecond
	var (
		mu    sync.Mutex
		calls []time.Time
		at    time.Time
	)
	done := make(chan struct{})
	disp, err := webhook.NewDispatcher(funcHandler{[]string{"status"}, func(context.Context, store.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Now())
		if len(calls) == 1 {
			at = time.Now().Add(wait)
			return webhook.Later(at)
		}
		close(done)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	logs := servicetest.NewLogBuffer(t, 0)
	w := &webhook.Worker{Inbox: s, Dispatch: disp.Dispatch, Owner: "t", Poll: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	counter := metrics.DeliveriesFailed.WithLabelValues("status")
	before := testutil.ToFloat64(counter)
	stop := run(t, w)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the deferred delivery never came back")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[1].Before(at) {
		t.Errorf("handled at %v; want twice, the second at %v or later", calls, at)
	}
	d, err := s.GetDelivery(context.Background(), "d-8")
	if err != nil || d.Status != store.StatusDone || d.LastError != "" {
		t.Errorf("delivery: %s %q (%v); want done without an error", d.Status, d.LastError, err)
	}
	if got := testutil.ToFloat64(counter) - before; got != 0 {
		t.Errorf("failed deliveries grew by %v; want 0", got)
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a deferral logged as a problem:\n%s", logs.String())
	}
}
