package schedule_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// The simulation plays a pipeline through a random sequence of events, lets
// the scheduler decide after each one, applies its actions, and checks the
// invariants with code of its own rather than the package's.

// source drives the simulation: math/rand/v2 for the property test, the
// fuzzer's bytes for the fuzz test.
type source interface {
	IntN(n int) int
	More() bool // whether to play another event
}

type randSource struct {
	r    *rand.Rand
	left int
}

func (s *randSource) IntN(n int) int { return s.r.IntN(n) }
func (s *randSource) More() bool {
	s.left--
	return s.left >= 0
}

type byteSource struct{ b []byte }

func (s *byteSource) IntN(n int) int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v % n
}
func (s *byteSource) More() bool { return len(s.b) > 0 }

type simConfig struct {
	name     string // to reproduce a failure
	mode     schedule.Mode
	stages   int
	maxRuns  int
	failures bool // executions may fail or roll back, runs may be cancelled
	partial  bool // a decision's actions may be applied only in part (a crash)
}

type sim struct {
	t   testing.TB
	cfg simConfig
	src source
	s   schedule.State

	nextOrder int64
	added     []string
	entered   [][]int64 // per stage, the orders that entered it, in sequence
	reached   [][]int64 // per stage, the orders that entered or skipped it
	stopped   bool      // some run failed, rolled back or was cancelled
	step      int
	trace     []traceEntry
}

func newSim(t testing.TB, cfg simConfig, src source) *sim {
	return &sim{
		t: t, cfg: cfg, src: src,
		s:       schedule.State{Mode: cfg.mode, Stages: make([]schedule.Stage, cfg.stages)},
		entered: make([][]int64, cfg.stages),
		reached: make([][]int64, cfg.stages),
	}
}

// traceEntry is formatted only when a check fails: formatting every event
// would cost more than the checks.
type traceEntry struct {
	step   int
	format string
	args   []any
}

func (m *sim) logf(format string, args ...any) {
	const keep = 40
	if len(m.trace) == keep {
		m.trace = slices.Delete(m.trace, 0, 1)
	}
	m.trace = append(m.trace, traceEntry{m.step, format, args})
}

func (m *sim) fatalf(format string, args ...any) {
	m.t.Helper()
	var lines []string
	for _, e := range m.trace {
		lines = append(lines, fmt.Sprintf("%4d ", e.step)+fmt.Sprintf(e.format, e.args...))
	}
	m.t.Fatalf("%+v step %d: %s\nlast events:\n  %s\nstate:\n%s", m.cfg, m.step, fmt.Sprintf(format, args...),
		strings.Join(lines, "\n  "), dump(m.s))
}

// play runs the random phase, then drains: blockers clear and every
// execution succeeds until nothing moves, and then nothing may be left.
func (m *sim) play() {
	m.decide(true)
	for m.src.More() {
		m.step++
		m.event()
		m.decide(true)
	}
	m.drain()
	m.final()
}

func (m *sim) event() {
	switch m.src.IntN(12) {
	case 0, 1, 2:
		if len(m.added) < m.cfg.maxRuns {
			m.arrive()
			return
		}
		m.finish()
	case 3, 4, 5, 6:
		m.finish()
	case 7:
		m.s.Frozen = !m.s.Frozen
		m.logf("frozen=%v", m.s.Frozen)
	case 8:
		k := m.src.IntN(m.cfg.stages)
		st := &m.s.Stages[k]
		st.WindowClosed = !st.WindowClosed
		st.WindowOpens = time.Time{}
		if st.WindowClosed {
			st.WindowOpens = opens.Add(time.Duration(m.src.IntN(200)) * time.Hour)
		}
		m.logf("stage %d windowClosed=%v", k, st.WindowClosed)
	case 9:
		k := m.src.IntN(m.cfg.stages)
		name := fmt.Sprintf("alarm%d", m.src.IntN(2))
		st := &m.s.Stages[k]
		if i := slices.Index(st.Alarms, name); i >= 0 {
			st.Alarms = slices.Delete(st.Alarms, i, i+1)
		} else {
			st.Alarms = append(st.Alarms, name)
		}
		m.logf("stage %d alarms=%v", k, st.Alarms)
	case 10:
		if len(m.s.Runs) > 0 {
			r := &m.s.Runs[m.src.IntN(len(m.s.Runs))]
			r.Skip = m.skipSet()
			m.logf("relabel %s skip=%b", r.ID, uint64(r.Skip))
		}
	case 11:
		if m.cfg.failures && len(m.s.Runs) > 0 {
			r := m.s.Runs[m.src.IntN(len(m.s.Runs))]
			if err := m.s.Cancel(r.ID); err != nil {
				m.fatalf("Cancel(%s): %v", r.ID, err)
			}
			m.stopped = true
			m.logf("cancel %s", r.ID)
		}
	}
}

