// Package rollout is the typed model of where a released version stands in
// its pipeline: each stage's state, what it waits for, and each stage
// execution's phase, outcome and how it passed. The engine writes it, the
// store persists it as it is (states and phases by name, waits as JSON),
// and every view (the PR's check run and comment, the dashboard, Action
// mode's step summary, the API) reads it through one projection, Project,
// and renders words only at the end, with Wait.Text and StageView.Words.
//
// Stage states are the scheduler's (schedule.StageState): the scheduler
// decides them, this package describes them.
package rollout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// Phase is how far one stage execution has got.
type Phase string

const (
	Triggering Phase = "triggering" // created; the trigger has not been accepted yet
	Deploying  Phase = "deploying"  // accepted; waiting for the outcome
	Baking     Phase = "baking"     // succeeded; watching alarms before promotion
	Finished   Phase = "finished"
)

// Outcome is what an execution came to; empty until known.
type Outcome string

const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
)

// ParseOutcome reads a downstream's reported state.
func ParseOutcome(s string) (Outcome, error) {
	switch o := Outcome(s); o {
	case Succeeded, Failed:
		return o, nil
	}
	return "", fmt.Errorf("outcome %q: want %q or %q", s, Succeeded, Failed)
}

// Pass says how a succeeded execution passed without the engine learning
// its deploy's outcome. The zero value is an outcome learned (callback,
// polling) as usual.
type Pass string

const (
	// Learned: the outcome was reported or polled.
	Learned Pass = ""
	// HandedOff: the trigger was accepted and the downstream owns the
	// outcome (Action mode on a runner no callback can reach).
	HandedOff Pass = "handed-off"
	// DeployedBefore: another process (an earlier job, a re-run) had
	// deployed the version to the stage already.
	DeployedBefore Pass = "deployed-before"
)

// Wait is why a run cannot go on at its current stage, as the engine last
// worked it out: the scheduler's main reason, with run ids resolved to the
// versions people know.
type Wait struct {
	Kind schedule.ReasonKind `json:"kind"`
	// Tag is the version it waits behind (Behind), the one the stage is
	// deploying (Busy) or the newer one that will supersede it
	// (NewerWaiting).
	Tag string `json:"tag,omitempty"`
	// Stage is the stage's name, for Busy.
	Stage string `json:"stage,omitempty"`
	// Alarm is the firing alarm (Alarm).
	Alarm string `json:"alarm,omitempty"`
	// Until is the deploy window's next opening (Window); zero when not
	// known.
	Until time.Time `json:"until,omitzero"`
	// Reason is the freeze's reason (Frozen), from whoever froze it.
	Reason string `json:"reason,omitempty"`
	// Approve is the stage as an approval command names it (Approval):
	// "prod", or "api/prod" in a repository of several pipelines.
	Approve string `json:"approve,omitempty"`
}

// Equal reports whether w and o say the same. Compare waits with it, not
// ==: a window's opening read back from the store is the same instant in
// another location, which == tells apart.
func (w Wait) Equal(o Wait) bool {
	if !w.Until.Equal(o.Until) {
		return false
	}
	w.Until, o.Until = time.Time{}, time.Time{}
	return w == o
}

// None reports whether w holds nothing.
func (w Wait) None() bool { return w.Kind == 0 }

// Blocker reports whether the wait is for a blocker (a frozen pipeline, a
// closed window, a firing alarm, a missing approval) rather than the run's
// turn. Blockers can last hours: a developer needs them explained at once.
func (w Wait) Blocker() bool {
	switch w.Kind {
	case schedule.Frozen, schedule.Window, schedule.Alarm, schedule.Approval:
		return true
	}
	return false
}

// Text says the wait in words, for people.
func (w Wait) Text() string {
	switch w.Kind {
	case 0:
		return ""
	case schedule.Behind:
		return "waiting behind " + w.Tag
	case schedule.Busy:
		return fmt.Sprintf("waiting: %s is deploying %s", w.Stage, w.Tag)
	case schedule.Frozen:
		if w.Reason != "" {
			return "waiting: pipeline frozen (" + w.Reason + ")"
		}
		return "waiting: pipeline frozen"
	case schedule.Window:
		if w.Until.IsZero() {
			return "waiting for the deploy window"
		}
		return "waiting for the deploy window, opens " + w.Until.UTC().Format("Mon 2006-01-02 15:04 MST")
	case schedule.Alarm:
		return "waiting: alarm " + w.Alarm + " firing"
	case schedule.NewerWaiting:
		return "waiting; " + w.Tag + " will supersede it"
	case schedule.Approval:
		if w.Approve == "" {
			return "waiting for approval"
		}
		return `waiting for approval: comment "/shipbot approve ` + w.Approve + `"`
	}
	return "waiting"
}

// MarshalWait is how a wait is stored: JSON, or empty for none.
func MarshalWait(w Wait) (string, error) {
	if w.None() {
		return "", nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("encode wait: %w", err)
	}
	return string(b), nil
}

// UnmarshalWait reads a stored wait.
func UnmarshalWait(s string) (Wait, error) {
	var w Wait
	if s == "" {
		return w, nil
	}
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return Wait{}, fmt.Errorf("decode wait %q: %w", s, err)
	}
	return w, nil
}

// ParseStageState reads a stage state by its name, as the store keeps it.
func ParseStageState(s string) (schedule.StageState, error) {
	for st := schedule.Pending; st <= schedule.Superseded; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown stage state %q", s)
}

// Stage is where a run stands at one stage of its pipeline.
type Stage struct {
	Index     int
	Name      string
	State     schedule.StageState
	Wait      Wait // what it waits for, when pending
	UpdatedAt time.Time
	// DeployBy is who had the stage deployed although a label skips it.
	DeployBy string
	// ForceBy is who forced the stage past its window and alarms.
	ForceBy string
	// ApprovedBy is who approved the run into a stage that needs approval.
	ApprovedBy string
	// RejectedBy is who rejected the run at such a stage (it is then
	// Failed), with their reason. A Rejection without RejectedBy is a
	// stage failed for want of an approval nobody could give (a job).
	RejectedBy, Rejection string
}

// Execution is one deploy (or rollback) of a stage.
type Execution struct {
	ID string
	// RolloutID is the id of the rollout the execution belongs to. A
	// run's first rollout has the run's id, so for a single-pipeline merge
	// it is the run's too (what payloads and the API call run_id).
	RolloutID string
	Stage     int
	StageName string
	// Target is the wave target this execution deploys to, "" in a stage
	// of one target. A wave's targets share each attempt.
	Target   string
	Attempt  int
	Rollback bool
	Version  string
	Tag      string
	Phase    Phase
	Outcome  Outcome
	Pass     Pass
	// Reason says in words why it failed, why a trigger is being retried,
	// or how it passed when Pass is not Learned.
	Reason     string
	TokenHash  string
	EventID    string
	URL        string
	Deadline   time.Time
	BakeUntil  time.Time
	NextCheck  time.Time
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Settle says what one attempt of a stage comes to: its executions, one
// per target in a wave (just one otherwise). The stage is settled once
// every execution finished; it failed if any failed. A wave's failed
// target does not stop the others: they are left to finish, and only then
// is the stage failed (or rolled back, every target).
func Settle(attempt []Execution) (settled, failed bool) {
	settled = true
	for _, ex := range attempt {
		if ex.Phase != Finished {
			settled = false
		}
		if ex.Outcome == Failed {
			failed = true
		}
	}
	return settled, failed
}
