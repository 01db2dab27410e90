package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

var rolloutsCases = []testCase{
	{"StartRollout_last_in_order_stages_pending", startRollout},
	{"StartRollout_idempotent_keeps_order", startRolloutIdempotent},
	{"StartRollout_concurrent_distinct_orders", startRolloutConcurrent},
	{"StartRollout_concurrent_same_run_once", startRolloutConcurrentSameRun},
	{"SetLabels_by_pull_request", setLabels},
	{"PipelinesWithRollouts_active_only", pipelinesWithRollouts},
	{"LoadRollout_active_runs_in_order", loadRollout},
	{"GetRollout_unknown", getRolloutUnknown},
	{"SetStageState_one_stage", setStageState},
	{"SetStageStatesFrom_idx_and_later", setStageStatesFrom},
	{"SetWait_recorded_per_stage", setWaitPerStage},
	{"stage_state_change_clears_wait", stateChangeClearsWait},
	{"EnterStage_records_execution", enterStage},
	{"EnterStage_one_execution_per_attempt_atomic", enterStageOnePerAttempt},
	{"NextAttempt_per_stage", nextAttempt},
	{"UpdateExecution_writes_engine_view", updateExecution},
	{"UpdateExecution_never_clears_reported_outcome", updateExecutionKeepsOutcome},
	{"FinishExecution_records_outcome_and_stage", finishExecution},
	{"FinishExecution_once", finishExecutionOnce},
	{"FinishExecution_concurrent_once", finishExecutionConcurrent},
	{"FinishAndEnter_finishes_and_enters", finishAndEnter},
	{"FinishAndEnter_already_finished_enters_nothing", finishAndEnterFinished},
	{"FinishAndEnter_atomic", finishAndEnterAtomic},
	{"OpenExecutions_unfinished_oldest_first", openExecutions},
	{"ReportOutcome_once", reportOutcomeOnce},
	{"ReportOutcome_only_while_waiting_for_one", reportOutcomeWaitingOnly},
	{"ReportOutcome_concurrent_one_wins", reportOutcomeConcurrent},
	{"RunByTag", runByTag},
	{"ExecutionByToken", executionByToken},
	{"Executions_by_stage_then_attempt", executionsOrder},
	{"LastDeployed_skips_rollbacks_and_newer", lastDeployed},
	{"FinishRollout_leaves_pipeline", finishRollout},
}

func startRollout(e *env) {
	r1 := e.released(repo, "a1", 1, "1.0.0")
	r2 := e.released(repo, "b2", 2, "1.1.0")
	_, o1, err := e.s.StartRollout(e.ctx, r1.ID, pk, r1.Release(), []byte("stages: [qa, prod]\n"), []string{"no-deploy-to-prod"}, []string{"qa", "prod"})
	e.must(err)
	o2 := e.start(r2, pk, "qa", "prod")
	if o2 <= o1 {
		e.Errorf("orders %d then %d; want the later run last", o1, o2)
	}
	runs, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	if fmt.Sprint(runIDs(runs)) != fmt.Sprint([]string{r1.ID, r2.ID}) {
		e.Fatalf("LoadRollout = %v; want [%s %s]", runIDs(runs), r1.ID, r2.ID)
	}
	got := runs[0]
	if got.PipelineKey != pk || got.Order != o1 || got.Rollout != store.RolloutActive || string(got.Config) != "stages: [qa, prod]\n" ||
		fmt.Sprint(got.Labels) != "[no-deploy-to-prod]" {
		e.Errorf("rollout run = key %q order %d rollout %q config %q labels %v; want %q %d active, its config and labels",
			got.PipelineKey, got.Order, got.Rollout, got.Config, got.Labels, pk, o1)
	}
	if got.Tag != "v1.0.0" || got.Version != "1.0.0" || got.SHA != "a1" || got.PR != 1 || got.State != store.RunReleased {
		e.Errorf("rollout run carries run %+v; want the released run", got.Run)
	}
	if len(got.Stages) != 2 {
		e.Fatalf("stages %+v; want qa and prod", got.Stages)
	}
	for i, name := range []string{"qa", "prod"} {
		st := got.Stages[i]
		if st.Index != i || st.Name != name || st.State != pending || !st.Wait.None() || st.DeployBy != "" || st.ForceBy != "" || !recent(st.UpdatedAt) {
			e.Errorf("stage %d = %+v; want %s, pending, waiting for nothing", i, st, name)
		}
	}
	if one := e.rollout(r1.ID); one.Order != o1 || len(one.Stages) != 2 || one.PipelineKey != pk {
		e.Errorf("GetRollout = order %d, %d stages, key %q; want what LoadRollout says", one.Order, len(one.Stages), one.PipelineKey)
	}
}

