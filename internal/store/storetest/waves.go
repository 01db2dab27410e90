package storetest

import (
	"errors"
	"fmt"

	"github.com/shipbot/shipbot/internal/store"
)

// Waves and approvals: a wave stage's targets share an attempt, one
// execution each, entered and rolled back together; a stage that needs
// approval records who approved or rejected it.
var wavesCases = []testCase{
	{"EnterStage_wave_one_attempt_per_target", enterWave},
	{"EnterStage_wave_atomic", enterWaveAtomic},
	{"FinishExecution_wave_stage_stays_active", finishWaveTarget},
	{"FinishAndEnter_wave_rollback_every_target", finishAndEnterWave},
	{"ApproveStage_pending_only", approveStage},
	{"RejectStage_fails_pending_stage", rejectStage},
}

// wave is one attempt of stage idx of r, one execution per target.
func wave(r store.RolloutRun, idx, attempt int, targets ...string) []store.Execution {
	out := make([]store.Execution, len(targets))
	for i, t := range targets {
		out[i] = newExecution(r, idx, attempt)
		out[i].Target = t
	}
	return out
}

func enterWave(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	xs := wave(r, 1, 1, "eu", "us", "ap")
	e.must(e.s.EnterStage(e.ctx, xs...))
	if got := e.states(r.ID); got != "[pending active]" {
		e.Errorf("stages = %s; want prod active", got)
	}
	execs, err := e.s.Executions(e.ctx, r.ID)
	e.must(err)
	if len(execs) != 3 {
		e.Fatalf("executions = %d; want 3", len(execs))
	}
	for i, x := range xs {
		e.checkExecution(execs[i], x, fmt.Sprint("target ", x.Target, ", in the wave's order"))
	}
	// The same target twice in one attempt is one execution too many.
	dup := wave(r, 1, 1, "eu")
	if err := e.s.EnterStage(e.ctx, dup...); err == nil {
		e.Error("a second execution of target eu in attempt 1 was accepted")
	}
}

func enterWaveAtomic(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	xs := wave(r, 0, 1, "eu", "us")
	xs[1].TokenHash = xs[0].TokenHash // the second cannot be stored
	if err := e.s.EnterStage(e.ctx, xs...); err == nil {
		e.Fatal("EnterStage with a duplicate token succeeded")
	}
	if got := e.executionIDs(r.ID); len(got) != 0 {
		e.Errorf("executions after a failed wave entry = %v; want none", got)
	}
	if got := e.states(r.ID); got != "[pending]" {
		e.Errorf("stages = %s; want pending, nothing half done", got)
	}
}

func finishWaveTarget(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	xs := wave(r, 0, 1, "eu", "us")
	e.must(e.s.EnterStage(e.ctx, xs...))
	e.finish(xs[0], succeeded, active)
	if got := e.states(r.ID); got != "[active]" {
		e.Errorf("stage after one target = %s; want active", got)
	}
	open, err := e.s.OpenExecutionsOf(e.ctx, pk)
	e.must(err)
	if len(open) != 1 || open[0].ID != xs[1].ID {
		e.Errorf("open executions = %v; want us only", open)
	}
	e.finish(xs[1], succeeded, passed)
	if got := e.states(r.ID); got != "[passed]" {
		e.Errorf("stage after both targets = %s; want passed", got)
	}
}

func finishAndEnterWave(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa")
	xs := wave(r, 0, 1, "eu", "us")
	e.must(e.s.EnterStage(e.ctx, xs...))
	e.finish(xs[0], succeeded, active)
	rb := []store.Execution{rollbackOf(xs[0], "1.0.0"), rollbackOf(xs[1], "1.0.0")}
	xs[1].Outcome = failure
	e.must(e.s.FinishAndEnter(e.ctx, xs[1], rb))
	if got := e.states(r.ID); got != "[active]" {
		e.Errorf("stage = %s; want active while rolling back", got)
	}
	execs, err := e.s.Executions(e.ctx, r.ID)
	e.must(err)
	if len(execs) != 4 || execs[2].Target != "eu" || execs[3].Target != "us" || !execs[2].Rollback || execs[2].Attempt != 2 {
		e.Errorf("executions = %+v; want the two targets' rollbacks as attempt 2", execs)
	}
}

func approveStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.must(e.s.ApproveStage(e.ctx, r.ID, 1, "alice"))
	if st := e.stage(r.ID, 1); st.ApprovedBy != "alice" || st.State != pending {
		e.Errorf("prod = %+v; want pending, approved by alice", st)
	}
	e.enter(r, 0, 1)
	if err := e.s.ApproveStage(e.ctx, r.ID, 0, "bob"); !errors.Is(err, store.ErrStateChanged) {
		e.Errorf("ApproveStage of an active stage = %v; want ErrStateChanged", err)
	}
	if st := e.stage(r.ID, 0); st.ApprovedBy != "" {
		e.Errorf("a refused ApproveStage recorded %q", st.ApprovedBy)
	}
}

func rejectStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.setWait(r.ID, 1, someWait(1))
	e.must(e.s.RejectStage(e.ctx, r.ID, 1, "carol", "not on a Friday"))
	st := e.stage(r.ID, 1)
	if st.State != failed || st.RejectedBy != "carol" || st.Rejection != "not on a Friday" {
		e.Errorf("prod = %+v; want failed, rejected by carol with her reason", st)
	}
	e.checkWait(r.ID, 1, noWait, "after RejectStage")
	if err := e.s.RejectStage(e.ctx, r.ID, 1, "dave", ""); !errors.Is(err, store.ErrStateChanged) {
		e.Errorf("RejectStage of a failed stage = %v; want ErrStateChanged", err)
	}
	if st := e.stage(r.ID, 1); st.RejectedBy != "carol" {
		e.Errorf("a refused RejectStage changed who rejected: %q", st.RejectedBy)
	}
}