func (m *sim) skipSet() schedule.StageSet {
	if m.src.IntN(3) != 0 {
		return 0
	}
	return schedule.StageSet(m.src.IntN(1 << m.cfg.stages))
}

func (m *sim) arrive() {
	m.nextOrder++
	id := fmt.Sprintf("r%d", m.nextOrder)
	skip := m.skipSet()
	if err := m.s.AddRun(id, m.nextOrder, skip); err != nil {
		m.fatalf("AddRun(%s): %v", id, err)
	}
	m.added = append(m.added, id)
	m.logf("arrive %s skip=%b", id, uint64(skip))
}

// finish ends one active execution, chosen by the source.
func (m *sim) finish() {
	type exec struct {
		id string
		k  int
	}
	var active []exec
	for _, r := range m.s.Runs {
		for k, st := range r.Stages {
			if st == schedule.Active {
				active = append(active, exec{r.ID, k})
			}
		}
	}
	if len(active) == 0 {
		return
	}
	e := active[m.src.IntN(len(active))]
	outcome := schedule.Passed
	if m.cfg.failures {
		switch m.src.IntN(8) {
		case 0:
			outcome = schedule.Failed
		case 1:
			outcome = schedule.RolledBack
		}
	}
	if outcome != schedule.Passed {
		m.stopped = true
	}
	if err := m.s.Finish(e.id, e.k, outcome); err != nil {
		m.fatalf("Finish(%s, %d, %s): %v", e.id, e.k, outcome, err)
	}
	m.logf("finish %s@%d %s", e.id, e.k, outcome)
}

// decide asks for a decision, checks it, and applies it (perhaps only a
// prefix of it, as a crash would). It returns how many actions it applied.
func (m *sim) decide(mayCrash bool) int {
	// The purity checks are the dearest part of a step, and a quarter of
	// the steps is plenty to catch a decision that depends on listing
	// order or writes to its input.
	pure := m.step%4 == 0
	var before schedule.State
	if pure {
		before = m.s.Clone()
	}
	d, err := schedule.Decide(m.s)
	if err != nil {
		m.fatalf("Decide: %v", err)
	}
	if pure {
		if !equalState(before, m.s) {
			m.fatalf("Decide modified its input")
		}
		m.checkDeterministic(d)
	}
	n := len(d.Actions)
	if mayCrash && m.cfg.partial && n > 0 && m.src.IntN(8) == 0 {
		n = m.src.IntN(n + 1)
		m.logf("crash after %d of %d actions", n, len(d.Actions))
	}
	for _, a := range d.Actions[:n] {
		m.apply(a, d)
	}
	m.checkState()
	if n == len(d.Actions) {
		m.checkWaits(d)
	}
	return n
}

// checkDeterministic decides again over the same values listed in another
// order: the decision must not change.
func (m *sim) checkDeterministic(d schedule.Decision) {
	c := m.s.Clone()
	r := rand.New(rand.NewPCG(uint64(m.step), uint64(len(c.Runs))))
	r.Shuffle(len(c.Runs), func(i, j int) { c.Runs[i], c.Runs[j] = c.Runs[j], c.Runs[i] })
	for k := range c.Stages {
		a := c.Stages[k].Alarms
		r.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
	}
	again, err := schedule.Decide(c)
	if err != nil || !equalDecision(d, again) {
		m.fatalf("decision depends on listing order:\n%v\n%v (%v)", d, again, err)
	}
}

