package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// progress moves the pipeline's open executions along. It reports whether
// one settled (concluded, baked, or passed at its trigger), which changes
// what the scheduler decides next. loaded holds the runs decide just read:
// what progress uses of a run (identity, repository, commit, order,
// config) never changes once the run is in its rollout, so it need not
// read them again.
func (e *Engine) progress(ctx context.Context, key string, loaded map[string]*pipelineRun) (bool, error) {
	execs, err := e.Store.OpenExecutionsOf(ctx, key)
	if err != nil {
		return false, err
	}
	settled := false
	for _, ex := range execs {
		r, ok := loaded[ex.RolloutID]
		if !ok {
			rr, err := e.Store.GetRollout(ctx, ex.RolloutID)
			if err != nil {
				return settled, err
			}
			cfg, err := e.parseConfig(rr.Repo, rr.Config)
			if err != nil {
				return settled, fmt.Errorf("config of run %s: %w", rr.ID, err)
			}
			r = &pipelineRun{RolloutRun: rr, cfg: cfg}
		}
		s, ok := r.pipe().Stage(ex.StageName)
		if !ok {
			return settled, fmt.Errorf("run %s has no stage %s", r.ID, ex.StageName)
		}
		c, err := e.advance(ctx, r, s, ex)
		if err != nil {
			return settled, fmt.Errorf("stage %s of run %s: %w", ex.StageName, r.ID, err)
		}
		settled = settled || c
	}
	return settled, nil
}

// advance takes one execution as far as it can go now, and reports
// whether it settled: a trigger sent or a deploy found is no news to the
// scheduler.
func (e *Engine) advance(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) (bool, error) {
	now := e.Now()
	// A reported outcome (callback) waits in Outcome for the engine, which
	// holds the pipeline's lease, to apply it.
	if ex.Outcome != "" && ex.Phase != store.PhaseBaking {
		return true, e.conclude(ctx, r, s, ex, ex.Outcome, ex.Reason)
	}
	switch ex.Phase {
	case store.PhaseTriggering:
		if now.Before(ex.NextCheck) {
			return false, nil
		}
		return e.trigger(ctx, r, s, ex)
	case store.PhaseDeploying:
		if !ex.Deadline.IsZero() && now.After(ex.Deadline) {
			reason := e.timeoutReason(r, s, ex)
			return true, e.conclude(ctx, r, s, ex, Failed, reason)
		}
		return e.poll(ctx, r, s, ex)
	case store.PhaseBaking:
		over := !now.Before(ex.BakeUntil)
		if !over && now.Before(ex.NextCheck) {
			return false, nil
		}
		// The alarms are read at the bake's start (conclude asks for a
		// check at once), at least every AlarmEvery, and once more at its
		// end before the stage passes: an alarm that fires at any moment
		// of a bake, however short, rolls it back. A reading older than
		// the bake, or (at the end) older than its end, is not trusted.
		since := now.Add(-e.AlarmEvery)
		if start := ex.BakeUntil.Add(-s.Bake); since.Before(start) {
			since = start
		}
		if over {
			since = ex.BakeUntil
		}
		for _, name := range s.Alarms {
			if st := e.readAlarmSince(ctx, name, since); st.Firing {
				return true, e.conclude(ctx, r, s, ex, Failed, "during bake: "+st.Reason)
			}
		}
		if over {
			ex.Outcome = Succeeded
			e.reported(ctx, r.ID)
			// Its success was recorded when the bake began.
			return true, e.settle(ctx, r, s, ex, "baked "+s.Bake.String())
		}
		ex.NextCheck = now.Add(e.AlarmEvery)
		return false, e.Store.UpdateExecution(ctx, ex)
	}
	return false, nil
}

// countCalls adds the GitHub calls a target's driver made for a run (a
// github-dispatch target's dispatch, its polls) to the run's count.
func (e *Engine) countCalls(ctx context.Context, runID string, t *github.Tally) {
	if err := e.Store.AddAPICalls(context.WithoutCancel(ctx), runID, t.N()); err != nil {
		e.Log.Warn("count API calls", "run", runID, "err", err)
	}
}

// timeoutReason says why an execution got no outcome in time, with what
// the target's driver found out by polling, if it polls.
func (e *Engine) timeoutReason(r *pipelineRun, s config.Stage, ex store.Execution) string {
	t := e.target(s, ex, r.Repo)
	reason := fmt.Sprintf("no outcome reported within %s", s.EffectiveTimeout(t))
	if e.Trigger != nil {
		if why := e.Trigger.Overdue(t, e.check(r, s, t, ex), ex.Reason); why != "" {
			reason += ": " + why
		}
	}
	return reason
}

