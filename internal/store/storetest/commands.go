package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shipbot/shipbot/internal/store"
)

var commandsCases = []testCase{
	{"RolloutByPR_newest_with_rollout", rolloutByPR},
	{"ReopenStage_from_states", reopenStage},
	{"ReopenStage_state_changed_changes_nothing", reopenStageChanged},
	{"ReopenStage_records_who", reopenStageWho},
	{"ReopenStage_concurrent_once", reopenStageConcurrent},
	{"ForceStage_pending_only", forceStage},
	{"Reenter_passed_stage", reenter},
	{"Reenter_state_changed_changes_nothing", reenterChanged},
	{"Reenter_concurrent_once", reenterConcurrent},
	{"NewerEntered", newerEntered},
	{"ActiveAt", activeAt},
	{"StageVersions_each_once_newest_first", stageVersions},
}

// The versions a stage ran before a rollout: deploys that succeeded there,
// newest first, each once (a retry deploys the same version again),
// neither failures, rollbacks, other stages nor later rollouts.
func stageVersions(e *env) {
	var rrs []store.RolloutRun
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		rrs = append(rrs, e.inRollout(fmt.Sprint("a", i), v, "qa", "prod"))
	}
	x0 := e.deployed(rrs[0], 1)
	rb := rollbackOf(x0, "0.9.0") // a rollback restores, it deploys nothing new
	e.must(e.s.Reenter(e.ctx, passed, []store.Execution{rb}))
	e.finish(rb, succeeded, rolledBack)
	x := e.enter(rrs[1], 1, 1)
	e.finish(x, failure, active)
	e.finish(e.enter(rrs[1], 1, 2), succeeded, passed) // retried: 1.1.0 once
	e.finish(e.enter(rrs[2], 1, 1), failure, failed)   // never ran
	e.deployed(rrs[3], 0)                              // qa only
	got, err := e.s.StageVersions(e.ctx, pk, 1, rrs[3].Order, 10)
	e.must(err)
	want := []store.Release{{Version: "1.1.0", Tag: "v1.1.0"}, {Version: "1.0.0", Tag: "v1.0.0"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.Errorf("StageVersions(prod, before 1.3.0) = %v; want %v", got, want)
	}
	if got, err := e.s.StageVersions(e.ctx, pk, 1, rrs[1].Order, 10); err != nil || fmt.Sprint(got) != fmt.Sprint(want[1:]) {
		e.Errorf("StageVersions(prod, before 1.1.0) = %v, %v; want only 1.0.0", got, err)
	}
	if got, err := e.s.StageVersions(e.ctx, pk, 1, rrs[3].Order, 1); err != nil || len(got) != 1 || got[0].Tag != "v1.1.0" {
		e.Errorf("StageVersions limit 1 = %v, %v; want the newest", got, err)
	}
}

func (e *env) active(runID string) bool {
	e.Helper()
	runs, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	return slices.Contains(runIDs(runs), runID)
}

func rolloutByPR(e *env) {
	byPR := func(repo string, pr int) (string, error) {
		e.Helper()
		rr, err := e.s.RolloutByPR(e.ctx, repo, pr)
		return rr.ID, err
	}
	e.newRun(repo, "x1", 7) // never released
	if _, err := byPR(repo, 7); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RolloutByPR of a PR whose run has no rollout = %v; want ErrNotFound", err)
	}
	tick()
	r1 := e.released(repo, "a1", 7, "1.0.0")
	e.start(r1, pk, "qa", "prod")
	if id, err := byPR(repo, 7); err != nil || id != r1.ID {
		e.Errorf("RolloutByPR = %s, %v; want %s", id, err, r1.ID)
	}
	if rr, _ := e.s.RolloutByPR(e.ctx, repo, 7); len(rr.Stages) != 2 || rr.PipelineKey != pk {
		e.Errorf("RolloutByPR gave %d stages, key %q; want the rollout with its stages", len(rr.Stages), rr.PipelineKey)
	}
	tick()
	r2 := e.released(repo, "a2", 7, "1.1.0")
	e.start(r2, pk, "qa", "prod")
	e.must(e.s.FinishRollout(e.ctx, r2.ID))
	tick()
	e.newRun(repo, "x2", 7) // newer, but no rollout
	if id, err := byPR(repo, 7); err != nil || id != r2.ID {
		e.Errorf("RolloutByPR = %s, %v; want the newest run that went into a rollout, %s (finished or not)", id, err, r2.ID)
	}
	if _, err := byPR(repo, 8); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RolloutByPR of another PR = %v; want ErrNotFound", err)
	}
	if _, err := byPR("acme/web", 7); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RolloutByPR of another repository's PR = %v; want ErrNotFound", err)
	}
}

func reopenStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod", "dr")
	e.setState(r.ID, 0, passed)
	e.setState(r.ID, 1, failed)
	e.setState(r.ID, 2, skipped)
	e.setState(r.ID, 3, skipped)
	e.must(e.s.FinishRollout(e.ctx, r.ID))

	e.must(e.s.ReopenStage(e.ctx, r.ID, 1, []stageState{rolledBack, failed}, "", ""))
	if got := e.states(r.ID); got != "[passed pending pending pending]" {
		e.Errorf("stages after ReopenStage = %s; want staging pending, the skipped ones after it too, qa kept", got)
	}
	if !e.active(r.ID) || e.rollout(r.ID).Rollout != store.RolloutActive {
		e.Error("the run is not back in its pipeline after ReopenStage")
	}
	st := e.stage(r.ID, 1)
	if st.DeployBy != "" || st.ForceBy != "" {
		e.Errorf("ReopenStage without names recorded deploy %q force %q", st.DeployBy, st.ForceBy)
	}
}

func reopenStageChanged(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod")
	e.setState(r.ID, 0, passed)
	e.setState(r.ID, 1, passed) // it passed meanwhile
	e.setState(r.ID, 2, skipped)
	e.must(e.s.FinishRollout(e.ctx, r.ID))
	err := e.s.ReopenStage(e.ctx, r.ID, 1, []stageState{failed}, "alice", "bob")
	if !errors.Is(err, store.ErrStateChanged) {
		e.Errorf("ReopenStage of a stage in another state = %v; want ErrStateChanged", err)
	}
	if got := e.states(r.ID); got != "[passed passed skipped]" {
		e.Errorf("stages after a refused ReopenStage = %s; want them untouched", got)
	}
	if e.active(r.ID) || e.rollout(r.ID).Rollout != store.RolloutDone {
		e.Error("a refused ReopenStage put the run back into its pipeline")
	}
	if st := e.stage(r.ID, 1); st.DeployBy != "" || st.ForceBy != "" {
		e.Errorf("a refused ReopenStage recorded deploy %q force %q", st.DeployBy, st.ForceBy)
	}
}

func reopenStageWho(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.setState(r.ID, 0, passed)
	e.setState(r.ID, 1, skipped)
	e.must(e.s.ReopenStage(e.ctx, r.ID, 1, []stageState{skipped}, "alice", ""))
	if st := e.stage(r.ID, 1); st.State != pending || st.DeployBy != "alice" || st.ForceBy != "" {
		e.Errorf("prod = %+v; want pending, deployed by alice", st)
	}
	e.must(e.s.ReopenStage(e.ctx, r.ID, 1, []stageState{pending}, "", "bob"))
	if st := e.stage(r.ID, 1); st.State != pending || st.DeployBy != "alice" || st.ForceBy != "bob" {
		e.Errorf("prod = %+v; want alice kept, forced by bob", st)
	}
}

func reopenStageConcurrent(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	e.setState(r.ID, 0, failed)
	const n = 8
	var mu sync.Mutex
	ok := 0
	parallel(n, func(i int) {
		// Two replicas (or one impatient person) retry the same stage.
		err := e.s.ReopenStage(e.ctx, r.ID, 0, []stageState{failed}, "", "")
		switch {
		case err == nil:
			mu.Lock()
			ok++
			mu.Unlock()
		case !errors.Is(err, store.ErrStateChanged):
			e.Error(err)
		}
	})
	if ok != 1 {
		e.Errorf("%d concurrent ReopenStage calls succeeded; want exactly 1", ok)
	}
}

func forceStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.enter(r, 0, 1)
	e.must(e.s.ForceStage(e.ctx, r.ID, 1, "carol"))
	if st := e.stage(r.ID, 1); st.ForceBy != "carol" || st.State != pending {
		e.Errorf("prod = %+v; want pending, forced by carol", st)
	}
	if err := e.s.ForceStage(e.ctx, r.ID, 0, "dave"); !errors.Is(err, store.ErrStateChanged) {
		e.Errorf("ForceStage of an active stage = %v; want ErrStateChanged", err)
	}
	if st := e.stage(r.ID, 0); st.ForceBy != "" {
		e.Errorf("a refused ForceStage recorded %q", st.ForceBy)
	}
}

func reenter(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa", "prod")
	e.deployed(r, 0)
	px := e.deployed(r, 1)
	e.setWait(r.ID, 1, someWait(1))
	e.must(e.s.FinishRollout(e.ctx, r.ID))

	rb := rollbackOf(px, "1.0.0")
	e.must(e.s.Reenter(e.ctx, passed, []store.Execution{rb}))
	if got := e.states(r.ID); got != "[passed active]" {
		e.Errorf("stages after Reenter = %s; want prod active", got)
	}
	e.checkWait(r.ID, 1, noWait, "after Reenter")
	if !e.active(r.ID) {
		e.Error("the run is not back in its pipeline after Reenter")
	}
	e.checkExecution(e.execution(r.ID, rb.ID), rb, "the re-entered execution")
	open, err := e.s.OpenExecutionsOf(e.ctx, pk)
	e.must(err)
	if len(open) != 1 || open[0].ID != rb.ID {
		e.Errorf("open executions = %d; want the rollback", len(open))
	}
}