func startRolloutIdempotent(e *env) {
	r1 := e.released(repo, "a1", 0, "1.0.0")
	r2 := e.released(repo, "b2", 0, "1.1.0")
	o1 := e.start(r1, pk, "qa", "prod")
	e.start(r2, pk, "qa", "prod")
	e.setState(r1.ID, 0, active)
	// A retry after a crash (the engine does not know its first call
	// committed).
	again := e.start(r1, pk, "qa", "prod")
	if again != o1 {
		e.Errorf("StartRollout again = order %d; want its first %d", again, o1)
	}
	runs, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	if fmt.Sprint(runIDs(runs)) != fmt.Sprint([]string{r1.ID, r2.ID}) {
		e.Errorf("LoadRollout = %v; want r1 still before r2", runIDs(runs))
	}
	if got := e.states(r1.ID); got != "[active pending]" {
		e.Errorf("stages of r1 after the retry = %s; want them kept, not duplicated or reset: [active pending]", got)
	}
}

func startRolloutConcurrent(e *env) {
	const n = 8
	runs := make([]store.Run, n)
	for i := range n {
		runs[i] = e.released(repo, fmt.Sprint("s", i), 0, fmt.Sprintf("1.%d.0", i))
	}
	orders := make([]int64, n)
	parallel(n, func(i int) {
		_, o, err := e.s.StartRollout(e.ctx, runs[i].ID, pk, runs[i].Release(), nil, nil, []string{"qa"})
		if err != nil {
			e.Error(err)
		}
		orders[i] = o
	})
	sortedOrders := slices.Clone(orders)
	slices.Sort(sortedOrders)
	if len(slices.Compact(sortedOrders)) != n {
		e.Errorf("concurrent StartRollout gave orders %v; want %d distinct", orders, n)
	}
	loaded, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	if len(loaded) != n {
		e.Fatalf("LoadRollout = %d runs; want %d", len(loaded), n)
	}
	for i := 1; i < n; i++ {
		if loaded[i].Order <= loaded[i-1].Order {
			e.Errorf("LoadRollout orders %d then %d; want increasing", loaded[i-1].Order, loaded[i].Order)
		}
	}
}

func startRolloutConcurrentSameRun(e *env) {
	r := e.released(repo, "a1", 0, "1.0.0")
	const n = 6
	orders := make([]int64, n)
	parallel(n, func(i int) {
		_, o, err := e.s.StartRollout(e.ctx, r.ID, pk, r.Release(), nil, nil, []string{"qa", "prod"})
		if err != nil {
			e.Error(err)
		}
		orders[i] = o
	})
	for _, o := range orders {
		if o != orders[0] {
			e.Errorf("concurrent StartRollout of one run gave orders %v; want one", orders)
			break
		}
	}
	if got := e.rollout(r.ID); len(got.Stages) != 2 || got.Order != orders[0] {
		e.Errorf("run has order %d and %d stages; want %d and 2", got.Order, len(got.Stages), orders[0])
	}
	if runs, err := e.s.LoadRollout(e.ctx, pk); err != nil || len(runs) != 1 {
		e.Errorf("LoadRollout = %d runs, %v; want the one run once", len(runs), err)
	}
}

func setLabels(e *env) {
	r7 := e.released(repo, "a1", 7, "1.0.0")
	r8 := e.released(repo, "b2", 8, "1.1.0")
	w7 := e.released("acme/web", "c3", 7, "2.0.0")
	for _, r := range []store.Run{r7, r8} {
		_, _, err := e.s.StartRollout(e.ctx, r.ID, pk, r.Release(), nil, []string{"keep"}, []string{"qa"})
		e.must(err)
	}
	_, _, err := e.s.StartRollout(e.ctx, w7.ID, "acme/web:web", w7.Release(), nil, []string{"keep"}, []string{"qa"})
	e.must(err)

	e.must(e.s.SetLabels(e.ctx, repo, 7, []string{"no-deploy-to-prod", "semver:minor"}))
	if got := e.rollout(r7.ID).Labels; fmt.Sprint(got) != "[no-deploy-to-prod semver:minor]" {
		e.Errorf("labels of PR 7's run = %v; want the new ones", got)
	}
	if got := e.rollout(r8.ID).Labels; fmt.Sprint(got) != "[keep]" {
		e.Errorf("labels of PR 8's run = %v; want its own kept", got)
	}
	if got := e.rollout(w7.ID).Labels; fmt.Sprint(got) != "[keep]" {
		e.Errorf("labels of another repository's PR 7 = %v; want its own kept", got)
	}
	e.must(e.s.SetLabels(e.ctx, repo, 7, nil))
	if got := e.rollout(r7.ID).Labels; len(got) != 0 {
		e.Errorf("labels after removing them all = %v; want none", got)
	}
}

