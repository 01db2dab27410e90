package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// progress moves the pipeline's open executions along. It reports whether
// anything changed. loaded holds the runs decide just read: what progress
// uses of a run (identity, repository, commit, order, config) never changes
// once the run is in its rollout, so it need not read them again.
func (e *Engine) progress(ctx context.Context, key string, loaded map[string]*pipelineRun) (bool, error) {
	execs, err := e.Store.OpenExecutionsOf(ctx, key)
	if err != nil {
		return false, err
	}
	changed := false
	for _, ex := range execs {
		r, ok := loaded[ex.RunID]
		if !ok {
			rr, err := e.Store.GetRollout(ctx, ex.RunID)
			if err != nil {
				return changed, err
			}
			cfg, err := e.parseConfig(rr.Repo, rr.Config)
			if err != nil {
				return changed, fmt.Errorf("config of run %s: %w", rr.ID, err)
			}
			r = &pipelineRun{RolloutRun: rr, cfg: cfg}
		}
		s, ok := r.cfg.Stage(ex.StageName)
		if !ok {
			return changed, fmt.Errorf("run %s has no stage %s", r.ID, ex.StageName)
		}
		c, err := e.advance(ctx, r, s, ex)
		if err != nil {
			return changed, fmt.Errorf("stage %s of run %s: %w", ex.StageName, r.ID, err)
		}
		changed = changed || c
	}
	return changed, nil
}

// advance takes one execution as far as it can go now.
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
		return true, e.trigger(ctx, r, s, ex)
	case store.PhaseDeploying:
		if !ex.Deadline.IsZero() && now.After(ex.Deadline) {
			return true, e.conclude(ctx, r, s, ex, Failed, fmt.Sprintf("no outcome reported within %s", s.EffectiveTimeout(e.target(s, r.Repo))))
		}
		return e.poll(ctx, r, s, ex)
	case store.PhaseBaking:
		if !now.Before(ex.BakeUntil) {
			ex.Outcome = Succeeded
			if err := e.Store.FinishExecution(ctx, ex, schedule.Passed.String()); err != nil {
				return false, ignoreFinished(err)
			}
			e.emit(r, s.Name, "passed", "baked "+s.Bake.String())
			e.reported(ctx, r.ID)
			return true, nil
		}
		if now.Before(ex.NextCheck) {
			return false, nil
		}
		for _, name := range s.Alarms {
			if st := e.readAlarm(ctx, name); st.Firing {
				return true, e.conclude(ctx, r, s, ex, Failed, "during bake: "+st.Reason)
			}
		}
		ex.NextCheck = now.Add(e.AlarmEvery)
		return false, e.Store.UpdateExecution(ctx, ex)
	}
	return false, nil
}

func (e *Engine) target(s config.Stage, repo string) config.Target {
	t, _ := e.Targets.Lookup(s.Target, repo)
	return t
}

// trigger sends the execution's trigger. A re-send after a crash is the
// same attempt: same payload, same Idempotency-Key, same callback URL.
func (e *Engine) trigger(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) error {
	t, err := e.Targets.Lookup(s.Target, r.Repo)
	if err != nil {
		return e.conclude(ctx, r, s, ex, Failed, err.Error())
	}
	p := deploy.Payload{
		Repository: r.Repo, SHA: r.SHA, Version: ex.Version, Tag: ex.Tag, Stage: s.Name,
		PullRequest: r.PR, RunID: r.ID, Attempt: ex.Attempt, CallbackURL: e.CallbackURL(ex.ID), Rollback: ex.Rollback,
	}
	if ex.Rollback {
		// The rollback deploys the previous version; the payload's sha is
		// the commit that version was cut from.
		p.SHA = ""
		if prev, ok, err := e.Store.RunByTag(ctx, r.Repo, ex.Tag); err == nil && ok {
			p.SHA = prev.SHA
		}
	}
	res, err := e.Trigger.Trigger(ctx, t, p)
	now := e.Now()
	switch {
	case err == nil:
		ex.Phase, ex.EventID, ex.Deadline = store.PhaseDeploying, res.EventID, now.Add(s.EffectiveTimeout(t))
		ex.NextCheck = now.Add(e.PollEvery)
		if err := e.Store.UpdateExecution(ctx, ex); err != nil {
			return err
		}
		e.emit(r, s.Name, "triggered", fmt.Sprintf("%s via %s, attempt %d", ex.Tag, t.Name, ex.Attempt))
		e.reported(ctx, r.ID)
		if e.HandOff != nil && e.HandOff(t) {
			// Nobody can tell this process the outcome (a hosted runner
			// takes no callbacks): the downstream owns it from here.
			return e.conclude(ctx, r, s, ex, Succeeded, "handed off to "+t.Name)
		}
		return nil
	case deploy.IsPermanent(err):
		return e.conclude(ctx, r, s, ex, Failed, err.Error())
	case ctx.Err() != nil:
		return nil // shutting down: the next process sends the same attempt
	default:
		// Retries exhausted for now: send the same attempt again later.
		wait := 30 * time.Second
		var de *deploy.Error
		if errors.As(err, &de) && de.RetryAfter > wait {
			wait = de.RetryAfter
		}
		ex.NextCheck, ex.Reason = now.Add(wait), err.Error()
		e.Log.Warn("trigger not accepted yet", "run", r.ID, "stage", s.Name, "err", err, "retry_at", ex.NextCheck)
		return e.Store.UpdateExecution(ctx, ex)
	}
}