func (m *sim) find(id string) *schedule.Run {
	for i := range m.s.Runs {
		if m.s.Runs[i].ID == id {
			return &m.s.Runs[i]
		}
	}
	m.fatalf("no run %s", id)
	return nil
}

// stoppedRun is the test's own notion of a run that goes no further.
func stoppedRun(r schedule.Run) bool {
	if r.Cancelled {
		return true
	}
	for _, st := range r.Stages {
		if st == schedule.Failed || st == schedule.RolledBack || st == schedule.Superseded {
			return true
		}
	}
	return false
}

func through(st schedule.StageState) bool { return st == schedule.Passed || st == schedule.Skipped }

// readyAt: the run is waiting at stage k as far as it itself goes.
func readyAt(r schedule.Run, k int) bool {
	return !stoppedRun(r) && r.Stages[k] == schedule.Pending && (k == 0 || through(r.Stages[k-1]))
}

func (m *sim) blocked(k int) bool {
	return m.s.Frozen || m.s.Stages[k].WindowClosed || len(m.s.Stages[k].Alarms) > 0
}

// apply checks one action against the rules, independently of the package,
// then applies it.
func (m *sim) apply(a schedule.Action, d schedule.Decision) {
	r := m.find(a.Run)
	k := a.Stage
	if k < 0 || k >= m.cfg.stages {
		m.fatalf("%v: no such stage", a)
	}
	if !readyAt(*r, k) {
		m.fatalf("%v: run is not waiting at stage %d", a, k)
	}
	earlier := func() {
		for _, o := range m.s.Runs {
			if o.Order < r.Order && !stoppedRun(o) && o.Stages[k] == schedule.Pending {
				m.fatalf("%v: earlier run %s could still enter stage %d", a, o.ID, k)
			}
		}
		if seq := m.reached[k]; len(seq) > 0 && seq[len(seq)-1] >= r.Order {
			m.fatalf("%v: stage %d reached out of order: %v then %d", a, k, seq, r.Order)
		}
		m.reached[k] = append(m.reached[k], r.Order)
	}
	switch a.Kind {
	case schedule.Enter:
		if m.blocked(k) {
			m.fatalf("%v: stage %d is blocked", a, k)
		}
		if r.Skip.Has(k) {
			m.fatalf("%v: the run's labels skip stage %d", a, k)
		}
		for _, o := range m.s.Runs {
			if o.Stages[k] == schedule.Active {
				m.fatalf("%v: unit %d busy with %s", a, k, o.ID)
			}
		}
		earlier()
		if seq := m.entered[k]; len(seq) > 0 && seq[len(seq)-1] >= r.Order {
			m.fatalf("%v: stage %d entered out of order: %v then %d", a, k, seq, r.Order)
		}
		m.entered[k] = append(m.entered[k], r.Order)
	case schedule.Skip:
		if !r.Skip.Has(k) {
			m.fatalf("%v: no label skips stage %d", a, k)
		}
		earlier()
	case schedule.Supersede:
		if m.cfg.mode != schedule.Latest {
			m.fatalf("%v: supersede in %s mode", a, m.cfg.mode)
		}
		if r.Skip.Has(k) {
			m.fatalf("%v: a run skipping the stage is never superseded there", a)
		}
		// A newer run that waits at the same stage enters it in this
		// decision.
		ok := false
		for _, b := range d.Actions {
			if b.Kind == schedule.Enter && b.Stage == k && m.find(b.Run).Order > r.Order {
				ok = true
			}
		}
		if !ok {
			m.fatalf("%v: no newer run enters stage %d in %v", a, k, d.Actions)
		}
	default:
		m.fatalf("unknown action %v", a)
	}
	if err := m.s.Apply(a); err != nil {
		m.fatalf("Apply(%v): %v", a, err)
	}
	m.logf("%v", a)
}

