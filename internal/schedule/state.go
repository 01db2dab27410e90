package schedule

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

var (
	// ErrInvalidState marks a state that breaks the model; see the package
	// documentation.
	ErrInvalidState = errors.New("schedule: invalid state")
	// ErrNotAllowed marks a transition the state does not allow.
	ErrNotAllowed = errors.New("schedule: transition not allowed")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidState, fmt.Sprintf(format, args...))
}

func notAllowed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotAllowed, fmt.Sprintf(format, args...))
}

// Validate reports the first way s breaks the model, wrapping
// [ErrInvalidState].
func (s State) Validate() error {
	_, _, err := s.index()
	return err
}

// index validates s and returns the positions of its runs sorted by order
// and, per sorted position, whether the run is stopped, so that Decide pays
// for sorting once.
func (s *State) index() (byOrder []int, stopped []bool, err error) {
	n := len(s.Stages)
	if n > MaxStages {
		return nil, nil, invalid("%d stages, at most %d", n, MaxStages)
	}
	if s.Mode > Latest {
		return nil, nil, invalid("unknown mode %d", s.Mode)
	}
	byOrder = make([]int, len(s.Runs))
	for i := range byOrder {
		byOrder[i] = i
	}
	slices.SortFunc(byOrder, func(a, b int) int { return cmp.Compare(s.Runs[a].Order, s.Runs[b].Order) })
	stopped = make([]bool, len(byOrder))
	// Sorting a second index by id finds duplicates without a map, which
	// would dominate the cost of a decision.
	byID := slices.Clone(byOrder)
	slices.SortFunc(byID, func(a, b int) int { return cmp.Compare(s.Runs[a].ID, s.Runs[b].ID) })
	for p := 1; p < len(byID); p++ {
		if id := s.Runs[byID[p]].ID; id == s.Runs[byID[p-1]].ID {
			return nil, nil, invalid("duplicate run id %q", id)
		}
	}
	for p, i := range byOrder {
		r := &s.Runs[i]
		if r.ID == "" {
			return nil, nil, invalid("run with order %d has no id", r.Order)
		}
		if p > 0 && s.Runs[byOrder[p-1]].Order == r.Order {
			return nil, nil, invalid("runs %s and %s share order %d", s.Runs[byOrder[p-1]].ID, r.ID, r.Order)
		}
		if len(r.Stages) != n {
			return nil, nil, invalid("run %s has %d stage states for %d stages", r.ID, len(r.Stages), n)
		}
		if err := checkShape(r.Stages); err != nil {
			return nil, nil, invalid("run %s: %v", r.ID, err)
		}
		stopped[p] = r.Stopped()
	}
	for k := range n {
		// Walking from the newest run down, any run that could still enter
		// stage k must not have a newer run that already reached it.
		var active, reached *Run
		for p := len(byOrder) - 1; p >= 0; p-- {
			r := &s.Runs[byOrder[p]]
			switch r.Stages[k] {
			case Active:
				if active != nil {
					return nil, nil, invalid("stage %d has two active executions: %s and %s", k, r.ID, active.ID)
				}
				active = r
				reached = r
			case Passed, Skipped, Failed, RolledBack:
				reached = r
			case Pending:
				if !stopped[p] && reached != nil {
					return nil, nil, invalid("run %s reached stage %d while earlier run %s still could", reached.ID, k, r.ID)
				}
			}
		}
	}
	return byOrder, stopped, nil
}

// checkShape checks a run's stage states read: passed or skipped stages,
// then at most one other state, then pending stages (superseded ones after a
// supersede).
func checkShape(ss []StageState) error {
	k := 0
	for k < len(ss) && ss[k].through() {
		k++
	}
	if k == len(ss) {
		return nil
	}
	cur := ss[k]
	if cur > Superseded {
		return fmt.Errorf("stage %d has unknown state %d", k, uint8(cur))
	}
	// A supersede covers the stage and every later one; anything else
	// leaves the later stages untouched.
	rest := Pending
	if cur == Superseded {
		rest = Superseded
	}
	for j := k + 1; j < len(ss); j++ {
		if ss[j] != rest {
			return fmt.Errorf("stage %d is %s after stage %d is %s", j, ss[j], k, cur)
		}
	}
	return nil
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := s
	c.Stages = slices.Clone(s.Stages)
	for k := range c.Stages {
		c.Stages[k].Alarms = slices.Clone(c.Stages[k].Alarms)
	}
	c.Runs = slices.Clone(s.Runs)
	for i := range c.Runs {
		c.Runs[i].Stages = slices.Clone(c.Runs[i].Stages)
	}
	return c
}