// check is what the target's driver is told about ex when it polls.
func (e *Engine) check(r *pipelineRun, s config.Stage, t config.Target, ex store.Execution) deploy.Check {
	return deploy.Check{
		Payload: deploy.Payload{Repository: r.Repo, RunID: r.ID, Stage: s.Name, Attempt: ex.Attempt, Target: ex.Target, Pipeline: r.pipelineField()},
		// EventID holds what the deploy is found by (a workflow run, once
		// found), so that a restart asks about that one again.
		Ref:       ex.EventID,
		Began:     ex.CreatedAt,
		Triggered: ex.Deadline.Add(-s.EffectiveTimeout(t)),
		Now:       e.Now(),
	}
}

// target is the server-side target ex deploys to: its wave target, or
// the stage's one.
func (e *Engine) target(s config.Stage, ex store.Execution, repo string) config.Target {
	t, _ := e.Targets.Lookup(targetName(s, ex), repo)
	return t
}

func targetName(s config.Stage, ex store.Execution) string {
	if ex.Target != "" {
		return ex.Target
	}
	return s.Target
}

// pipelineField is the payload's pipeline: the pipeline's name in a
// repository of several, absent otherwise.
func (r *pipelineRun) pipelineField() string {
	if r.cfg.Multi {
		return r.pipe().Name
	}
	return ""
}

// trigger sends the execution's trigger. A re-send after a crash is the
// same attempt: same payload, same Idempotency-Key, same callback URL.
func (e *Engine) trigger(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) (bool, error) {
	t, err := e.Targets.Lookup(targetName(s, ex), r.Repo)
	if err != nil {
		return true, e.conclude(ctx, r, s, ex, Failed, err.Error())
	}
	if e.DeployedBefore != nil && !ex.Rollback {
		how, deployed, err := e.DeployedBefore(ctx, r.Repo, ex)
		if err != nil {
			// Not knowing is no reason to hold the deploy: the trigger's
			// idempotency key guards what it can.
			e.Log.Warn("could not tell whether the stage was deployed before", "run", r.ID, "stage", s.Name, "err", err)
		} else if deployed {
			ex.Outcome, ex.Pass, ex.Reason = Succeeded, rollout.DeployedBefore, "deployed before: "+how
			e.reported(ctx, r.ID)
			return true, e.settle(ctx, r, s, ex, ex.Reason, stageEvent(store.KindStageSucceeded, s.Name, withTarget(ex, ex.Reason)))
		}
	}
	p := deploy.Payload{
		Repository: r.Repo, SHA: r.SHA, Version: ex.Version, Tag: ex.Tag, Stage: s.Name,
		PullRequest: r.PR, RunID: r.ID, Attempt: ex.Attempt, CallbackURL: e.CallbackURL(ex.ID), Rollback: ex.Rollback,
		Target: ex.Target, Pipeline: r.pipelineField(),
	}
	if ex.Rollback {
		// The rollback deploys the previous version; the payload's sha is
		// the commit that version was cut from.
		p.SHA = ""
		if prev, ok, err := e.Store.RunByTag(ctx, r.Repo, ex.Tag); err == nil && ok {
			p.SHA = prev.SHA
		}
	}
	var tally github.Tally
	res, err := e.Trigger.Trigger(github.WithTally(ctx, &tally), t, p)
	e.countCalls(ctx, r.ID, &tally)
	now := e.Now()
	switch {
	case err == nil:
		ex.Phase, ex.EventID, ex.Deadline = store.PhaseDeploying, res.EventID, now.Add(s.EffectiveTimeout(t))
		ex.NextCheck = now.Add(e.PollEvery)
		what := fmt.Sprintf("%s via %s, attempt %d", ex.Tag, t.Name, ex.Attempt)
		if ex.Rollback {
			what = "rollback to " + what
		}
		if err := e.Store.UpdateExecution(ctx, ex, stageEvent(store.KindStageTriggered, s.Name, what)); err != nil {
			return false, err
		}
		e.emit(r, s.Name, "triggered", what)
		e.reported(ctx, r.ID)
		if e.Trigger.Learns(t) == deploy.Never || e.HandOff != nil && e.HandOff(t) {
			// Nobody can tell this process the outcome (the target's kind
			// reports none, or a hosted runner takes no callbacks): the
			// downstream owns it from here.
			reason := "handed off to " + t.Name
			ex.Pass = rollout.HandedOff
			if ex.Rollback {
				return true, e.conclude(ctx, r, s, ex, Succeeded, reason)
			}
			// The stage passes at once: baking would hold the run for the
			// bake time and watch alarms over a deploy whose outcome this
			// process does not know.
			if s.Bake > 0 {
				reason += "; bake " + s.Bake.String() + " not watched"
			}
			ex.Outcome, ex.Reason = Succeeded, reason
			return true, e.settle(ctx, r, s, ex, reason, stageEvent(store.KindStageSucceeded, s.Name, withTarget(ex, reason)))
		}
		return false, nil
	case deploy.IsPermanent(err):
		return true, e.conclude(ctx, r, s, ex, Failed, err.Error())
	case ctx.Err() != nil:
		return false, nil // shutting down: the next process sends the same attempt
	default:
		// Retries exhausted for now: send the same attempt again later.
		wait := 30 * time.Second
		var de *deploy.Error
		if errors.As(err, &de) && de.RetryAfter > wait {
			wait = de.RetryAfter
		}
		ex.NextCheck, ex.Reason = now.Add(wait), err.Error()
		e.Log.Warn("trigger not accepted yet", "run", r.ID, "stage", s.Name, "err", err, "retry_at", ex.NextCheck)
		return false, e.Store.UpdateExecution(ctx, ex)
	}
}