// checkState checks the invariants every state must keep. (The package's
// own Validate runs inside the next Decide.)
func (m *sim) checkState() {
	if len(m.s.Runs) != len(m.added) {
		m.fatalf("%d runs, %d added", len(m.s.Runs), len(m.added))
	}
	for i, r := range m.s.Runs {
		if r.ID != m.added[i] {
			m.fatalf("run %d is %s, want %s", i, r.ID, m.added[i])
		}
	}
	for k := range m.cfg.stages {
		holders := 0
		var entered []int64
		for _, r := range m.s.Runs {
			switch r.Stages[k] {
			case schedule.Active:
				holders++
				entered = append(entered, r.Order)
			case schedule.Passed, schedule.Failed, schedule.RolledBack:
				entered = append(entered, r.Order)
			}
		}
		if holders > 1 {
			m.fatalf("stage %d has %d active executions", k, holders)
		}
		// Every run that holds or held the unit came in through an Enter.
		if !slices.Equal(entered, m.entered[k]) {
			m.fatalf("stage %d: runs that entered %v, Enter actions %v", k, entered, m.entered[k])
		}
	}
	for _, r := range m.s.Runs {
		active := 0
		for k, st := range r.Stages {
			if st == schedule.Active {
				active++
			}
			started := st == schedule.Active || st == schedule.Passed || st == schedule.Skipped ||
				st == schedule.Failed || st == schedule.RolledBack
			if started && k > 0 && !through(r.Stages[k-1]) {
				m.fatalf("%s is %s at stage %d without passing stage %d", r.ID, st, k, k-1)
			}
		}
		if active > 1 {
			m.fatalf("%s is active in %d stages", r.ID, active)
		}
	}
}

// checkWaits checks, after a whole decision was applied, that exactly the
// runs that wait have a wait, at their current stage, and that every reason
// given is true and at least one of them actually holds the run.
func (m *sim) checkWaits(d schedule.Decision) {
	// Runs are listed in order, and so are waits: walk both together.
	next := 0
	for _, r := range m.s.Runs {
		var w schedule.Wait
		has := next < len(d.Waits) && d.Waits[next].Run == r.ID
		if has {
			w = d.Waits[next]
			next++
		}
		cur := r.Current()
		if cur == len(r.Stages) || !readyAt(r, cur) {
			if has {
				m.fatalf("%s is not waiting but has %v", r.ID, w)
			}
			continue
		}
		if !has {
			m.fatalf("%s waits at stage %d with no reason given (stuck?)", r.ID, cur)
		}
		if w.Stage != cur {
			m.fatalf("%s waits at stage %d, reported at %d", r.ID, cur, w.Stage)
		}
		m.checkReasons(r, w)
	}
	if next != len(d.Waits) {
		m.fatalf("waits out of run order or for unknown runs: %v", d.Waits)
	}
}

func (m *sim) checkReasons(r schedule.Run, w schedule.Wait) {
	k := w.Stage
	st := m.s.Stages[k]
	holds := false
	for _, why := range w.Reasons {
		truth := false
		switch why.Kind {
		case schedule.Behind:
			o := m.find(why.Run)
			truth = o.Order < r.Order && !stoppedRun(*o) && o.Stages[k] == schedule.Pending
		case schedule.Busy:
			truth = m.find(why.Run).Stages[k] == schedule.Active
		case schedule.Frozen:
			truth = m.s.Frozen
		case schedule.Window:
			truth = st.WindowClosed && why.Until.Equal(st.WindowOpens)
		case schedule.Alarm:
			truth = slices.Contains(st.Alarms, why.Alarm)
		case schedule.NewerWaiting:
			o := m.find(why.Run)
			truth = m.cfg.mode == schedule.Latest && o.Order > r.Order && readyAt(*o, k)
		}
		if !truth {
			m.fatalf("%s at stage %d: reason %v is not true (%v)", r.ID, k, why, w.Reasons)
		}
		if why.Kind != schedule.NewerWaiting {
			holds = true
		}
		if r.Skip.Has(k) && why.Kind != schedule.Behind {
			m.fatalf("%s skips stage %d yet waits for %v", r.ID, k, why)
		}
	}
	if !holds {
		m.fatalf("%s at stage %d: nothing holds it (%v)", r.ID, k, w.Reasons)
	}
	if want := m.expectedReasons(r, k); !slices.Equal(want, w.Reasons) {
		m.fatalf("%s at stage %d: reasons %v, want %v", r.ID, k, w.Reasons, want)
	}
}