// poll asks Spinnaker Gate for the outcome when the target allows it.
func (e *Engine) poll(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) (bool, error) {
	t := e.target(s, r.Repo)
	if e.Poller == nil || t.GateURL == "" || ex.EventID == "" || e.Now().Before(ex.NextCheck) {
		return false, nil
	}
	got, err := e.Poller.Poll(ctx, t, ex.EventID)
	ex.NextCheck = e.Now().Add(e.PollEvery)
	switch {
	case err != nil && deploy.IsPermanent(err):
		e.Log.Warn("gate polling stopped", "run", r.ID, "stage", s.Name, "err", err)
		ex.NextCheck = ex.Deadline // wait for a callback or the timeout
	case err == nil && got.State == deploy.StateSucceeded:
		ex.URL = got.URL
		return true, e.conclude(ctx, r, s, ex, Succeeded, "")
	case err == nil && got.State == deploy.StateFailed:
		ex.URL = got.URL
		return true, e.conclude(ctx, r, s, ex, Failed, "Spinnaker execution "+got.Status)
	}
	return false, e.Store.UpdateExecution(ctx, ex)
}

// conclude applies an execution's outcome: bake or pass on success; roll
// back or fail on failure.
func (e *Engine) conclude(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution, outcome, reason string) error {
	defer e.reported(ctx, r.ID)
	ex.Outcome, ex.Reason = outcome, reason
	if ex.Rollback {
		state := schedule.RolledBack
		what := "rolled-back"
		if outcome != Succeeded {
			state, what = schedule.Failed, "failed"
			ex.Reason = "rollback failed: " + reason
		}
		e.emit(r, s.Name, what, ex.Tag)
		return ignoreFinished(e.Store.FinishExecution(ctx, ex, state.String()))
	}
	if outcome == Succeeded {
		if s.Bake > 0 {
			ex.Phase, ex.BakeUntil, ex.NextCheck = store.PhaseBaking, e.Now().Add(s.Bake), e.Now()
			e.emit(r, s.Name, "baking", s.Bake.String())
			return e.Store.UpdateExecution(ctx, ex)
		}
		e.emit(r, s.Name, "passed", "")
		return ignoreFinished(e.Store.FinishExecution(ctx, ex, schedule.Passed.String()))
	}
	if s.Rollback {
		version, tag, ok, err := e.Store.LastDeployed(ctx, PipelineKey(r.Repo, r.cfg.Pipeline), ex.Stage, r.Order)
		if err != nil {
			return err
		}
		if ok {
			// The stage stays active: the unit is busy until the rollback
			// ends, so no other version deploys over it. One transaction:
			// a crash in between would leave an active stage with nothing
			// moving it.
			rb, err := e.newExecution(ctx, r, ex.Stage, s, true, version, tag)
			if err != nil {
				return err
			}
			if err := e.Store.FinishAndEnter(ctx, ex, rb); err != nil {
				return ignoreFinished(err)
			}
			e.emit(r, s.Name, "failed", reason)
			e.emit(r, s.Name, "rolling-back", tag)
			return nil
		}
		ex.Reason = reason + "; nothing to roll back to (no earlier version deployed here)"
	}
	e.emit(r, s.Name, "failed", ex.Reason)
	return ignoreFinished(e.Store.FinishExecution(ctx, ex, schedule.Failed.String()))
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
	if state != Succeeded && state != Failed {
		return fmt.Errorf("state %q: want succeeded or failed", state)
	}
	ex, err := e.Store.ExecutionByToken(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownToken
	}
	if err != nil {
		return err
	}
	reason := ""
	if state == Failed {
		reason = "the deploy system reported failure"
	}
	if err := e.Store.ReportOutcome(ctx, ex.ID, state, reason, url); err != nil {
		return err
	}
	e.Wake()
	return nil
}