func pipelinesWithRollouts(e *env) {
	if got, err := e.s.PipelinesWithRollouts(e.ctx); err != nil || len(got) != 0 {
		e.Fatalf("PipelinesWithRollouts of an empty store = %v, %v", got, err)
	}
	a1 := e.released(repo, "a1", 0, "1.0.0")
	a2 := e.released(repo, "a2", 0, "1.1.0")
	w := e.released("acme/web", "w1", 0, "1.0.0")
	o := e.released("acme/ops", "o1", 0, "1.0.0")
	e.start(a1, pk, "qa")
	e.start(a2, pk, "qa")
	e.start(w, "acme/web:web", "qa")
	e.start(o, "acme/ops:ops", "qa")
	e.must(e.s.FinishRollout(e.ctx, o.ID))
	e.must(e.s.FinishRollout(e.ctx, a1.ID))
	got, err := e.s.PipelinesWithRollouts(e.ctx)
	e.must(err)
	if fmt.Sprint(sorted(got)) != "[acme/api:api acme/web:web]" {
		e.Errorf("PipelinesWithRollouts = %v; want those with active runs, once each: [acme/api:api acme/web:web]", got)
	}
}

func loadRollout(e *env) {
	r1 := e.inRollout("a1", "1.0.0", "qa", "staging", "prod")
	r2 := e.inRollout("a2", "1.1.0", "qa", "staging", "prod")
	r3 := e.inRollout("a3", "1.2.0", "qa", "staging", "prod")
	w := e.released("acme/web", "w1", 0, "9.0.0")
	e.start(w, "acme/web:web", "prod")
	e.setState(r3.ID, 1, passed)
	e.must(e.s.FinishRollout(e.ctx, r2.ID))

	runs, err := e.s.LoadRollout(e.ctx, pk)
	e.must(err)
	if fmt.Sprint(runIDs(runs)) != fmt.Sprint([]string{r1.ID, r3.ID}) {
		e.Fatalf("LoadRollout = %v; want the active runs in order [r1 r3]", runIDs(runs))
	}
	for _, rr := range runs {
		if len(rr.Stages) != 3 {
			e.Fatalf("run %s has %d stages; want 3", rr.ID, len(rr.Stages))
		}
		for i, st := range rr.Stages {
			if st.Index != i || st.Name != []string{"qa", "staging", "prod"}[i] {
				e.Errorf("stages of %s = %+v; want qa, staging, prod by index", rr.ID, rr.Stages)
				break
			}
		}
	}
	if got := runs[1].Stages[1].State; got != passed {
		e.Errorf("r3 staging = %v; want passed", got)
	}
	if none, err := e.s.LoadRollout(e.ctx, "acme/none:none"); err != nil || len(none) != 0 {
		e.Errorf("LoadRollout of a pipeline without runs = %d runs, %v", len(none), err)
	}
	done := e.rollout(r2.ID)
	if done.Rollout != store.RolloutDone || len(done.Stages) != 3 {
		e.Errorf("GetRollout of a finished rollout = %q with %d stages; want done, stages kept", done.Rollout, len(done.Stages))
	}
}

func getRolloutUnknown(e *env) {
	if _, err := e.s.GetRollout(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("GetRollout(unknown) = %v; want ErrNotFound", err)
	}
}

func setStageState(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod")
	other := e.inRollout("a2", "1.1.0", "qa", "staging", "prod")
	e.setState(r.ID, 1, passed)
	if got := e.states(r.ID); got != "[pending passed pending]" {
		e.Errorf("stages = %s; want only staging passed", got)
	}
	e.setState(r.ID, 1, rolledBack)
	if got := e.states(r.ID); got != "[pending rolled-back pending]" {
		e.Errorf("stages = %s; want staging rolled-back", got)
	}
	if got := e.states(other.ID); got != "[pending pending pending]" {
		e.Errorf("another run's stages = %s; want untouched", got)
	}
}

func setStageStatesFrom(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod")
	e.setState(r.ID, 0, passed)
	e.must(e.s.SetStageStatesFrom(e.ctx, r.ID, 1, superseded))
	if got := e.states(r.ID); got != "[passed superseded superseded]" {
		e.Errorf("stages = %s; want staging and after superseded, qa kept", got)
	}
}

func setWaitPerStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	other := e.inRollout("a2", "1.1.0", "qa", "prod")
	e.setWait(r.ID, 1, someWait(1))
	e.checkWait(r.ID, 1, someWait(1), "after SetWait")
	e.checkWait(r.ID, 0, noWait, "another stage")
	e.checkWait(other.ID, 1, noWait, "another run")
	e.setWait(r.ID, 1, someWait(1)) // the same again: no change
	e.checkWait(r.ID, 1, someWait(1), "after the same SetWait")
	for n := 2; n <= 3; n++ {
		e.setWait(r.ID, 1, someWait(n))
		e.checkWait(r.ID, 1, someWait(n), "after a new wait")
	}
	e.setWait(r.ID, 1, noWait)
	e.checkWait(r.ID, 1, noWait, "after SetWait of none")
	if st := e.stage(r.ID, 1).State; st != pending {
		e.Errorf("SetWait changed the stage's state to %v", st)
	}
}