// expectedReasons states from the whole pipeline, rather than from the
// scheduler's walk, every reason a run waiting at stage k must be given.
func (m *sim) expectedReasons(r schedule.Run, k int) []schedule.Reason {
	var want []schedule.Reason
	var nearest *schedule.Run
	unready := false // an earlier run could still enter k but has not reached it
	for i, o := range m.s.Runs {
		if o.Order < r.Order && !stoppedRun(o) && o.Stages[k] == schedule.Pending {
			if nearest == nil || o.Order > nearest.Order {
				nearest = &m.s.Runs[i]
			}
			unready = unready || !readyAt(o, k)
		}
	}
	skipper := r.Skip.Has(k)
	// Latest mode resolves the runs already waiting at the stage among
	// themselves, so only a run not there yet holds a deploying run back.
	if nearest != nil && (m.cfg.mode == schedule.Queue || skipper || unready) {
		want = append(want, behind(nearest.ID))
	}
	if skipper {
		return want
	}
	for _, o := range m.s.Runs {
		if o.Stages[k] == schedule.Active {
			want = append(want, busy(o.ID))
		}
	}
	if m.s.Frozen {
		want = append(want, frozen())
	}
	st := m.s.Stages[k]
	if st.WindowClosed {
		want = append(want, window(st.WindowOpens))
	}
	alarms := slices.Clone(st.Alarms)
	slices.Sort(alarms)
	for _, a := range slices.Compact(alarms) {
		want = append(want, alarm(a))
	}
	if m.cfg.mode == schedule.Latest && !unready {
		// The newest run that would deploy here among those waiting right
		// behind this one, up to the first one not at the stage yet.
		var winner string
		for _, o := range m.s.Runs {
			if o.Order <= r.Order || stoppedRun(o) || o.Stages[k] != schedule.Pending {
				continue
			}
			if !readyAt(o, k) {
				break
			}
			if !o.Skip.Has(k) {
				winner = o.ID
			}
		}
		if winner != "" {
			want = append(want, newer(winner))
		}
	}
	return want
}

// drain clears every blocker and lets every execution succeed until
// nothing moves.
func (m *sim) drain() {
	m.logf("drain")
	m.s.Frozen = false
	for k := range m.s.Stages {
		m.s.Stages[k] = schedule.Stage{}
	}
	limit := len(m.s.Runs)*m.cfg.stages*2 + 4
	for i := 0; ; i++ {
		if i > limit {
			m.fatalf("still moving after %d rounds", limit)
		}
		m.step++
		applied := m.decide(false)
		finished := 0
		for _, r := range m.s.Runs {
			for k, st := range r.Stages {
				if st == schedule.Active {
					if err := m.s.Finish(r.ID, k, schedule.Passed); err != nil {
						m.fatalf("Finish: %v", err)
					}
					m.logf("finish %s@%d passed", r.ID, k)
					finished++
				}
			}
		}
		if applied == 0 && finished == 0 {
			return
		}
	}
}

// final checks that nothing is stuck and no run was lost.
func (m *sim) final() {
	d, err := schedule.Decide(m.s)
	if err != nil || len(d.Actions) > 0 || len(d.Waits) > 0 {
		m.fatalf("after draining: %+v, %v", d, err)
	}
	newest := len(m.s.Runs) - 1
	for i, r := range m.s.Runs {
		if !r.Done() {
			m.fatalf("%s is not done", r.ID)
		}
		complete := r.Current() == len(r.Stages)
		superseded := slices.Contains(r.Stages, schedule.Superseded)
		switch {
		case complete:
		case superseded && m.cfg.mode == schedule.Latest:
		case stoppedRun(r) && m.stopped && !superseded:
		default:
			m.fatalf("%s ended neither deployed nor superseded nor failed/cancelled", r.ID)
		}
		if m.cfg.mode == schedule.Queue && !m.stopped && !complete {
			m.fatalf("queue mode, all successes: %s did not reach the last stage", r.ID)
		}
		// Only a newer run supersedes, so the newest always gets through.
		if i == newest && !m.stopped && !complete {
			m.fatalf("the newest run %s did not reach the last stage", r.ID)
		}
	}
}

