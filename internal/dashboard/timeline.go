package dashboard

import (
	"fmt"
	"strconv"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// Bar kinds: each has its colour (CSS class) and a legend entry.
const (
	barWaiting   = "waiting"
	barDeploying = "deploying"
	barFailed    = "failed"
	barBaking    = "baking"
	barRollback  = "rollback"
)

// legend lists the bar kinds in the order the legend shows them.
var legend = []struct{ Kind, Label string }{
	{barWaiting, "waiting"},
	{barDeploying, "deploying"},
	{barBaking, "baking"},
	{barFailed, "failed deploy"},
	{barRollback, "rollback"},
}

// Timeline geometry, in SVG user units.
const (
	tlLabelW = 120 // stage names
	tlChartW = 760 // the time axis
	tlRightW = 30  // room for the last tick label
	tlTop    = 10
	tlRowH   = 30
	tlBarH   = 18
	tlAxisH  = 28
	tlMinBar = 2 // a bar never shrinks below this, so short steps stay visible
)

// timeline is a run's stage executions laid out for the SVG.
type timeline struct {
	Width, Height int
	ChartX        int // where the time axis starts
	ChartW        int
	AxisY         int
	AxisEndX      int
	TickY         int // baseline of the tick labels
	NoteX         int // where a row without bars says why
	Rows          []tlRow
	Ticks         []tlTick
	Start         time.Time // the axis' origin: the run's creation
	Span          time.Duration
	Live          bool // the run is still moving: bars end at "now"
	NowX          float64
}

type tlRow struct {
	Stage string
	State string
	Y     int // top of the row
	TextY int
	BarY  int
	Bars  []tlBar
}

type tlBar struct {
	Kind  string
	X, W  float64
	Y, H  int
	Label string // tooltip
}

type tlTick struct {
	X     float64
	Label string
}

// span is one interval before it is placed on the axis.
type span struct {
	kind       string
	from, to   time.Time
	label      string
	stageIndex int
}

// stageSpans works out the bars of each stage: waits, deploys, bakes and
// rollbacks. bake maps a stage name to its bake duration (from the run's
// configuration), to split a baked execution into deploy and bake. now
// ends whatever has not ended yet.
func stageSpans(rr store.RolloutRun, execs []store.Execution, bake map[string]time.Duration, now time.Time) ([]store.StageRow, []span) {
	stages := rr.Stages
	if len(stages) == 0 {
		// A run without stage rows (an old run or a partial read) still
		// shows the executions it has.
		seen := map[int]bool{}
		for _, e := range execs {
			if !seen[e.Stage] {
				seen[e.Stage] = true
				stages = append(stages, store.StageRow{Index: e.Stage, Name: e.StageName, State: schedule.Active})
			}
		}
	}
	byStage := map[int][]store.Execution{}
	for _, e := range execs {
		byStage[e.Stage] = append(byStage[e.Stage], e)
	}
	live := rr.Rollout == store.RolloutActive
	// ready is when the next stage could have started: the run's creation
	// (the merge as the bot saw it; the release follows within moments),
	// then the end of the last stage that ran.
	ready := rr.CreatedAt
	through := true // every earlier stage passed or was skipped
	var out []span
	for _, st := range stages {
		ex := byStage[st.Index]
		if len(ex) == 0 {
			if live && through && st.State == schedule.Pending && now.After(ready) {
				label := "waiting since " + clock(ready)
				if !st.Wait.None() {
					label = st.Wait.Text()
				}
				out = append(out, span{barWaiting, ready, now, label, st.Index})
			}
			through = through && (st.State == schedule.Passed || st.State == schedule.Skipped)
			continue
		}
		if first := ex[0].CreatedAt; first.After(ready) {
			out = append(out, span{barWaiting, ready, first, "waited " + short(first.Sub(ready)) + " to start", st.Index})
		}
		for _, e := range ex {
			end := e.FinishedAt
			if end.IsZero() {
				end = now
			}
			if end.Before(e.CreatedAt) {
				end = e.CreatedAt
			}
			what := fmt.Sprintf("%s attempt %d", e.Version, e.Attempt)
			switch {
			case e.Rollback:
				out = append(out, span{barRollback, e.CreatedAt, end, "rollback to " + e.Version + " " + durationNote(e.CreatedAt, end, e.FinishedAt.IsZero()), st.Index})
			case !e.BakeUntil.IsZero():
				bakeStart := e.BakeUntil.Add(-bake[st.Name])
				if bakeStart.Before(e.CreatedAt) {
					bakeStart = e.CreatedAt
				}
				if bakeStart.After(end) {
					bakeStart = end
				}
				out = append(out, span{barDeploying, e.CreatedAt, bakeStart, "deployed " + what + " in " + short(bakeStart.Sub(e.CreatedAt)), st.Index})
				bk := barBaking
				if e.Outcome == rollout.Failed {
					bk = barFailed
				}
				verb := "baked "
				if e.FinishedAt.IsZero() {
					verb = "baking "
				}
				out = append(out, span{bk, bakeStart, end, verb + what + " " + durationNote(bakeStart, end, e.FinishedAt.IsZero()), st.Index})
			case e.Outcome == rollout.Failed && !e.FinishedAt.IsZero():
				out = append(out, span{barFailed, e.CreatedAt, end, "failed " + what + " after " + short(end.Sub(e.CreatedAt)), st.Index})
			case e.FinishedAt.IsZero():
				out = append(out, span{barDeploying, e.CreatedAt, end, "deploying " + what + " " + durationNote(e.CreatedAt, end, true), st.Index})
			default:
				// Finished: it deployed, it is not "deploying" any more.
				out = append(out, span{barDeploying, e.CreatedAt, end, "deployed " + what + " in " + short(end.Sub(e.CreatedAt)), st.Index})
			}
			if end.After(ready) {
				ready = end
			}
		}
		through = through && (st.State == schedule.Passed || st.State == schedule.Skipped)
	}
	return stages, out
}

func durationNote(from, to time.Time, running bool) string {
	if running {
		return "for " + short(to.Sub(from)) + " so far"
	}
	return "in " + short(to.Sub(from))
}

// layout places the stages' spans on a shared time axis.
func layout(rr store.RolloutRun, execs []store.Execution, bake map[string]time.Duration, now time.Time) timeline {
	stages, spans := stageSpans(rr, execs, bake, now)
	tl := timeline{ChartX: tlLabelW, ChartW: tlChartW, Start: rr.CreatedAt, Live: rr.Rollout == store.RolloutActive}
	end := tl.Start
	for _, s := range spans {
		if s.to.After(end) {
			end = s.to
		}
	}
	if tl.Live && now.After(end) {
		end = now
	}
	tl.Span = end.Sub(tl.Start)
	if tl.Span < time.Second {
		tl.Span = time.Second
	}
	step := tickStep(tl.Span)
	// Round the axis up to a whole step, so the last tick closes it.
	if r := tl.Span % step; r != 0 {
		tl.Span += step - r
	}
	x := func(t time.Time) float64 {
		return float64(tl.ChartX) + float64(t.Sub(tl.Start))/float64(tl.Span)*float64(tl.ChartW)
	}
	rowOf := map[int]int{}
	for i, st := range stages {
		y := tlTop + i*tlRowH
		tl.Rows = append(tl.Rows, tlRow{Stage: st.Name, State: st.State.String(), Y: y, TextY: y + tlRowH/2 + 5, BarY: y + (tlRowH-tlBarH)/2})
		rowOf[st.Index] = i
	}
	for _, s := range spans {
		i, ok := rowOf[s.stageIndex]
		if !ok {
			continue
		}
		x0, x1 := x(s.from), x(s.to)
		w := x1 - x0
		if w < tlMinBar {
			w = tlMinBar
		}
		tl.Rows[i].Bars = append(tl.Rows[i].Bars, tlBar{Kind: s.kind, X: round1(x0), W: round1(w),
			Y: tl.Rows[i].BarY, H: tlBarH, Label: s.label})
	}
	tl.AxisY = tlTop + len(stages)*tlRowH
	tl.AxisEndX, tl.TickY, tl.NoteX = tl.ChartX+tl.ChartW, tl.AxisY+16, tl.ChartX+6
	for d := time.Duration(0); d <= tl.Span; d += step {
		tl.Ticks = append(tl.Ticks, tlTick{X: round1(x(tl.Start.Add(d))), Label: "+" + short(d)})
	}
	if tl.Live {
		tl.NowX = round1(x(now))
	}
	tl.Width = tlLabelW + tlChartW + tlRightW
	tl.Height = tl.AxisY + tlAxisH
	return tl
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// tickSteps are the axis steps, smallest first.
var tickSteps = []time.Duration{
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// maxTicks bounds the intervals on the axis.
const maxTicks = 8

// tickStep picks the smallest step that cuts span into at most maxTicks
// intervals.
func tickStep(span time.Duration) time.Duration {
	for _, s := range tickSteps {
		if (span+s-1)/s <= maxTicks {
			return s
		}
	}
	day := tickSteps[len(tickSteps)-1]
	return day * ((span + maxTicks*day - 1) / (maxTicks * day))
}

// short formats a duration compactly: 350ms, 1.5s, 42s, 3m10s, 2h5m, 3d4h.
func short(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		s := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
		if len(s) > 2 && s[len(s)-2:] == ".0" {
			s = s[:len(s)-2]
		}
		return s + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		m, s := int(d.Minutes()), int(d.Seconds())%60
		if s == 0 {
			return strconv.Itoa(m) + "m"
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return strconv.Itoa(h) + "h"
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d.Hours())/24, int(d.Hours())%24
		if h == 0 {
			return strconv.Itoa(days) + "d"
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

// clock is a time of day in UTC, to the second.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") + " UTC" }