func stateChangeClearsWait(e *env) {
	// A wait is why a stage has not moved yet: whatever moves it says the
	// old reason no more.
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod", "dr")
	e.setWait(r.ID, 0, someWait(1))
	e.setState(r.ID, 0, skipped)
	e.checkWait(r.ID, 0, noWait, "after SetStageState")

	e.setWait(r.ID, 2, someWait(2))
	e.setWait(r.ID, 3, someWait(3))
	e.must(e.s.SetStageStatesFrom(e.ctx, r.ID, 2, superseded))
	e.checkWait(r.ID, 2, noWait, "after SetStageStatesFrom")
	e.checkWait(r.ID, 3, noWait, "after SetStageStatesFrom, a later stage")

	e.setWait(r.ID, 1, someWait(4))
	x := e.enter(r, 1, 1)
	e.checkWait(r.ID, 1, noWait, "after EnterStage")
	e.setWait(r.ID, 1, someWait(5))
	e.finish(x, failure, failed)
	e.checkWait(r.ID, 1, noWait, "after FinishExecution")
}

func enterStage(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	x := newExecution(r, 0, 1)
	e.must(e.s.EnterStage(e.ctx, x))
	if got := e.states(r.ID); got != "[active pending]" {
		e.Errorf("stages after EnterStage = %s; want qa active", got)
	}
	e.checkExecution(e.execution(r.ID, x.ID), x, "Executions")
	open, err := e.s.OpenExecutions(e.ctx)
	e.must(err)
	if len(open) != 1 || open[0].ID != x.ID {
		e.Errorf("OpenExecutions = %d executions; want the new one", len(open))
	}
	byToken, err := e.s.ExecutionByToken(e.ctx, x.TokenHash)
	e.must(err)
	e.checkExecution(byToken, x, "ExecutionByToken")
}

func enterStageOnePerAttempt(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	x := e.enter(r, 0, 1)
	e.finish(x, failure, failed)
	// Attempt 1 again, as a confused caller or a second replica would
	// make it: it must not become a second execution of the attempt, nor
	// reopen the stage.
	dup := newExecution(r, 0, 1)
	if err := e.s.EnterStage(e.ctx, dup); err == nil {
		e.Error("EnterStage of an attempt that has an execution succeeded; want an error")
	}
	if got := e.executionIDs(r.ID); fmt.Sprint(got) != fmt.Sprint([]string{x.ID}) {
		e.Errorf("executions = %v; want only the first attempt's", got)
	}
	if got := e.states(r.ID); got != "[failed pending]" {
		e.Errorf("stages after a failed EnterStage = %s; want [failed pending], nothing half done", got)
	}
}

func nextAttempt(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	next := func(idx int) int {
		e.Helper()
		n, err := e.s.NextAttempt(e.ctx, r.ID, idx)
		e.must(err)
		return n
	}
	if n := next(0); n != 1 {
		e.Errorf("NextAttempt of a stage never entered = %d; want 1", n)
	}
	x := e.enter(r, 0, 1)
	e.must(e.s.FinishAndEnter(e.ctx, withOutcome(x, failure), []store.Execution{rollbackOf(x, "0.9.0")}))
	if n := next(0); n != 3 {
		e.Errorf("NextAttempt after attempts 1 and 2 (a rollback) = %d; want 3", n)
	}
	if n := next(1); n != 1 {
		e.Errorf("NextAttempt of another stage = %d; want 1", n)
	}
}

func withOutcome(x store.Execution, o outcomeT) store.Execution {
	x.Outcome = o
	return x
}

func updateExecution(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	at := time.Now().Truncate(time.Millisecond)
	x.Phase, x.EventID, x.URL = deploying, "ev-1", "https://ci.example/1"
	x.Deadline, x.NextCheck = at.Add(30*time.Minute), at.Add(15*time.Second)
	e.must(e.s.UpdateExecution(e.ctx, x))
	e.checkExecution(e.execution(r.ID, x.ID), x, "after UpdateExecution (deploying)")

	// A trigger that is retried says why, and when it is tried next.
	x.Reason, x.NextCheck = "502 Bad Gateway", at.Add(time.Minute)
	e.must(e.s.UpdateExecution(e.ctx, x))
	e.checkExecution(e.execution(r.ID, x.ID), x, "after UpdateExecution (retry reason)")

	// The engine learned the outcome itself (polling) and bakes.
	x.Phase, x.Outcome, x.Reason, x.BakeUntil = baking, succeeded, "", at.Add(10*time.Minute)
	e.must(e.s.UpdateExecution(e.ctx, x))
	e.checkExecution(e.execution(r.ID, x.ID), x, "after UpdateExecution (baking)")
}

