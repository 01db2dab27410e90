package rollout

import (
	"fmt"
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
	// Targets are a wave stage's executions of its latest attempt, one
	// per target in the stage's order; nil in a stage of one target.
	Targets []*Execution
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
			if v.Latest != nil && v.Latest.Attempt != ex.Attempt {
				v.Targets = v.Targets[:0]
			}
			v.Latest = ex
			if !ex.Rollback {
				v.Deployed = ex
			}
			if ex.Target != "" {
				v.Targets = append(v.Targets, ex)
			}
		}
		if v.Targets != nil {
			v.Latest = latestOf(v.Targets)
			v.Deployed = deployedOf(v.Deployed, execs, s.Index)
		}
		out[i] = v
	}
	return out
}

// latestOf is the execution that speaks for a wave's attempt: a failed
// one if any (the reason the stage fails), else one still running, else
// the last.
func latestOf(attempt []*Execution) *Execution {
	for _, ex := range attempt {
		if ex.Outcome == Failed {
			return ex
		}
	}
	for _, ex := range attempt {
		if ex.Phase != Finished {
			return ex
		}
	}
	return attempt[len(attempt)-1]
}

// deployedOf is a wave's Deployed: of the latest forward attempt, the
// failed target if any, else the last.
func deployedOf(last *Execution, execs []Execution, stage int) *Execution {
	if last == nil {
		return nil
	}
	var attempt []*Execution
	for j := range execs {
		if ex := &execs[j]; ex.Stage == stage && ex.Attempt == last.Attempt {
			attempt = append(attempt, ex)
		}
	}
	for _, ex := range attempt {
		if ex.Outcome == Failed {
			return ex
		}
	}
	return last
}

// Wave reports whether the stage deploys to several targets at once.
func (v StageView) Wave() bool { return v.Targets != nil }

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
		if v.Wave() {
			return v.waveWords()
		}
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
		if v.RejectedBy != "" {
			if v.Rejection != "" {
				return "rejected by @" + v.RejectedBy + ": " + v.Rejection
			}
			return "rejected by @" + v.RejectedBy
		}
		if v.Rejection != "" {
			// Failed before it deployed, for a reason no person gave
			// (a job, which cannot take an approval).
			return "failed: " + v.Rejection
		}
		if ex != nil && ex.Reason != "" {
			if ex.Target != "" {
				return "failed: " + ex.Target + ": " + ex.Reason
			}
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

// waveWords says where an active wave stands.
func (v StageView) waveWords() string {
	done, failed := 0, ""
	for _, ex := range v.Targets {
		if ex.Phase == Finished || ex.Phase == Baking {
			done++
		}
		if ex.Outcome == Failed && failed == "" {
			failed = ex.Target
		}
	}
	n := len(v.Targets)
	switch {
	case v.Latest.Rollback:
		return fmt.Sprintf("rolling back %d targets to %s", n, v.Latest.Tag)
	case failed != "":
		return fmt.Sprintf("failed on %s; waiting for the other targets (%d of %d done)", failed, done, n)
	}
	return fmt.Sprintf("deploying to %d targets (%d of %d done)", n, done, n)
}

// TargetWords says where one target of a wave stands, for the rows under
// the stage's.
func TargetWords(ex *Execution) string {
	switch {
	case ex.Phase == Finished && ex.Outcome == Succeeded && ex.Rollback:
		return "rolled back to " + ex.Tag
	case ex.Phase == Finished && ex.Outcome == Succeeded && ex.Pass == HandedOff:
		return "passed (handed off)"
	case ex.Phase == Finished && ex.Outcome == Succeeded && ex.Pass == DeployedBefore:
		return "passed (deployed before)"
	case ex.Phase == Finished && ex.Outcome == Succeeded:
		return "succeeded"
	case ex.Outcome == Failed && ex.Reason != "":
		return "failed: " + ex.Reason
	case ex.Outcome == Failed:
		return "failed"
	case ex.Phase == Baking:
		return "baking until " + ex.BakeUntil.UTC().Format("15:04:05 MST")
	case ex.Phase == Triggering:
		return "triggering"
	case ex.Rollback:
		return "rolling back to " + ex.Tag
	}
	return "deploying"
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
