package pacing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestParseLimits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limits
		err  bool
	}{
		{"", GitHubLimits, false},
		{"80/m,500/h", Limits{80, 500}, false},
		{" 500/h , 80/m ", Limits{80, 500}, false},
		{"40/m", Limits{40, 500}, false},
		{"1000/h", Limits{80, 1000}, false},
		{"0/m", Limits{}, true},
		{"80", Limits{}, true},
		{"80/s", Limits{}, true},
		{"x/m", Limits{}, true},
		{"80/m,90/m", Limits{}, true},
		{"600/m,500/h", Limits{}, true},
	} {
		got, err := ParseLimits(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLimits(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if l, _ := ParseLimits(GitHubLimits.String()); l != GitHubLimits {
		t.Errorf("String does not read back: %v", l)
	}
}

func TestWait(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(secs ...int) []time.Time {
		var ts []time.Time
		for _, s := range secs {
			ts = append(ts, t0.Add(time.Duration(s)*time.Second))
		}
		return ts
	}
	lim := Limits{PerMinute: 3, PerHour: 5}
	for _, tc := range []struct {
		name  string
		taken []time.Time
		now   int
		want  time.Duration
	}{
		{"empty", nil, 0, 0},
		{"two in the minute", at(0, 10), 20, 0},
		{"minute full: until its oldest leaves, and the margin", at(0, 10, 20), 30, 32 * time.Second},
		{"order does not matter", at(20, 0, 10), 30, 32 * time.Second},
		{"oldest left the window but not the margin", at(0, 10, 20), 61, time.Second},
		{"oldest left", at(0, 10, 20), 62, 0},
		{"hour full", at(0, 100, 200, 300, 400), 500, 3102 * time.Second},
		{"older than an hour ignored", at(-4000, -3700, 0, 10), 20, 0},
		{"the future is not in the window", at(100, 110, 120), 20, 0},
	} {
		if got := Wait(tc.taken, t0.Add(time.Duration(tc.now)*time.Second), lim); got != tc.want {
			t.Errorf("%s: Wait = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestReportingKeepsAQuarterForRollouts(t *testing.T) {
	if got := (Limits{80, 500}).For(Report); got != (Limits{60, 375}) {
		t.Errorf("report share of GitHub's limits = %v; want 60/m,375/h", got)
	}
	if got := (Limits{80, 500}).For(Rollout); got != (Limits{80, 500}) {
		t.Errorf("rollout share = %v; want all", got)
	}
	if got := (Limits{1, 1}).For(Report); got != (Limits{1, 1}) {
		t.Errorf("report share of 1/m,1/h = %v; want at least one", got)
	}
}

// memLedger is a Ledger in memory, deciding with Wait as the stores do.
type memLedger struct {
	mu    sync.Mutex
	taken map[int64][]time.Time
	calls int
	fail  error
}

func (l *memLedger) TakeWrite(_ context.Context, id int64, now time.Time, lim Limits) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.fail != nil {
		return 0, l.fail
	}
	if l.taken == nil {
		l.taken = map[int64][]time.Time{}
	}
	if w := Wait(l.taken[id], now, lim); w > 0 {
		return w, nil
	}
	l.taken[id] = append(l.taken[id], now)
	return 0, nil
}

// maxIn is the most writes of id in any window of length d.
func (l *memLedger) maxIn(id int64, d time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := 0
	for _, end := range l.taken[id] {
		n := 0
		for _, t := range l.taken[id] {
			if t.After(end.Add(-d)) && !t.After(end) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

func TestPacerKeepsEveryWindowAndServesRolloutsFirst(t *testing.T) {
	clock := NewVirtualClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	ledger := &memLedger{}
	p := &Pacer{Ledger: ledger, Clock: clock, Limits: Limits{PerMinute: 8, PerHour: 50}}
	const inst = 7
	ctx := context.Background()
	// Reporting fills its share of the minute (6 of 8).
	for range 6 {
		take(t, p, inst, Report)
	}
	if p.Pressed(inst) {
		t.Error("pressed before any report write had to wait")
	}
	start := clock.Now()
	// A rollout write still goes at once: the last quarter is its own.
	take(t, p, inst, Rollout)
	if d := clock.Now().Sub(start); d != 0 {
		t.Errorf("a rollout write waited %v behind full reporting; want no wait", d)
	}
	// Many writers at once: no window ever holds more than the limits.
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Report
			if i%5 == 0 {
				c = Rollout
			}
			done, err := p.Take(ctx, inst, c)
			if err != nil {
				t.Error(err)
				return
			}
			done()
		}()
	}
	wg.Wait()
	if n := ledger.maxIn(inst, time.Minute); n > 8 {
		t.Errorf("%d writes in one minute; the limit is 8", n)
	}
	if n := ledger.maxIn(inst, time.Hour); n > 50 {
		t.Errorf("%d writes in one hour; the limit is 50", n)
	}
	if n := len(ledger.taken[inst]); n < 67 {
		t.Errorf("%d writes taken; want all 68", n)
	}
	if p.Pressed(inst + 1) {
		t.Error("an installation that never wrote is pressed")
	}
}

func TestPacerServesARolloutWriteWhileReportsWait(t *testing.T) {
	// A wall clock here: the report writes wait a real minute, and the
	// rollout write that comes meanwhile must not wait behind them.
	ledger := &memLedger{}
	p := &Pacer{Ledger: ledger, Limits: Limits{PerMinute: 4, PerHour: 100}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		take(t, p, 1, Report)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := p.Take(ctx, 1, Report)
		blocked <- err
	}()
	for !p.Pressed(1) {
		time.Sleep(time.Millisecond) // the serve goroutine's first answer
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Take(context.Background(), 1, Rollout)
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The waiting report write gives up with its context; its place goes.
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait = %v; want context.Canceled", err)
	}
	if n := len(ledger.taken[1]); n != 4 {
		t.Errorf("%d writes taken; want 3 reports and the rollout", n)
	}
}

func TestPacerFailsClosedWhenTheLedgerFails(t *testing.T) {
	ledger := &memLedger{fail: errors.New("database is locked")}
	p := &Pacer{Ledger: ledger}
	_, err := p.Take(context.Background(), 3, Rollout)
	if err == nil || !errors.Is(err, ledger.fail) {
		t.Fatalf("Take = %v; want the ledger's error", err)
	}
}

// take takes a slot and answers the write at once.
func take(t *testing.T, p *Pacer, inst int64, c Class) {
	t.Helper()
	done, err := p.Take(context.Background(), inst, c)
	if err != nil {
		t.Fatal(err)
	}
	done()
}

// TestVirtualClockWaitsForWritesOnTheirWay: a write granted at one instant
// is answered before the clock moves, so GitHub's fake counts it at the
// instant the ledger did.
func TestVirtualClockWaitsForWritesOnTheirWay(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := NewVirtualClock(start)
	release := clock.Hold()
	moved := make(chan time.Time)
	go func() { moved <- <-clock.After(time.Minute) }()
	select {
	case <-moved:
		t.Fatal("the clock moved while held")
	case <-time.After(20 * time.Millisecond):
	}
	if !clock.Now().Equal(start) {
		t.Fatalf("clock at %v while held", clock.Now())
	}
	release()
	release() // once only
	if at := <-moved; !at.Equal(start.Add(time.Minute)) || !clock.Now().Equal(at) {
		t.Errorf("after release the clock is at %v (fired %v); want a minute on", clock.Now(), at)
	}
}

func TestEnterCapsRequestsInFlight(t *testing.T) {
	p := &Pacer{Ledger: &memLedger{}, InFlight: 2}
	ctx := context.Background()
	a, _ := p.Enter(ctx, 1)
	b, _ := p.Enter(ctx, 1)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Enter(short, 1); err == nil {
		t.Fatal("a third request entered with two in flight and a cap of 2")
	}
	if leave, err := p.Enter(ctx, 2); err != nil {
		t.Fatalf("another installation was held: %v", err)
	} else {
		leave()
	}
	a()
	a() // leaving twice frees one place only
	c, err := p.Enter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	b()
	c()
}