func updateExecutionKeepsOutcome(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	engine := x // the engine's copy, sending the trigger

	// The downstream reports while the trigger is still being sent.
	e.must(e.s.ReportOutcome(e.ctx, x.ID, failure, "tests failed", "https://ci.example/9"))

	// Then the engine writes its copy, which has no outcome: the trigger
	// was accepted, or its answer was lost and it will be sent again.
	engine.Phase, engine.EventID, engine.NextCheck = deploying, "ev-9", time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e.must(e.s.UpdateExecution(e.ctx, engine))
	want := engine
	want.Outcome, want.Reason, want.URL = failure, "tests failed", "https://ci.example/9"
	e.checkExecution(e.execution(r.ID, x.ID), want, "after the engine's UpdateExecution without an outcome")

	engine.Reason = "502 Bad Gateway" // the engine's own words on the trigger
	e.must(e.s.UpdateExecution(e.ctx, engine))
	got := e.execution(r.ID, x.ID)
	if got.Outcome != failure || got.Reason != "tests failed" || got.URL != "https://ci.example/9" {
		e.Errorf("after an UpdateExecution with a reason but no outcome: outcome %q reason %q url %q; want the reported %q %q %q",
			got.Outcome, got.Reason, got.URL, failure, "tests failed", "https://ci.example/9")
	}
}

func finishExecution(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.setWait(r.ID, 1, someWait(1))
	x := e.enter(r, 0, 1)
	x.Outcome, x.Pass, x.Reason, x.URL = succeeded, handedOff, "handed off to deploy-bot", "https://ci.example/1"
	e.must(e.s.FinishExecution(e.ctx, x, passed))
	want := x
	want.Phase = finished
	e.checkExecution(e.execution(r.ID, x.ID), want, "after FinishExecution")
	if got := e.states(r.ID); got != "[passed pending]" {
		e.Errorf("stages = %s; want qa passed", got)
	}
	e.checkWait(r.ID, 1, someWait(1), "another stage")
	if open, err := e.s.OpenExecutions(e.ctx); err != nil || len(open) != 0 {
		e.Errorf("OpenExecutions = %d, %v; want none", len(open), err)
	}
}

func finishExecutionOnce(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	first := withOutcome(x, succeeded)
	first.Reason = "first"
	e.must(e.s.FinishExecution(e.ctx, first, passed))
	second := withOutcome(x, failure)
	second.Reason = "second"
	if err := e.s.FinishExecution(e.ctx, second, failed); !errors.Is(err, store.ErrFinished) {
		e.Errorf("second FinishExecution = %v; want ErrFinished", err)
	}
	if got := e.execution(r.ID, x.ID); got.Outcome != succeeded || got.Reason != "first" {
		e.Errorf("after a second finish the execution is %q (%q); want the first outcome kept", got.Outcome, got.Reason)
	}
	if got := e.states(r.ID); got != "[passed]" {
		e.Errorf("stage after a second finish = %s; want the first's [passed]: ErrFinished changes nothing", got)
	}
}

func finishExecutionConcurrent(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	const n = 8
	var mu sync.Mutex
	var won []int
	parallel(n, func(i int) {
		y := withOutcome(x, []outcomeT{succeeded, failure}[i%2])
		y.Reason = fmt.Sprint("finisher ", i)
		err := e.s.FinishExecution(e.ctx, y, []stageState{passed, failed}[i%2])
		switch {
		case err == nil:
			mu.Lock()
			won = append(won, i)
			mu.Unlock()
		case !errors.Is(err, store.ErrFinished):
			e.Error(err)
		}
	})
	if len(won) != 1 {
		e.Fatalf("%d concurrent FinishExecution calls succeeded; want exactly 1", len(won))
	}
	got := e.execution(r.ID, x.ID)
	wantState := []stageState{passed, failed}[won[0]%2]
	if got.Reason != fmt.Sprint("finisher ", won[0]) || e.stage(r.ID, 0).State != wantState {
		e.Errorf("stored %q with stage %v; want the winner's (finisher %d, %v)", got.Reason, e.stage(r.ID, 0).State, won[0], wantState)
	}
}

