package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/rollout"
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
			reason := e.timeoutReason(r, s, ex)
			return true, e.conclude(ctx, r, s, ex, Failed, reason)
		}
		return e.poll(ctx, r, s, ex)
	case store.PhaseBaking:
		if !now.Before(ex.BakeUntil) {
			ex.Outcome = Succeeded
			if err := e.Store.FinishExecution(ctx, ex, schedule.Passed); err != nil {
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

// countCalls adds the GitHub calls a github-dispatch target made for a
// run (its dispatch, its polls) to the run's count.
func (e *Engine) countCalls(ctx context.Context, runID string, t *github.Tally) {
	if err := e.Store.AddAPICalls(context.WithoutCancel(ctx), runID, t.N()); err != nil {
		e.Log.Warn("count API calls", "run", runID, "err", err)
	}
}

// timeoutReason says why an execution got no outcome in time; for a
// github-dispatch stage, what polling found out.
func (e *Engine) timeoutReason(r *pipelineRun, s config.Stage, ex store.Execution) string {
	t := e.target(s, r.Repo)
	reason := fmt.Sprintf("no outcome reported within %s", s.EffectiveTimeout(t))
	if t.Kind == config.KindGitHubDispatch && e.Trigger != nil && e.Trigger.Dispatch != nil {
		key := deploy.Payload{RunID: r.ID, Stage: s.Name, Attempt: ex.Attempt}.IdempotencyKey()
		switch {
		case strings.HasPrefix(ex.Reason, reasonPollingStopped):
			// poll could not read GitHub (say, no actions: read).
			reason += ": " + ex.Reason
		case ex.EventID == "":
			// Most likely the workflow's run-name lacks the key.
			reason += fmt.Sprintf(": no callback, and no run of %s has %s in its title (its run-name must carry it: see README)", t.Workflow, key)
		default:
			reason += fmt.Sprintf(": workflow run %s still running", ex.EventID)
		}
	}
	return reason
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
	if e.DeployedBefore != nil && !ex.Rollback {
		how, deployed, err := e.DeployedBefore(ctx, r.Repo, ex)
		if err != nil {
			// Not knowing is no reason to hold the deploy: the trigger's
			// idempotency key guards what it can.
			e.Log.Warn("could not tell whether the stage was deployed before", "run", r.ID, "stage", s.Name, "err", err)
		} else if deployed {
			ex.Outcome, ex.Pass, ex.Reason = Succeeded, rollout.DeployedBefore, "deployed before: "+how
			if err := e.Store.FinishExecution(ctx, ex, schedule.Passed); err != nil {
				return ignoreFinished(err)
			}
			e.emit(r, s.Name, "passed", ex.Reason)
			e.reported(ctx, r.ID)
			return nil
		}
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
	var tally github.Tally
	res, err := e.Trigger.Trigger(github.WithTally(ctx, &tally), t, p)
	e.countCalls(ctx, r.ID, &tally)
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
			reason := "handed off to " + t.Name
			ex.Pass = rollout.HandedOff
			if ex.Rollback {
				return e.conclude(ctx, r, s, ex, Succeeded, reason)
			}
			// The stage passes at once: baking would hold the run for the
			// bake time and watch alarms over a deploy whose outcome this
			// process does not know.
			if s.Bake > 0 {
				reason += "; bake " + s.Bake.String() + " not watched"
			}
			ex.Outcome, ex.Reason = Succeeded, reason
			if err := e.Store.FinishExecution(ctx, ex, schedule.Passed); err != nil {
				return ignoreFinished(err)
			}
			e.emit(r, s.Name, "passed", reason)
			e.reported(ctx, r.ID)
			return nil
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

// poll asks for the outcome where the target allows it: Spinnaker Gate
// for a spinnaker target with gate_url, the dispatched workflow run for a
// github-dispatch target. A callback may still come first.
func (e *Engine) poll(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution) (bool, error) {
	t := e.target(s, r.Repo)
	if t.Kind == config.KindGitHubDispatch {
		return e.pollDispatch(ctx, r, s, t, ex)
	}
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

// pollDispatch follows the workflow run a github-dispatch trigger started.
func (e *Engine) pollDispatch(ctx context.Context, r *pipelineRun, s config.Stage, t config.Target, ex store.Execution) (bool, error) {
	now := e.Now()
	if e.Trigger == nil || e.Trigger.Dispatch == nil || now.Before(ex.NextCheck) {
		return false, nil
	}
	// EventID holds the workflow run once found, so that a restart
	// reads that run instead of searching again.
	runID, _ := strconv.ParseInt(ex.EventID, 10, 64)
	var tally github.Tally
	defer e.countCalls(ctx, r.ID, &tally)
	ctx = github.WithTally(ctx, &tally)
	p := deploy.Payload{Repository: r.Repo, RunID: r.ID, Stage: s.Name, Attempt: ex.Attempt}
	got, err := e.Trigger.PollDispatch(ctx, t, p, ex.CreatedAt, runID)
	ex.NextCheck = now.Add(e.PollEvery)
	changed := false
	switch {
	case err != nil && deploy.IsPermanent(err):
		e.Log.Warn("workflow run polling stopped", "run", r.ID, "stage", s.Name, "err", err)
		// Wait for a callback or the timeout, which will say why.
		ex.NextCheck = ex.Deadline
		ex.Reason = reasonPollingStopped + err.Error()
	case err != nil:
		// Transient: ask again next time.
	case got.ID == 0:
		// Not found yet. GitHub creates the run within seconds; after
		// two minutes, look once a minute and say what is missing.
		if triggered := ex.Deadline.Add(-s.EffectiveTimeout(t)); now.Sub(triggered) > 2*time.Minute {
			ex.NextCheck = now.Add(max(e.PollEvery, time.Minute))
			e.Log.Warn("no workflow run found for the dispatch yet", "run", r.ID, "stage", s.Name,
				"workflow", t.Workflow, "title_must_contain", p.IdempotencyKey(),
				"hint", "the dispatched workflow's run-name must carry the idempotency key (README)")
		}
	default:
		if runID == 0 || ex.URL != got.URL {
			// Found: the PR links to the run while it deploys.
			ex.EventID, ex.URL, changed = strconv.FormatInt(got.ID, 10), got.URL, true
		}
		switch got.State {
		case deploy.StateSucceeded:
			return true, e.conclude(ctx, r, s, ex, Succeeded, "")
		case deploy.StateFailed:
			return true, e.conclude(ctx, r, s, ex, Failed, got.Reason())
		}
	}
	if err := e.Store.UpdateExecution(ctx, ex); err != nil {
		return changed, err
	}
	if changed {
		e.reported(ctx, r.ID)
	}
	return changed, nil
}

// conclude applies an execution's outcome: bake or pass on success; roll
// back or fail on failure.
func (e *Engine) conclude(ctx context.Context, r *pipelineRun, s config.Stage, ex store.Execution, outcome rollout.Outcome, reason string) error {
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
		return ignoreFinished(e.Store.FinishExecution(ctx, ex, state))
	}
	if outcome == Succeeded {
		if s.Bake > 0 {
			ex.Phase, ex.BakeUntil, ex.NextCheck = store.PhaseBaking, e.Now().Add(s.Bake), e.Now()
			e.emit(r, s.Name, "baking", s.Bake.String())
			return e.Store.UpdateExecution(ctx, ex)
		}
		e.emit(r, s.Name, "passed", "")
		return ignoreFinished(e.Store.FinishExecution(ctx, ex, schedule.Passed))
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
	return ignoreFinished(e.Store.FinishExecution(ctx, ex, schedule.Failed))
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