// poll asks the target's driver for the outcome, where it can ask (a
// Spinnaker execution, a dispatched workflow run). A callback may still
// come first.
func (e *Engine) poll(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) (bool, error) {
	t := e.target(s, ex, r.Repo)
	now := e.Now()
	if e.Trigger == nil || e.Trigger.Learns(t) != deploy.ByPolling || now.Before(ex.NextCheck) {
		return false, nil
	}
	var tally github.Tally
	defer e.countCalls(ctx, r.ID, &tally)
	got, err := e.Trigger.Poll(github.WithTally(ctx, &tally), t, e.check(r, s, t, ex))
	ex.NextCheck = now.Add(max(e.PollEvery, got.Wait))
	found := false
	switch {
	case err != nil && deploy.IsPermanent(err):
		e.Log.Warn("polling stopped", "run", r.ID, "stage", s.Name, "kind", t.Kind, "err", err)
		// Wait for a callback or the timeout, which will say why.
		ex.NextCheck = ex.Deadline
		ex.Reason = err.Error()
	case err != nil:
		// Transient: ask again next time.
	default:
		if got.Ref != "" && got.Ref != ex.EventID || got.URL != "" && got.URL != ex.URL {
			// Found: the PR links to the deploy while it runs.
			ex.EventID, ex.URL, found = cmp.Or(got.Ref, ex.EventID), cmp.Or(got.URL, ex.URL), true
		}
		switch got.State {
		case deploy.StateSucceeded:
			return true, e.conclude(ctx, r, s, ex, Succeeded, "")
		case deploy.StateFailed:
			return true, e.conclude(ctx, r, s, ex, Failed, got.Reason)
		}
	}
	if err := e.Store.UpdateExecution(ctx, ex); err != nil {
		return false, err
	}
	if found {
		e.reported(ctx, r.ID)
	}
	return false, nil
}

// conclude applies an execution's outcome: a success bakes, if the stage
// bakes; everything else settles the execution (see settle).
func (e *Engine) conclude(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution, outcome rollout.Outcome, reason string) error {
	defer e.reported(ctx, r.ID)
	ex.Outcome, ex.Reason = outcome, reason
	var evs []store.Event
	if outcome == Succeeded && !ex.Rollback {
		evs = append(evs, stageEvent(store.KindStageSucceeded, s.Name, withTarget(ex, ex.URL)))
	}
	if outcome == Succeeded && !ex.Rollback && s.Bake > 0 {
		ex.Phase, ex.BakeUntil, ex.NextCheck = store.PhaseBaking, e.Now().Add(s.Bake), e.Now()
		e.emit(r, s.Name, "baking", withTarget(ex, s.Bake.String()))
		evs = append(evs, stageEvent(store.KindStageBaking, s.Name, withTarget(ex, "for "+s.Bake.String()+", watching alarms")))
		return e.Store.UpdateExecution(ctx, ex, evs...)
	}
	if outcome != Succeeded && ex.Rollback {
		ex.Reason = "rollback failed: " + reason
	}
	return e.settle(ctx, r, s, ex, "", evs...)
}

