package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

func TestLayout(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rr := store.RolloutRun{Run: store.Run{CreatedAt: t0}, Rollout: store.RolloutDone, Stages: []store.StageRow{
		{Index: 0, Name: "qa", State: schedule.Passed},
		{Index: 1, Name: "prod", State: schedule.RolledBack},
		{Index: 2, Name: "canary", State: schedule.Skipped},
	}}
	execs := []store.Execution{
		// qa: waits 2s, deploys 3s, bakes 5s.
		{Stage: 0, StageName: "qa", Attempt: 1, Version: "1.0.0", CreatedAt: at(2), BakeUntil: at(10), FinishedAt: at(10), Outcome: "succeeded"},
		// prod: waits 1s, fails after 4s, rolls back in 6s.
		{Stage: 1, StageName: "prod", Attempt: 1, Version: "1.0.0", CreatedAt: at(11), FinishedAt: at(15), Outcome: "failed"},
		{Stage: 1, StageName: "prod", Attempt: 2, Rollback: true, Version: "0.9.0", CreatedAt: at(15), FinishedAt: at(21), Outcome: "succeeded"},
	}
	tl := layout(rr, execs, map[string]time.Duration{"qa": 5 * time.Second}, at(100))

	if len(tl.Rows) != 3 || tl.Rows[0].Stage != "qa" || tl.Rows[1].Stage != "prod" || tl.Rows[2].Stage != "canary" {
		t.Fatalf("rows = %+v; want qa, prod, canary", tl.Rows)
	}
	// The run is over: the axis ends at the last bar (21s), rounded up to a
	// whole tick of 5s.
	if tl.Span != 25*time.Second || tl.Live {
		t.Errorf("span = %s live = %v; want 25s, not live", tl.Span, tl.Live)
	}
	px := func(s float64) float64 { return round1(float64(tlLabelW) + s/25*tlChartW) }
	want := [][]tlBar{
		{{Kind: barWaiting, X: px(0), W: px(2) - px(0)}, {Kind: barDeploying, X: px(2), W: px(5) - px(2)}, {Kind: barBaking, X: px(5), W: px(10) - px(5)}},
		{{Kind: barWaiting, X: px(10), W: px(11) - px(10)}, {Kind: barFailed, X: px(11), W: px(15) - px(11)}, {Kind: barRollback, X: px(15), W: px(21) - px(15)}},
		nil,
	}
	for i, row := range tl.Rows {
		if len(row.Bars) != len(want[i]) {
			t.Errorf("%s: %d bars %+v; want %d", row.Stage, len(row.Bars), row.Bars, len(want[i]))
			continue
		}
		for j, b := range row.Bars {
			w := want[i][j]
			if b.Kind != w.Kind || abs(b.X-w.X) > 0.2 || abs(b.W-w.W) > 0.2 || b.Y != row.BarY {
				t.Errorf("%s bar %d = %s x=%v w=%v y=%d; want %s x=%v w=%v y=%d", row.Stage, j, b.Kind, b.X, b.W, b.Y, w.Kind, w.X, w.W, row.BarY)
			}
		}
	}
	if got := tl.Rows[0].Bars[2].Label; got != "baked 1.0.0 attempt 1 in 5s" {
		t.Errorf("bake label = %q", got)
	}
	var ticks []string
	for _, tk := range tl.Ticks {
		ticks = append(ticks, tk.Label)
	}
	if got := strings.Join(ticks, " "); got != "+0s +5s +10s +15s +20s +25s" {
		t.Errorf("ticks = %s", got)
	}
}

func TestLayoutLiveRun(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	now := t0.Add(90 * time.Second)
	rr := store.RolloutRun{Run: store.Run{CreatedAt: t0}, Rollout: store.RolloutActive, Stages: []store.StageRow{
		{Index: 0, Name: "qa", State: schedule.Passed},
		{Index: 1, Name: "prod", State: schedule.Pending, Wait: rollout.Wait{Kind: schedule.Window}},
	}}
	execs := []store.Execution{{Stage: 0, StageName: "qa", Attempt: 1, Version: "1.0.0", CreatedAt: t0, FinishedAt: t0.Add(30 * time.Second), Outcome: "succeeded"}}
	tl := layout(rr, execs, nil, now)
	if !tl.Live || tl.NowX != float64(tlLabelW+tlChartW) {
		t.Errorf("live = %v, now at %v; want the axis end %d", tl.Live, tl.NowX, tlLabelW+tlChartW)
	}
	// qa started at once: no wait; prod waits from qa's end until now.
	if b := tl.Rows[0].Bars; len(b) != 1 || b[0].Kind != barDeploying {
		t.Errorf("qa bars = %+v", b)
	}
	if b := tl.Rows[1].Bars; len(b) != 1 || b[0].Kind != barWaiting || b[0].Label != "waiting for the deploy window" {
		t.Errorf("prod bars = %+v; want one wait for the window", b)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestTickStepAndShort(t *testing.T) {
	for _, tc := range []struct {
		span time.Duration
		want time.Duration
	}{
		{time.Second, 200 * time.Millisecond},
		{8 * time.Second, time.Second},
		{25 * time.Second, 5 * time.Second},
		{45 * time.Minute, 10 * time.Minute},
		{3 * 24 * time.Hour, 12 * time.Hour},
	} {
		if got := tickStep(tc.span); got != tc.want {
			t.Errorf("tickStep(%s) = %s; want %s", tc.span, got, tc.want)
		}
	}
	if got := tickStep(40 * 24 * time.Hour); (40*24*time.Hour+got-1)/got > maxTicks {
		t.Errorf("tickStep(40d) = %s: more than maxTicks intervals", got)
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 350 * time.Millisecond: "350ms", 1500 * time.Millisecond: "1.5s", 2 * time.Second: "2s",
		42 * time.Second: "42s", 190 * time.Second: "3m10s", 5 * time.Minute: "5m", 125 * time.Minute: "2h5m", 76 * time.Hour: "3d4h",
		-time.Second: "0s",
	} {
		if got := short(d); got != want {
			t.Errorf("short(%s) = %q; want %q", d, got, want)
		}
	}
}

// A finished execution's bar says what it did, never that it is still
// deploying or baking; one under way says so.
func TestFinishedBarsSayDone(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	rr := store.RolloutRun{Run: store.Run{CreatedAt: t0}, Rollout: store.RolloutActive, Stages: []store.StageRow{
		{Index: 0, Name: "qa", State: schedule.Passed}, {Index: 1, Name: "prod", State: schedule.Active}}}
	execs := []store.Execution{
		{StageName: "qa", Stage: 0, Attempt: 1, Version: "1.0.0", Phase: store.PhaseFinished, Outcome: "succeeded",
			CreatedAt: t0, FinishedAt: t0.Add(3 * time.Second)},
		{StageName: "prod", Stage: 1, Attempt: 1, Version: "1.0.0", Phase: store.PhaseDeploying, CreatedAt: t0.Add(4 * time.Second)},
	}
	tl := layout(rr, execs, nil, t0.Add(10*time.Second))
	var labels []string
	for _, row := range tl.Rows {
		for _, b := range row.Bars {
			labels = append(labels, b.Label)
		}
	}
	want := []string{"deployed 1.0.0 attempt 1 in 3s", "waited 1s to start", "deploying 1.0.0 attempt 1 for 6s so far"}
	if strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Errorf("bar labels %q; want %q", labels, want)
	}
}