func finishAndEnter(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa", "prod")
	x := e.enter(r, 0, 1)
	x.Phase = deploying
	e.must(e.s.UpdateExecution(e.ctx, x))
	done := withOutcome(x, failure)
	done.Reason, done.URL = "deploy failed", "https://ci.example/1"
	next := rollbackOf(x, "1.0.0")
	e.must(e.s.FinishAndEnter(e.ctx, done, []store.Execution{next}))

	want := done
	want.Phase = finished
	e.checkExecution(e.execution(r.ID, x.ID), want, "the finished execution")
	e.checkExecution(e.execution(r.ID, next.ID), next, "the rollback")
	if !isRollback(e.execution(r.ID, next.ID)) {
		e.Error("the entered execution is not a rollback")
	}
	if got := e.states(r.ID); got != "[active pending]" {
		e.Errorf("stages = %s; want qa still active (rolling back)", got)
	}
	open, err := e.s.OpenExecutions(e.ctx)
	e.must(err)
	if len(open) != 1 || open[0].ID != next.ID {
		e.Errorf("OpenExecutions = %d; want only the rollback", len(open))
	}
}

func finishAndEnterFinished(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa")
	x := e.enter(r, 0, 1)
	e.finish(x, failure, failed) // a callback's path finished it first
	err := e.s.FinishAndEnter(e.ctx, withOutcome(x, failure), []store.Execution{rollbackOf(x, "1.0.0")})
	if !errors.Is(err, store.ErrFinished) {
		e.Errorf("FinishAndEnter of a finished execution = %v; want ErrFinished", err)
	}
	if got := e.executionIDs(r.ID); fmt.Sprint(got) != fmt.Sprint([]string{x.ID}) {
		e.Errorf("executions = %v; want no rollback entered", got)
	}
	if got := e.states(r.ID); got != "[failed]" {
		e.Errorf("stage = %s; want [failed] kept", got)
	}
}

func finishAndEnterAtomic(e *env) {
	r := e.inRollout("a1", "1.1.0", "qa")
	x := e.enter(r, 0, 1)
	// The next execution cannot be recorded (it is x itself over again):
	// then x must not be finished either, or the stage would be left
	// active with nothing running in it.
	bad := x
	bad.Rollback = true
	if err := e.s.FinishAndEnter(e.ctx, withOutcome(x, failure), []store.Execution{bad}); err == nil {
		e.Fatal("FinishAndEnter recorded an execution that exists; want an error")
	}
	got := e.execution(r.ID, x.ID)
	if got.Phase == finished || got.Outcome != "" {
		e.Errorf("x is %s with outcome %q after a FinishAndEnter that failed; want it unfinished (one transaction)", got.Phase, got.Outcome)
	}
	if open, err := e.s.OpenExecutions(e.ctx); err != nil || len(open) != 1 || open[0].ID != x.ID {
		e.Errorf("OpenExecutions = %d, %v; want x still open", len(open), err)
	}
	// And it still works afterwards.
	e.must(e.s.FinishAndEnter(e.ctx, withOutcome(x, failure), []store.Execution{rollbackOf(x, "1.0.0")}))
}

func openExecutions(e *env) {
	a := e.inRollout("a1", "1.0.0", "qa", "prod")
	w := e.released("acme/web", "w1", 0, "2.0.0")
	e.start(w, "acme/web:web", "qa")
	wr := e.rollout(w.ID)

	x1 := e.enter(a, 0, 1)
	tick()
	y := e.enter(wr, 0, 1)
	tick()
	done := e.enter(a, 1, 1)
	e.finish(done, succeeded, passed)
	tick()
	x1.Phase = baking
	e.must(e.s.UpdateExecution(e.ctx, x1))

	ids := func(xs []store.Execution) string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = x.ID
		}
		return fmt.Sprint(out)
	}
	all, err := e.s.OpenExecutions(e.ctx)
	e.must(err)
	if got, want := ids(all), fmt.Sprint([]string{x1.ID, y.ID}); got != want {
		e.Errorf("OpenExecutions = %s; want every unfinished one, oldest first: %s", got, want)
	}
	of, err := e.s.OpenExecutionsOf(e.ctx, pk)
	e.must(err)
	if got, want := ids(of), fmt.Sprint([]string{x1.ID}); got != want {
		e.Errorf("OpenExecutionsOf(%s) = %s; want only the pipeline's %s", pk, got, want)
	}
	if len(of) == 1 && of[0].Phase != baking {
		e.Errorf("open execution phase %s; want baking", of[0].Phase)
	}
}

func reportOutcomeOnce(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	e.must(e.s.ReportOutcome(e.ctx, x.ID, succeeded, "", "https://ci.example/1"))
	got := e.execution(r.ID, x.ID)
	if got.Outcome != succeeded || got.URL != "https://ci.example/1" || got.Phase != triggering {
		e.Errorf("after ReportOutcome: outcome %q url %q phase %s; want the report recorded, the phase the engine's", got.Outcome, got.URL, got.Phase)
	}
	if err := e.s.ReportOutcome(e.ctx, x.ID, failure, "late", "https://ci.example/2"); !errors.Is(err, store.ErrFinished) {
		e.Errorf("second ReportOutcome = %v; want ErrFinished", err)
	}
	if got := e.execution(r.ID, x.ID); got.Outcome != succeeded || got.Reason != "" || got.URL != "https://ci.example/1" {
		e.Errorf("after a second report: %q %q %q; want the first kept", got.Outcome, got.Reason, got.URL)
	}
}