// settle finishes ex (its outcome set) and says what its stage comes to.
// A stage of one target settles with it; a wave's stage settles when its
// last target's execution of the attempt finishes (rollout.Settle): it
// passes when every target passed, and when any failed it fails, or with
// rollback: true every target gets the previous version back, the failed
// one included. Until then the stage stays active. how says how a success
// passed, for the narration. evs record what led here (a success); settle
// adds what the stage comes to and writes them with the change.
func (e *Engine) settle(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution, how string, evs ...store.Event) error {
	attempt := []store.Execution{ex}
	if ex.Target != "" {
		all, err := e.Store.Executions(ctx, r.ID)
		if err != nil {
			return err
		}
		attempt = attempt[:0]
		for _, o := range all {
			if o.Stage == ex.Stage && o.Attempt == ex.Attempt {
				if o.ID == ex.ID {
					o = ex
				}
				attempt = append(attempt, o)
			}
		}
	}
	ex.Phase = store.PhaseFinished // as the store will have it
	for i := range attempt {
		if attempt[i].ID == ex.ID {
			attempt[i] = ex
		}
	}
	settled, failed := rollout.Settle(attempt)
	var state schedule.StageState
	record := func(kind, detail string) { evs = append(evs, stageEvent(kind, s.Name, detail)) }
	switch {
	case !settled:
		state = schedule.Active
		if ex.Outcome == Failed {
			what := withTarget(ex, ex.Reason+"; waiting for the other targets")
			e.emit(r, s.Name, "failed", what)
			record(store.KindStageFailed, what)
		} else {
			e.emit(r, s.Name, "target-done", withTarget(ex, how))
		}
	case ex.Rollback && failed:
		state = schedule.Failed
		e.emit(r, s.Name, "failed", withTarget(ex, ex.Reason))
		record(store.KindStageFailed, withTarget(ex, ex.Reason))
	case ex.Rollback:
		state = schedule.RolledBack
		e.emit(r, s.Name, "rolled-back", ex.Tag)
		record(store.KindStageRolledBack, "to "+ex.Tag)
	case !failed:
		state = schedule.Passed
		e.emit(r, s.Name, "passed", how)
		record(store.KindStagePassed, cmp.Or(how, "deployed"))
	case s.Rollback:
		version, tag, ok, err := e.Store.LastDeployed(ctx, PipelineKey(r.Repo, r.pipe().Name), ex.Stage, r.Order)
		if err != nil {
			return err
		}
		if ok {
			// The stage stays active: the unit is busy until the rollback
			// ends, so no other version deploys over it. One transaction:
			// a crash in between would leave an active stage with nothing
			// moving it.
			rbs, err := e.newExecutions(ctx, r, ex.Stage, s, true, version, tag)
			if err != nil {
				return err
			}
			record(store.KindStageFailed, failure(attempt))
			if err := e.Store.FinishAndEnter(ctx, ex, rbs, evs...); err != nil {
				return ignoreFinished(err)
			}
			e.emit(r, s.Name, "failed", failure(attempt))
			e.emit(r, s.Name, "rolling-back", tag)
			return nil
		}
		if ex.Outcome == Failed {
			ex.Reason += "; nothing to roll back to (no earlier version deployed here)"
		}
		state = schedule.Failed
		e.emit(r, s.Name, "failed", failure(attempt))
		record(store.KindStageFailed, failure(attempt))
	default:
		state = schedule.Failed
		e.emit(r, s.Name, "failed", failure(attempt))
		record(store.KindStageFailed, failure(attempt))
	}
	return ignoreFinished(e.Store.FinishExecution(ctx, ex, state, evs...))
}

// failure says why a stage attempt failed: its first failed execution's
// reason, naming the target in a wave.
func failure(attempt []store.Execution) string {
	for _, ex := range attempt {
		if ex.Outcome == Failed {
			return withTarget(ex, ex.Reason)
		}
	}
	return ""
}

// withTarget prefixes what is said of a wave target's execution with it.
func withTarget(ex store.Execution, what string) string {
	if ex.Target == "" {
		return what
	}
	if what == "" {
		return ex.Target
	}
	return ex.Target + ": " + what
}

// ignoreFinished treats "already finished" as done: another path (a
// callback racing a timeout) got there first.
func ignoreFinished(err error) error {
	if errors.Is(err, store.ErrFinished) {
		return nil
	}
	return err
}

// ErrUnknownToken means a callback named no execution.
var ErrUnknownToken = errors.New("unknown callback token")

// Callback records a downstream's report for the execution whose callback
// token this is, and wakes the engine to apply it. A report for an
// execution that already has one returns store.ErrFinished and changes
// nothing.
func (e *Engine) Callback(ctx context.Context, token, state, url string) error {
	outcome, err := rollout.ParseOutcome(state)
	if err != nil {
		return err
	}
	ex, err := e.Store.ExecutionByToken(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownToken
	}
	if err != nil {
		return err
	}
	reason := ""
	if outcome == Failed {
		reason = "the deploy system reported failure"
	}
	if err := e.Store.ReportOutcome(ctx, ex.ID, outcome, reason, url); err != nil {
		return err
	}
	e.Wake()
	return nil
}