func reenterChanged(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa", "prod")
	e.deployed(r, 0)
	px := e.deployed(r, 1)
	e.must(e.s.FinishRollout(e.ctx, r.ID))
	err := e.s.Reenter(e.ctx, failed, []store.Execution{rollbackOf(px, "1.0.0")})
	if !errors.Is(err, store.ErrStateChanged) {
		e.Errorf("Reenter from a state the stage is not in = %v; want ErrStateChanged", err)
	}
	if got := e.states(r.ID); got != "[passed passed]" {
		e.Errorf("stages = %s; want them untouched", got)
	}
	if got := e.executionIDs(r.ID); len(got) != 2 {
		e.Errorf("executions = %d; want no new one", len(got))
	}
	if e.active(r.ID) {
		e.Error("a refused Reenter put the run back into its pipeline")
	}
}

func reenterConcurrent(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa")
	x := e.deployed(r, 0)
	const n = 6
	var mu sync.Mutex
	ok := 0
	parallel(n, func(i int) {
		rb := rollbackOf(x, "1.0.0")
		rb.Attempt += i
		err := e.s.Reenter(e.ctx, passed, []store.Execution{rb})
		switch {
		case err == nil:
			mu.Lock()
			ok++
			mu.Unlock()
		case !errors.Is(err, store.ErrStateChanged):
			e.Error(err)
		}
	})
	if ok != 1 {
		e.Errorf("%d concurrent Reenter calls succeeded; want exactly 1", ok)
	}
	if got := e.executionIDs(r.ID); len(got) != 2 {
		e.Errorf("executions = %d; want the deploy and one rollback", len(got))
	}
}

func newerEntered(e *env) {
	a := e.inRollout("a", "1.0.0", "qa", "prod")
	b := e.inRollout("b", "1.1.0", "qa", "prod")
	c := e.inRollout("c", "1.2.0", "qa", "prod")
	w := e.released("acme/web", "w", 0, "9.0.0")
	e.start(w, "acme/web:web", "qa", "prod")
	wr := e.rollout(w.ID)

	e.deployed(a, 0)
	e.deployed(b, 0)
	// c entered qa only with a rollback (which deploys an older version).
	rb := rollbackOf(newExecution(c, 0, 0), "1.1.0")
	e.must(e.s.EnterStage(e.ctx, rb))
	e.deployed(wr, 0)
	e.deployed(wr, 1)

	check := func(r store.RolloutRun, idx int, want string) {
		e.Helper()
		tag, found, err := e.s.NewerEntered(e.ctx, pk, idx, r.Order)
		e.must(err)
		got := "none"
		if found {
			got = tag
		}
		if got != want {
			e.Errorf("NewerEntered(stage %d, newer than %s) = %s; want %s", idx, r.Tag, got, want)
		}
	}
	check(a, 0, "v1.1.0")
	check(b, 0, "none") // c's rollback does not count
	check(a, 1, "none") // another pipeline's prod does not count
	cx := e.enter(c, 0, 2)
	e.finish(cx, failure, failed)
	check(a, 0, "v1.2.0") // entered, though it failed
	check(b, 0, "v1.2.0")
	check(c, 0, "none")
}

func activeAt(e *env) {
	a := e.inRollout("a", "1.0.0", "qa", "prod")
	w := e.released("acme/web", "w", 0, "9.0.0")
	e.start(w, "acme/web:web", "qa", "prod")
	e.enter(e.rollout(w.ID), 1, 1) // another pipeline's prod

	at := func(idx int) string {
		e.Helper()
		x, ok, err := e.s.ActiveAt(e.ctx, pk, idx)
		e.must(err)
		if !ok {
			return "none"
		}
		return x.ID
	}
	if got := at(0); got != "none" {
		e.Errorf("ActiveAt(qa) before any deploy = %s", got)
	}
	x := e.enter(a, 0, 1)
	if got := at(0); got != x.ID {
		e.Errorf("ActiveAt(qa) = %s; want %s", got, x.ID)
	}
	if got := at(1); got != "none" {
		e.Errorf("ActiveAt(prod) = %s; want none (another pipeline's prod is busy, not this one's)", got)
	}
	x.Phase, x.Outcome = baking, succeeded
	e.must(e.s.UpdateExecution(e.ctx, x))
	if got := at(0); got != x.ID {
		e.Errorf("ActiveAt(qa) while baking = %s; want %s", got, x.ID)
	}
	e.finish(x, succeeded, passed)
	if got := at(0); got != "none" {
		e.Errorf("ActiveAt(qa) after the execution finished = %s; want none", got)
	}
}