func (s *State) run(id string) (*Run, error) {
	for i := range s.Runs {
		if s.Runs[i].ID == id {
			if len(s.Runs[i].Stages) != len(s.Stages) {
				return nil, notAllowed("run %s has %d stage states for %d stages", id, len(s.Runs[i].Stages), len(s.Stages))
			}
			return &s.Runs[i], nil
		}
	}
	return nil, notAllowed("unknown run %q", id)
}

// AddRun adds a new run with every stage pending. Its order must be above
// every existing run's: a run that arrives late could not enter the stages a
// newer run already reached without breaking version order.
func (s *State) AddRun(id string, order int64, skip StageSet) error {
	if id == "" {
		return notAllowed("run without id")
	}
	for _, r := range s.Runs {
		if r.ID == id {
			return notAllowed("run %s exists", id)
		}
		if r.Order >= order {
			return notAllowed("run %s has order %d, not above run %s's %d", id, order, r.ID, r.Order)
		}
	}
	s.Runs = append(s.Runs, Run{ID: id, Order: order, Stages: make([]StageState, len(s.Stages)), Skip: skip})
	return nil
}

// Apply carries out one action on s. It refuses, wrapping [ErrNotAllowed]
// and leaving s unchanged, any action that would break the model: entering a
// busy unit, reaching a stage out of version order or before the previous
// one was passed or skipped, acting on a stopped run. It does not look at
// freeze, windows or alarms, which hold decisions, not states.
func (s *State) Apply(a Action) error {
	r, err := s.run(a.Run)
	if err != nil {
		return err
	}
	k := a.Stage
	if k < 0 || k >= len(s.Stages) {
		return notAllowed("%s: no stage %d", a, k)
	}
	switch {
	case r.Stopped():
		return notAllowed("%s: run is stopped", a)
	case r.Stages[k] != Pending:
		return notAllowed("%s: stage is %s", a, r.Stages[k])
	case k > 0 && !r.Stages[k-1].through():
		return notAllowed("%s: stage %d is %s", a, k-1, r.Stages[k-1])
	}
	switch a.Kind {
	case Enter, Skip:
		for i := range s.Runs {
			o := &s.Runs[i]
			if len(o.Stages) != len(s.Stages) {
				return notAllowed("run %s has %d stage states for %d stages", o.ID, len(o.Stages), len(s.Stages))
			}
			if a.Kind == Enter && o.Stages[k] == Active {
				return notAllowed("%s: unit busy with %s", a, o.ID)
			}
			if o.Order < r.Order && o.Stages[k] == Pending && !o.Stopped() {
				return notAllowed("%s: earlier run %s could still enter", a, o.ID)
			}
		}
		if a.Kind == Enter {
			r.Stages[k] = Active
		} else {
			r.Stages[k] = Skipped
		}
	case Supersede:
		for j := k; j < len(r.Stages); j++ {
			r.Stages[j] = Superseded
		}
	default:
		return notAllowed("unknown action kind %d", a.Kind)
	}
	return nil
}

// Finish records the end of run's active execution at stage: Passed (bake
// included), Failed or RolledBack. A cancelled run's execution finishes the
// same way; it still goes no further.
func (s *State) Finish(run string, stage int, outcome StageState) error {
	if outcome != Passed && outcome != Failed && outcome != RolledBack {
		return notAllowed("finish %s@%d: outcome %s", run, stage, outcome)
	}
	r, err := s.run(run)
	if err != nil {
		return err
	}
	if stage < 0 || stage >= len(r.Stages) || r.Stages[stage] != Active {
		return notAllowed("finish %s@%d: not active", run, stage)
	}
	r.Stages[stage] = outcome
	return nil
}

// Cancel stops run; cancelling twice is harmless.
func (s *State) Cancel(run string) error {
	r, err := s.run(run)
	if err != nil {
		return err
	}
	r.Cancelled = true
	return nil
}
