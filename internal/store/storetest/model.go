package storetest

import (
	"fmt"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// What the suite knows of the rollout model's types (stage states, waits,
// execution phases, outcomes and how an execution passed) is here and only
// here: a change to those types is a change to this file.

type (
	stageState = schedule.StageState
	outcomeT   = rollout.Outcome
	wait       = rollout.Wait
)

const (
	pending    = schedule.Pending
	active     = schedule.Active
	passed     = schedule.Passed
	skipped    = schedule.Skipped
	failed     = schedule.Failed
	rolledBack = schedule.RolledBack
	superseded = schedule.Superseded

	succeeded = rollout.Succeeded
	failure   = rollout.Failed

	triggering = store.PhaseTriggering
	deploying  = store.PhaseDeploying
	baking     = store.PhaseBaking
	finished   = store.PhaseFinished

	handedOff = rollout.HandedOff
)

// someWait is a wait the engine could record; n picks one of several
// kinds, so that a change from one wait to another is visible.
func someWait(n int) wait {
	switch n % 3 {
	case 0:
		return rollout.Wait{Kind: schedule.Behind, Tag: fmt.Sprintf("v1.%d.0", n)}
	case 1:
		return rollout.Wait{Kind: schedule.Window, Until: base.Add(time.Duration(n) * time.Hour)}
	default:
		return rollout.Wait{Kind: schedule.Frozen, Reason: fmt.Sprintf("incident %d", n)}
	}
}

// noWait is what a stage that waits for nothing holds.
var noWait = rollout.Wait{}

func (e *env) setWait(runID string, idx int, w wait) {
	e.Helper()
	e.must(e.s.SetWait(e.ctx, runID, idx, w))
}

// checkWait fails unless stage idx of the run waits for want.
func (e *env) checkWait(runID string, idx int, want wait, when string) {
	e.Helper()
	got := e.stage(runID, idx).Wait
	if diff := cmp.Diff(want, got, timeOpts); diff != "" {
		e.Errorf("%s: wait of stage %d (-want +got):\n%s", when, idx, diff)
	}
}

// newExecution is a fresh deploy (not a rollback) of r's version at stage
// idx, as the engine makes one before entering the stage.
func newExecution(r store.RolloutRun, idx, attempt int) store.Execution {
	name := fmt.Sprint("stage-", idx)
	if idx < len(r.Stages) {
		name = r.Stages[idx].Name
	}
	return store.Execution{
		ID: store.NewID(), RolloutID: r.ID, Stage: idx, StageName: name, Attempt: attempt,
		Version: r.Version, Tag: r.Tag, Phase: triggering, TokenHash: store.NewID(),
		Deadline: time.Now().Add(time.Hour).Truncate(time.Millisecond),
	}
}

// rollbackOf is the rollback that follows x at its stage: the next
// attempt, deploying version (tag "v"+version) back.
func rollbackOf(x store.Execution, version string) store.Execution {
	x.ID, x.TokenHash = store.NewID(), store.NewID()
	x.Attempt++
	x.Rollback = true
	x.Version, x.Tag = version, "v"+version
	x.Phase, x.Outcome, x.Pass, x.Reason, x.URL, x.EventID = triggering, "", "", "", "", ""
	return x
}

// isRollback reports whether x rolls its stage back.
func isRollback(x store.Execution) bool { return x.Rollback }

// checkExecution fails unless got is want as stored: every field the
// engine wrote, times to the millisecond; CreatedAt is the store's and
// only needs to be set.
func (e *env) checkExecution(got, want store.Execution, when string) {
	e.Helper()
	if !recent(got.CreatedAt) {
		e.Errorf("%s: execution %s created at %v; want the time it was recorded", when, got.ID, got.CreatedAt)
	}
	if got.Phase == finished && !recent(got.FinishedAt) {
		e.Errorf("%s: finished execution %s has finished time %v", when, got.ID, got.FinishedAt)
	}
	if got.Phase != finished && !got.FinishedAt.IsZero() {
		e.Errorf("%s: unfinished execution %s has finished time %v", when, got.ID, got.FinishedAt)
	}
	want.CreatedAt, want.FinishedAt = got.CreatedAt, got.FinishedAt
	if diff := cmp.Diff(want, got, timeOpts); diff != "" {
		e.Errorf("%s: execution (-want +got):\n%s", when, diff)
	}
}