func reportOutcomeWaitingOnly(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "staging", "prod")
	dep := e.enter(r, 0, 1)
	dep.Phase = deploying
	e.must(e.s.UpdateExecution(e.ctx, dep))
	if err := e.s.ReportOutcome(e.ctx, dep.ID, failure, "boom", ""); err != nil {
		e.Errorf("ReportOutcome on a deploying execution = %v; want it recorded", err)
	}
	if got := e.execution(r.ID, dep.ID); got.Outcome != failure || got.Reason != "boom" {
		e.Errorf("deploying execution after a report: %q %q", got.Outcome, got.Reason)
	}

	// Baking without an outcome on record: the phase alone says the
	// report comes too late.
	bake := e.enter(r, 1, 1)
	bake.Phase, bake.BakeUntil = baking, time.Now().Add(time.Hour)
	e.must(e.s.UpdateExecution(e.ctx, bake))
	if err := e.s.ReportOutcome(e.ctx, bake.ID, failure, "late", ""); !errors.Is(err, store.ErrFinished) {
		e.Errorf("ReportOutcome on a baking execution = %v; want ErrFinished", err)
	}

	fin := e.enter(r, 2, 1)
	e.finish(fin, succeeded, passed)
	if err := e.s.ReportOutcome(e.ctx, fin.ID, failure, "late", ""); !errors.Is(err, store.ErrFinished) {
		e.Errorf("ReportOutcome on a finished execution = %v; want ErrFinished", err)
	}
	if got := e.execution(r.ID, fin.ID); got.Outcome != succeeded {
		e.Errorf("finished execution's outcome %q after a late report; want succeeded kept", got.Outcome)
	}
}

func reportOutcomeConcurrent(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	const n = 8
	var mu sync.Mutex
	var won []int
	parallel(n, func(i int) {
		err := e.s.ReportOutcome(e.ctx, x.ID, []outcomeT{succeeded, failure}[i%2], fmt.Sprint("reporter ", i), "")
		switch {
		case err == nil:
			mu.Lock()
			won = append(won, i)
			mu.Unlock()
		case !errors.Is(err, store.ErrFinished):
			e.Error(err)
		}
	})
	if len(won) != 1 {
		e.Fatalf("%d concurrent reports recorded; want exactly 1", len(won))
	}
	if got := e.execution(r.ID, x.ID); got.Reason != fmt.Sprint("reporter ", won[0]) || got.Outcome != []outcomeT{succeeded, failure}[won[0]%2] {
		e.Errorf("stored %q %q; want reporter %d's", got.Outcome, got.Reason, won[0])
	}
}

func runByTag(e *env) {
	r := e.released(repo, "a1", 0, "1.0.0")
	got, ok, err := e.s.RunByTag(e.ctx, repo, "v1.0.0")
	e.must(err)
	if !ok || got.ID != r.ID {
		e.Errorf("RunByTag = %s, %v; want run %s", got.ID, ok, r.ID)
	}
	for _, k := range [][2]string{{repo, "v9.9.9"}, {"acme/web", "v1.0.0"}} {
		if got, ok, err := e.s.RunByTag(e.ctx, k[0], k[1]); err != nil || ok {
			e.Errorf("RunByTag(%s, %s) = %s, %v, %v; want none", k[0], k[1], got.ID, ok, err)
		}
	}
}

func executionByToken(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	x := e.enter(r, 0, 1)
	got, err := e.s.ExecutionByToken(e.ctx, x.TokenHash)
	e.must(err)
	if got.ID != x.ID {
		e.Errorf("ExecutionByToken = %s; want %s", got.ID, x.ID)
	}
	if _, err := e.s.ExecutionByToken(e.ctx, "unknown-hash"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("ExecutionByToken(unknown) = %v; want ErrNotFound", err)
	}
}

func executionsOrder(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa", "prod")
	other := e.inRollout("a2", "1.1.0", "qa", "prod")
	q1 := e.enter(r, 0, 1)
	e.finish(q1, failure, failed)
	p1 := e.enter(r, 1, 1)
	q2 := e.enter(r, 0, 2)
	e.enter(other, 0, 1)
	if got, want := e.executionIDs(r.ID), []string{q1.ID, q2.ID, p1.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		e.Errorf("Executions = %v; want by stage, then attempt: %v", got, want)
	}
	if got := e.executionIDs("nope"); len(got) != 0 {
		e.Errorf("Executions of an unknown run = %v", got)
	}
}

