package rollout

import (
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// StageView is one stage of a run as every view shows it: its state and
// wait, and the executions that tell its story.
type StageView struct {
	Stage
	// First and Latest are the stage's first and latest executions (a
	// retry or a rollback is a later one); nil before the stage started.
	First, Latest *Execution
	// Deployed is the latest execution of the run's own version, not a
	// rollback: what the stage deployed or tried to.
	Deployed *Execution
}

// Project lines up each stage with its executions. execs may hold any
// run's executions in creation order; those of other stages are ignored.
// The result shares execs' elements.
func Project(stages []Stage, execs []Execution) []StageView {
	out := make([]StageView, len(stages))
	for i, s := range stages {
		v := StageView{Stage: s}
		for j := range execs {
			ex := &execs[j]
			if ex.Stage != s.Index {
				continue
			}
			if v.First == nil {
				v.First = ex
			}
			v.Latest = ex
			if !ex.Rollback {
				v.Deployed = ex
			}
		}
		out[i] = v
	}
	return out
}

// Started reports whether the stage has an execution.
func (v StageView) Started() bool { return v.Latest != nil }

// Through reports whether the run went through the stage (passed or
// skipped).
func (v StageView) Through() bool { return v.State == schedule.Passed || v.State == schedule.Skipped }

// Stopped reports whether the stage ended the run's rollout there.
func (v StageView) Stopped() bool {
	return v.State == schedule.Failed || v.State == schedule.RolledBack || v.State == schedule.Superseded
}

// Alerting reports whether the stage is news a developer needs at once: it
// failed or rolled back, is rolling back, bakes, or is held by a blocker.
func (v StageView) Alerting() bool {
	switch v.State {
	case schedule.Pending:
		return v.Wait.Blocker()
	case schedule.Failed, schedule.RolledBack:
		return true
	case schedule.Active:
		ex := v.Latest
		return ex != nil && (ex.Rollback || ex.Outcome == Failed || ex.Phase == Baking)
	}
	return false
}

// HowPassed is how a passed stage's deploy passed (Learned for a stage
// that has not passed).
func (v StageView) HowPassed() Pass {
	if v.State != schedule.Passed || v.Deployed == nil {
		return Learned
	}
	return v.Deployed.Pass
}

// Words says the stage's state in plain words, as the PR's table does.
func (v StageView) Words() string {
	ex := v.Latest
	switch v.State {
	case schedule.Pending:
		if !v.Wait.None() {
			return v.Wait.Text()
		}
		return "queued"
	case schedule.Active:
		switch {
		case ex == nil:
			return "starting"
		case ex.Rollback:
			return "rolling back to " + ex.Tag
		case ex.Phase == Triggering && ex.Reason != "":
			return "triggering (retrying)"
		case ex.Phase == Triggering:
			return "triggering"
		case ex.Phase == Baking:
			return "baking until " + ex.BakeUntil.UTC().Format("15:04:05 MST")
		case ex.Phase == Finished && ex.Outcome == Failed:
			return "failed, rolling back"
		}
		return "deploying"
	case schedule.Passed:
		return "succeeded"
	case schedule.Skipped:
		return "skipped (label)"
	case schedule.Failed:
		if ex != nil && ex.Reason != "" {
			return "failed: " + ex.Reason
		}
		return "failed"
	case schedule.RolledBack:
		if ex != nil {
			return "rolled back to " + ex.Tag
		}
		return "rolled back"
	case schedule.Superseded:
		return "superseded by a newer version"
	}
	return v.State.String()
}

// Span is how long the stage has run: from its first execution to the end
// of its latest, or to now while that runs. ok is false before it started.
func (v StageView) Span(now time.Time) (start time.Time, d time.Duration, ok bool) {
	if v.First == nil {
		return time.Time{}, 0, false
	}
	end := v.Latest.FinishedAt
	if end.IsZero() {
		end = now
	}
	return v.First.CreatedAt, end.Sub(v.First.CreatedAt), true
}

// Tally counts a run's stages by state.
type Tally struct {
	Total, Pending, Active, Passed, Skipped, Failed, RolledBack, Superseded int
}

// Count tallies views.
func Count(views []StageView) Tally {
	t := Tally{Total: len(views)}
	for _, v := range views {
		switch v.State {
		case schedule.Pending:
			t.Pending++
		case schedule.Active:
			t.Active++
		case schedule.Passed:
			t.Passed++
		case schedule.Skipped:
			t.Skipped++
		case schedule.Failed:
			t.Failed++
		case schedule.RolledBack:
			t.RolledBack++
		case schedule.Superseded:
			t.Superseded++
		}
	}
	return t
}
