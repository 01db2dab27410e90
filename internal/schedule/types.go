package schedule

import (
	"fmt"
	"time"
)

// MaxStages bounds the stages of a pipeline so that a [StageSet] fits a word.
const MaxStages = 64

// Mode is a pipeline's concurrency mode.
type Mode uint8

const (
	// Queue deploys every version to every stage, in order.
	Queue Mode = iota
	// Latest lets the newest waiting run take a freed stage and supersedes
	// the older waiting ones.
	Latest
)

// ParseMode reads the configuration's concurrency value; empty is Queue, the
// configuration's default.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "queue":
		return Queue, nil
	case "latest":
		return Latest, nil
	}
	return 0, fmt.Errorf("schedule: unknown concurrency mode %q (want queue or latest)", s)
}

func (m Mode) String() string {
	switch m {
	case Queue:
		return "queue"
	case Latest:
		return "latest"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// StageState is where a run stands at one stage.
type StageState uint8

const (
	// Pending: not entered yet (waiting when it is the run's current stage).
	Pending StageState = iota
	// Active: the run occupies the unit (deploying, baking, rolling back).
	Active
	// Passed: the execution succeeded (bake included).
	Passed
	// Skipped by label; counts as passed for ordering.
	Skipped
	// Failed: the execution failed; the run stops.
	Failed
	// RolledBack: the execution failed or its bake alarmed and the previous
	// version was restored; the run stops.
	RolledBack
	// Superseded: a newer run took this stage in latest mode; the run stops
	// and every later stage reads Superseded too.
	Superseded
)

var stageStateNames = [...]string{"pending", "active", "passed", "skipped", "failed", "rolled-back", "superseded"}

func (s StageState) String() string {
	if int(s) < len(stageStateNames) {
		return stageStateNames[s]
	}
	return fmt.Sprintf("StageState(%d)", uint8(s))
}

// through reports whether a run at this state may go on to the next stage.
func (s StageState) through() bool { return s == Passed || s == Skipped }

// stops reports whether this state ends the run.
func (s StageState) stops() bool { return s == Failed || s == RolledBack || s == Superseded }

// StageSet is a set of stage indexes below [MaxStages].
type StageSet uint64

// SetOf returns the set of the given stages; indexes out of range are
// ignored, as [StageSet.Has] would never report them.
func SetOf(stages ...int) StageSet {
	var s StageSet
	for _, k := range stages {
		s = s.With(k)
	}
	return s
}

// Has reports whether stage k is in the set.
func (s StageSet) Has(k int) bool { return k >= 0 && k < MaxStages && s&(1<<uint(k)) != 0 }

// With returns the set plus stage k.
func (s StageSet) With(k int) StageSet {
	if k < 0 || k >= MaxStages {
		return s
	}
	return s | 1<<uint(k)
}

// Run is one version going through the pipeline.
type Run struct {
	ID string
	// Order is the version order: unique within the pipeline, higher is
	// newer.
	Order int64
	// Stages has one state per pipeline stage.
	Stages []StageState
	// Skip is the set of stages the run's labels skip now. Only stages the
	// run has not reached yet are affected by a change.
	Skip StageSet
	// Cancelled stops the run: it enters no further stage. An execution
	// already active stays active until finished.
	Cancelled bool
	// Force is the set of stages an admin forced the run into: there the
	// deploy window and firing alarms do not hold it (a freeze still does:
	// lifting a freeze is its own decision).
	Force StageSet
	// Approved is the set of stages someone approved the run into; a stage
	// that needs approval holds every run not in it (force does not pass
	// an approval: a person's decision is not a blocker to override).
	Approved StageSet
}

// Stopped reports whether the run will enter no further stage: cancelled,
// failed, rolled back or superseded.
func (r Run) Stopped() bool {
	if r.Cancelled {
		return true
	}
	for _, s := range r.Stages {
		if s.stops() {
			return true
		}
	}
	return false
}

// Current returns the run's current stage: the first one it has neither
// passed nor skipped, or len(r.Stages) once it went through them all.
func (r Run) Current() int {
	for k, s := range r.Stages {
		if !s.through() {
			return k
		}
	}
	return len(r.Stages)
}

// Complete reports whether the run passed or skipped every stage.
func (r Run) Complete() bool { return r.Current() == len(r.Stages) }

// Done reports whether the run is finished for good: complete or stopped,
// with no execution still active.
func (r Run) Done() bool {
	k := r.Current()
	if k < len(r.Stages) && r.Stages[k] == Active {
		return false
	}
	return k == len(r.Stages) || r.Stopped()
}

// Stage holds the facts that can keep a stage from admitting a run now. The
// zero value blocks nothing. The shell works them out at its own "now" (the
// window with window.Window's Contains and NextOpen, the alarms from their
// last check), so that deciding reads no clock.
type Stage struct {
	// WindowClosed: now is outside the stage's deploy window.
	WindowClosed bool
	// WindowOpens is the window's next opening, when known.
	WindowOpens time.Time
	// Alarms lists the stage's alarms that fire now (an unreachable alarm
	// counts as firing).
	Alarms []string
	// NeedsApproval: a run enters only once approved into the stage (see
	// Run.Approved).
	NeedsApproval bool
}

// State is one pipeline: its mode and blockers, and its runs. Runs may be in
// any order; decisions depend only on [Run.Order].
type State struct {
	Mode Mode
	// Frozen holds every new entry into every stage.
	Frozen bool
	// Stages has one entry per pipeline stage, in pipeline order.
	Stages []Stage
	Runs   []Run
}

// ActionKind is what an [Action] does.
type ActionKind uint8

const (
	// Enter starts the run's execution at the stage: the unit is taken.
	Enter ActionKind = iota + 1
	// Skip marks the stage skipped by label.
	Skip
	// Supersede stops the run from the stage on, in favour of a newer run.
	Supersede
)

func (k ActionKind) String() string {
	switch k {
	case Enter:
		return "enter"
	case Skip:
		return "skip"
	case Supersede:
		return "supersede"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one step [Decide] allows now.
type Action struct {
	Kind  ActionKind
	Run   string
	Stage int
}

func (a Action) String() string { return fmt.Sprintf("%s %s@%d", a.Kind, a.Run, a.Stage) }

// ReasonKind says what holds a waiting run.
type ReasonKind uint8

const (
	// Behind: an earlier run (Reason.Run, the nearest one) must reach the
	// stage first.
	Behind ReasonKind = iota + 1
	// Busy: the unit is occupied by Reason.Run.
	Busy
	// Frozen: the pipeline is frozen.
	Frozen
	// Window: the stage's deploy window is closed until Reason.Until (zero
	// when unknown).
	Window
	// Alarm: Reason.Alarm fires.
	Alarm
	// NewerWaiting is a forecast, not a hold: in latest mode the newer run
	// Reason.Run waits for the same stage and will supersede this one when
	// the stage frees. It comes last, after the reasons that hold the run.
	NewerWaiting
	// Approval: the stage needs a person's approval of this run. It comes
	// first: it is the one hold a person can lift at once, whatever else
	// the run waits for. (Declared last to keep the stored values of the
	// kinds before it.)
	Approval
)

func (k ReasonKind) String() string {
	switch k {
	case Behind:
		return "behind"
	case Busy:
		return "busy"
	case Frozen:
		return "frozen"
	case Window:
		return "window"
	case Alarm:
		return "alarm"
	case NewerWaiting:
		return "newer-waiting"
	case Approval:
		return "approval"
	}
	return fmt.Sprintf("ReasonKind(%d)", uint8(k))
}

// Reason is one thing a waiting run waits for.
type Reason struct {
	Kind  ReasonKind
	Run   string    // Behind, Busy, NewerWaiting
	Alarm string    // Alarm
	Until time.Time // Window
}

func (r Reason) String() string {
	switch r.Kind {
	case Behind:
		return "behind " + r.Run
	case Busy:
		return "busy with " + r.Run
	case Frozen:
		return "frozen"
	case Window:
		if r.Until.IsZero() {
			return "window closed"
		}
		return "window opens " + r.Until.Format(time.RFC3339)
	case Alarm:
		return "alarm " + r.Alarm + " firing"
	case NewerWaiting:
		return "newer " + r.Run + " waiting"
	case Approval:
		return "approval"
	}
	return r.Kind.String()
}

// Wait says why a run cannot go on at its current stage. Reasons come in
// this order: Approval, Behind, Busy, Frozen, Window, Alarm (sorted by
// name), NewerWaiting; the first is the main one. A run that skips the stage waits
// only for ordering, so its only reason is Behind.
type Wait struct {
	Run     string
	Stage   int
	Reasons []Reason
}

// Decision is what may happen now.
type Decision struct {
	// Actions, to be applied in this order.
	Actions []Action
	// Waits has one entry per run that, once the actions are applied, waits
	// at its current stage, in run order.
	Waits []Wait
}