func lastDeployed(e *env) {
	a := e.inRollout("a", "1.0.0", "qa", "prod")
	b := e.inRollout("b", "1.1.0", "qa", "prod")
	c := e.inRollout("c", "1.2.0", "qa", "prod")
	d := e.inRollout("d", "1.3.0", "qa", "prod")
	last := e.inRollout("e", "1.4.0", "qa", "prod")
	w := e.released("acme/web", "w", 0, "9.0.0")
	e.start(w, "acme/web:web", "qa")
	wr := e.rollout(w.ID)

	e.deployed(a, 0)
	e.deployed(a, 1)
	bx := e.deployed(b, 0)
	// b's deploy at qa was then rolled back to 1.0.0 by hand: that
	// rollback succeeded, but restores, it does not deploy b.
	rb := rollbackOf(bx, "1.0.0")
	e.must(e.s.Reenter(e.ctx, passed, []store.Execution{rb}))
	e.finish(rb, succeeded, rolledBack)
	e.deployed(c, 0)
	dx := e.enter(d, 0, 1)
	e.finish(dx, failure, failed) // failed: deployed nothing
	e.deployed(wr, 0)             // another pipeline

	check := func(r store.RolloutRun, idx int, want string) {
		e.Helper()
		version, tag, ok, err := e.s.LastDeployed(e.ctx, pk, idx, r.Order)
		e.must(err)
		got := "none"
		if ok {
			got = version + " " + tag
		}
		if got != want {
			e.Errorf("LastDeployed(stage %d, before %s) = %s; want %s", idx, r.Version, got, want)
		}
	}
	check(last, 0, "1.2.0 v1.2.0") // d failed; c is the newest older deploy
	check(d, 0, "1.2.0 v1.2.0")
	check(c, 0, "1.1.0 v1.1.0") // b's own deploy, not its rollback
	check(b, 0, "1.0.0 v1.0.0")
	check(a, 0, "none")
	check(last, 1, "1.0.0 v1.0.0")
	if _, _, ok, err := e.s.LastDeployed(e.ctx, "acme/web:web", 0, wr.Order); err != nil || ok {
		e.Errorf("LastDeployed before the first run of another pipeline = %v, %v; want none", ok, err)
	}
}

func finishRollout(e *env) {
	r := e.inRollout("a1", "1.0.0", "qa")
	e.deployed(r, 0)
	e.must(e.s.FinishRollout(e.ctx, r.ID))
	e.must(e.s.FinishRollout(e.ctx, r.ID)) // again: no harm
	if runs, err := e.s.LoadRollout(e.ctx, pk); err != nil || len(runs) != 0 {
		e.Errorf("LoadRollout = %d runs, %v; want the finished run gone", len(runs), err)
	}
	if got := e.rollout(r.ID); got.Rollout != store.RolloutDone || got.Order != r.Order || len(got.Stages) != 1 || got.Stages[0].State != passed {
		e.Errorf("finished rollout = %q order %d stages %+v; want done, its order and stages kept", got.Rollout, got.Order, got.Stages)
	}
}

// --- Freeze ---------------------------------------------------------------

var freezeCases = []testCase{{"Freeze_Unfreeze_Frozen", freezeUnfreeze}}

func freezeUnfreeze(e *env) {
	frozen := func(key string) (string, bool) {
		e.Helper()
		reason, ok, err := e.s.Frozen(e.ctx, key)
		e.must(err)
		return reason, ok
	}
	if _, ok := frozen(pk); ok {
		e.Fatal("a pipeline never frozen is frozen")
	}
	e.must(e.s.Freeze(e.ctx, pk, "incident 42", "alice"))
	if reason, ok := frozen(pk); !ok || reason != "incident 42" {
		e.Errorf("Frozen = %q, %v; want incident 42", reason, ok)
	}
	if _, ok := frozen("acme/web:web"); ok {
		e.Error("freezing one pipeline froze another")
	}
	e.must(e.s.Freeze(e.ctx, pk, "incident 43", "bob"))
	if reason, ok := frozen(pk); !ok || reason != "incident 43" {
		e.Errorf("Frozen after a second freeze = %q, %v; want its reason", reason, ok)
	}
	if was, err := e.s.Unfreeze(e.ctx, pk, ""); err != nil || !was {
		e.Errorf("Unfreeze of a frozen pipeline = %v, %v; want true", was, err)
	}
	if _, ok := frozen(pk); ok {
		e.Error("still frozen after Unfreeze")
	}
	if was, err := e.s.Unfreeze(e.ctx, pk, ""); err != nil || was {
		e.Errorf("Unfreeze of a pipeline not frozen = %v, %v; want false, no error", was, err)
	}
	e.must(e.s.Freeze(e.ctx, pk, "", "carol"))
	if reason, ok := frozen(pk); !ok || reason != "" {
		e.Errorf("Frozen without a reason = %q, %v; want frozen", reason, ok)
	}
}