// propertySeeds fix the generated scenarios; each seed plays
// scenariosPerSeed event orders.
var propertySeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34}

const scenariosPerSeed = 375

func TestSchedulePropertyRandomEventOrders(t *testing.T) {
	per := scenariosPerSeed
	if testing.Short() {
		per = 50
	}
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 0x5c4ed))
			for i := range per {
				cfg := simConfig{
					name:     fmt.Sprintf("seed %d scenario %d", seed, i),
					mode:     schedule.Mode(r.IntN(2)),
					stages:   1 + r.IntN(4),
					maxRuns:  1 + r.IntN(25),
					failures: r.IntN(2) == 0,
					partial:  r.IntN(2) == 0,
				}
				sr := rand.New(rand.NewPCG(seed, uint64(i)))
				src := &randSource{r: sr, left: 10 + sr.IntN(120)}
				newSim(t, cfg, src).play()
			}
		})
	}
}

// FuzzSchedule drives the same simulation from the fuzzer's bytes: the
// first three pick the pipeline, every later byte picks events.
func FuzzSchedule(f *testing.F) {
	f.Add([]byte{0, 1, 4})
	f.Add([]byte{0, 2, 9, 0, 0, 3, 3, 0, 4, 4, 4, 4, 4})
	f.Add([]byte{1, 2, 9, 0, 0, 1, 0, 2, 3, 3, 3, 3, 3, 3})
	f.Add([]byte{7, 3, 20, 0, 5, 0, 1, 7, 8, 0, 9, 1, 1, 0, 3, 0, 3, 10, 2, 3, 4, 5, 11, 0, 6})
	f.Add([]byte{5, 0, 29, 0, 0, 0, 0, 0, 0, 9, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		// A thousand events already exhaust 30 runs many times over;
		// longer inputs only make minimizing a new input take minutes.
		if len(data) < 3 || len(data) > 1024 {
			return
		}
		cfg := simConfig{
			mode:     schedule.Mode(data[0] % 2),
			stages:   1 + int(data[1]%4),
			maxRuns:  1 + int(data[2]%30),
			failures: data[0]&2 != 0,
			partial:  data[0]&4 != 0,
		}
		newSim(t, cfg, &byteSource{b: data[3:]}).play()
	})
}

// equalState and equalDecision stand in for reflect.DeepEqual, which under
// the race detector would cost more than everything else in a step.
func equalState(a, b schedule.State) bool {
	if a.Mode != b.Mode || a.Frozen != b.Frozen || len(a.Stages) != len(b.Stages) || len(a.Runs) != len(b.Runs) {
		return false
	}
	for k := range a.Stages {
		x, y := a.Stages[k], b.Stages[k]
		if x.WindowClosed != y.WindowClosed || !x.WindowOpens.Equal(y.WindowOpens) || !slices.Equal(x.Alarms, y.Alarms) {
			return false
		}
	}
	for i := range a.Runs {
		x, y := a.Runs[i], b.Runs[i]
		if x.ID != y.ID || x.Order != y.Order || x.Skip != y.Skip || x.Cancelled != y.Cancelled ||
			!slices.Equal(x.Stages, y.Stages) {
			return false
		}
	}
	return true
}

func equalDecision(a, b schedule.Decision) bool {
	return slices.Equal(a.Actions, b.Actions) && slices.EqualFunc(a.Waits, b.Waits, func(x, y schedule.Wait) bool {
		return x.Run == y.Run && x.Stage == y.Stage && slices.Equal(x.Reasons, y.Reasons)
	})
}
