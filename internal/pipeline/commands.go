package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/lease"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// Verb is what a Command asks.
type Verb string

const (
	Deploy   Verb = "deploy"   // deploy a stage a label skipped (Force: past window and alarms)
	Retry    Verb = "retry"    // try a failed stage again
	Rollback Verb = "rollback" // put back the stage's previous version
	Freeze   Verb = "freeze"   // hold every new stage start of the pipeline
	Unfreeze Verb = "unfreeze" // let them go again
	Status   Verb = "status"   // where the rollout stands
	Approve  Verb = "approve"  // let a run into a stage that needs approval
	Reject   Verb = "reject"   // fail a stage that waits for approval
)

// Approval says who may approve or reject a stage of a pull request's
// rollout (chatops reads it before it asks for Approve or Reject, and
// checks the commenter against it: the PR's author never may).
type Approval struct {
	// Stage is the stage's name as the rollout knows it.
	Stage string
	// Required: the stage has `approval: true`.
	Required bool
	// Approvers are the stage's `approvers:` (logins, and teams written
	// "@org/team-slug"); empty means anyone with maintain or admin.
	Approvers []string
}

// Command is a change a person asks of a merged pull request's rollout
// (ChatOps speaks to the engine in these); whoever sends it has checked
// that Actor may.
type Command struct {
	Verb  Verb
	Repo  string // owner/name
	PR    int
	Stage string // deploy, retry, rollback
	// To is the version a rollback restores (a tag or a version); empty
	// for the stage's previous one.
	To    string
	Force bool // deploy past window and alarms
	// Reason is a freeze's or a reject's reason, from the actor.
	Reason string
	Actor  string // the login of who asked
}

// Refusal is a command the engine declined, for a reason the user can
// act on ("prod was not skipped", "v1.2.0 is older than what prod runs").
// The reason is GitHub Markdown: outside text in it is escaped.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Do carries out a command on the rollout of a merged pull request (it
// implements chatops.Operator; the handler has checked the commenter's
// permission). Commands change the pipeline under its lease and
// its in-process lock, as a step of the engine does, so the scheduler never
// decides on a state a command is changing; what they cannot do safely
// (a version older than what a stage runs, a stage busy with another
// deploy) is refused with the reason.
func (e *Engine) Do(ctx context.Context, req Command) (string, error) {
	e.init()
	all, err := e.rollouts(ctx, req.Repo, req.PR)
	if err != nil {
		return "", err
	}
	if req.Verb == Status {
		var b strings.Builder
		for _, rr := range all {
			if len(all) > 1 {
				fmt.Fprintf(&b, "**%s** ", markdown.Escape(rr.Pipeline))
			}
			b.WriteString(statusText(rr)) // reads only: no lock
		}
		return b.String(), nil
	}
	if (req.Verb == Freeze || req.Verb == Unfreeze) && len(all) > 1 {
		// The merge runs several pipelines: the freeze holds them all.
		var texts []string
		for _, rr := range all {
			text, err := e.do(ctx, rr, req)
			if err != nil {
				return "", err
			}
			texts = append(texts, text)
		}
		return strings.Join(texts, "\n"), nil
	}
	rr, err := pick(all, req.Stage)
	if err != nil {
		return "", err
	}
	return e.do(ctx, rr, req)
}

// rollouts are the rollouts of the pull request's merge: one, or one per
// pipeline it runs in the pipelines: form.
func (e *Engine) rollouts(ctx context.Context, repo string, pr int) ([]store.RolloutRun, error) {
	rr, err := e.Store.RolloutByPR(ctx, repo, pr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Refusal{Reason: "this pull request's merge has no rollout (it was not released, or its repository has no stages)."}
	}
	if err != nil {
		return nil, err
	}
	all, err := e.Store.RolloutsOf(ctx, rr.Run.ID)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		all = []store.RolloutRun{rr}
	}
	return all, nil
}

// pick is the rollout a command's stage names: "<pipeline>/<stage>", or a
// bare stage name only one of the merge's pipelines has.
func pick(all []store.RolloutRun, stage string) (store.RolloutRun, error) {
	if len(all) == 1 {
		return all[0], nil
	}
	pl, st, qualified := strings.Cut(stage, "/")
	var found []store.RolloutRun
	var refs []string
	for _, rr := range all {
		for _, s := range rr.Stages {
			refs = append(refs, rr.Pipeline+"/"+s.Name)
			if qualified && rr.Pipeline == pl && s.Name == st || !qualified && s.Name == stage {
				found = append(found, rr)
			}
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	what := "names no stage of"
	if len(found) > 1 {
		what = "is a stage of several of"
	}
	return store.RolloutRun{}, &Refusal{Reason: fmt.Sprintf("%q %s the pipelines this merge runs; name one of %s.",
		markdown.Escape(stage), what, markdown.Escape(strings.Join(refs, ", ")))}
}

// do carries out req on one rollout, under its pipeline's lease.
func (e *Engine) do(ctx context.Context, rr store.RolloutRun, req Command) (string, error) {
	var err error
	key := rr.PipelineKey
	release, err := e.holdForCommand(ctx, pipelineLease(key))
	if err != nil {
		return "", err
	}
	defer release()
	// Read the run again under the lock: what a command checks is what
	// it changes, not what a step changed since.
	if rr, err = e.Store.GetRollout(ctx, rr.ID); err != nil {
		return "", err
	}
	r := &pipelineRun{RolloutRun: rr}
	if r.cfg, err = e.parseConfig(rr.Repo, rr.Config); err != nil {
		return "", fmt.Errorf("config of run %s: %w", rr.ID, err)
	}
	var text string
	switch req.Verb {
	case Freeze:
		if err := e.freeze(ctx, key, req.Reason, req.Actor); err != nil {
			return "", err
		}
		text = fmt.Sprintf("Froze pipeline %s: no stage starts until `/shipbot unfreeze`.", r.pipe().Name)
	case Unfreeze:
		if frozen, err := e.unfreeze(ctx, key, req.Actor); err != nil {
			return "", err
		} else if !frozen {
			return "", &Refusal{Reason: fmt.Sprintf("pipeline %s is not frozen.", r.pipe().Name)}
		}
		text = fmt.Sprintf("Unfroze pipeline %s.", r.pipe().Name)
	default:
		s, idx, err := stageOf(r, req.Stage)
		if err != nil {
			return "", err
		}
		switch req.Verb {
		case Deploy:
			text, err = e.deployStage(ctx, r, s, idx, req)
		case Retry:
			text, err = e.retryStage(ctx, r, s, idx, req)
		case Rollback:
			text, err = e.rollbackStage(ctx, r, s, idx, req)
		case Approve:
			text, err = e.approveStage(ctx, r, s, idx, req)
		case Reject:
			text, err = e.rejectStage(ctx, r, s, idx, req)
		default:
			return "", fmt.Errorf("unknown command %q", req.Verb)
		}
		if err != nil {
			return "", err
		}
		e.emit(r, s.Name, "command", fmt.Sprintf("%s by @%s", req.Verb, req.Actor))
	}
	e.Log.Info("command", "run", rr.ID, "repo", rr.Repo, "pr", rr.PR, "verb", req.Verb, "stage", req.Stage,
		"force", req.Force, "actor", req.Actor)
	e.reported(ctx, rr.ID)
	e.Wake()
	return text, nil
}

// Refused puts a command that was refused (for want of permission, or
// because it would break the pipeline's order) on the audit log of the
// rollout it named, with the reason (it implements chatops.Recorder): the
// log says who asked what, also when nothing changed. A pull request
// without rollout has no log to put it on; a failure to record is logged,
// not returned: the refusal stands either way.
func (e *Engine) Refused(ctx context.Context, req Command, reason string) {
	e.init()
	all, err := e.rollouts(ctx, req.Repo, req.PR)
	if err != nil {
		return
	}
	rr := all[0]
	if picked, err := pick(all, req.Stage); err == nil {
		rr = picked
	}
	stage := req.Stage
	if pl, st, ok := strings.Cut(stage, "/"); ok && pl == rr.Pipeline {
		stage = st
	}
	if err := e.Store.RecordRefused(ctx, rr.ID, commandEvent(req, stage, "refused: "+reason)); err != nil && ctx.Err() == nil {
		e.Log.Warn("record a refused command", "run", rr.ID, "verb", req.Verb, "actor", req.Actor, "err", err)
	}
}

// holdForCommand holds a pipeline's lease for a command, however busy the
// pipeline: the replica driving it is asked to hand it over (it does
// between two steps), and a dead one's lease is waited out, so a command
// works on every replica instead of answering "try again".
func (e *Engine) holdForCommand(ctx context.Context, name string) (func(), error) {
	deadline := time.Now().Add(commandLeaseWait)
	var asked time.Time
	for {
		release, held, err := e.leases.Hold(ctx, name)
		if err != nil {
			return nil, err
		}
		if held {
			return release, nil
		}
		if e.Peers != nil && time.Since(asked) >= time.Second {
			// Asked again every second: a notification may be lost.
			req, _ := json.Marshal(yieldRequest{Lease: name, By: e.Owner})
			if err := e.Peers.Notify(ctx, yieldChannel, string(req)); err != nil {
				e.Log.Warn("ask the replica driving the pipeline to hand it over", "lease", name, "err", err)
			}
			asked = time.Now()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is held by another replica that neither handed it over nor let it expire within %s", name, commandLeaseWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// commandLeaseWait bounds how long a command waits for a pipeline's lease:
// past the lease's TTL, so a dead holder's lease has run out.
const commandLeaseWait = lease.DefaultTTL + 5*time.Second

// stageOf finds the named stage in the run's configuration and rollout.
func stageOf(r *pipelineRun, name string) (config.Stage, int, error) {
	if pl, st, ok := strings.Cut(name, "/"); ok && pl == r.Pipeline {
		name = st // "<pipeline>/<stage>", as the pipelines: form names it
	}
	s, ok := r.pipe().Stage(name)
	row, has := stageRow(r, name)
	if !ok || !has {
		names := make([]string, 0, len(r.Stages))
		for _, st := range r.Stages {
			names = append(names, st.Name)
		}
		return config.Stage{}, 0, &Refusal{Reason: fmt.Sprintf("%s has no stage %q; its stages are %s.", r.Tag, name, strings.Join(names, ", "))}
	}
	return s, row.Index, nil
}

// inOrder refuses to put r back at stage idx (pending again, or active
// for a rollback, with the later stages it skipped pending again) when
// that would break the pipeline's order: a newer version entered the stage
// since (versions only go up in a stage), a later stage already ran this
// version, or a newer version still in the pipeline is ahead of it. The
// scheduler's own validation of the resulting state is the judge of the
// last.
func (e *Engine) inOrder(ctx context.Context, r *pipelineRun, s config.Stage, idx int, to schedule.StageState) error {
	for j := idx + 1; j < len(r.Stages); j++ {
		switch r.Stages[j].State {
		case schedule.Pending:
		case schedule.Skipped:
			if to == schedule.Active {
				return &Refusal{Reason: fmt.Sprintf("%s went on past %s (%s was skipped); only the last stage a version reached is rolled back.", r.Tag, s.Name, r.Stages[j].Name)}
			}
		default:
			return &Refusal{Reason: fmt.Sprintf("%s has already reached %s, after %s.", r.Tag, r.Stages[j].Name, s.Name)}
		}
	}
	tag, newer, err := e.Store.NewerEntered(ctx, r.PipelineKey, idx, r.Order)
	if err != nil {
		return err
	}
	if newer {
		return &Refusal{Reason: fmt.Sprintf("%s has since been deployed to %s, and versions only go up in a stage; merge a new change instead.", tag, s.Name)}
	}
	runs, err := e.load(ctx, r.PipelineKey)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return nil
	}
	sh := shapeOf(&runs[len(runs)-1])
	stages := sh.Stages
	st := schedule.State{Stages: make([]schedule.Stage, len(stages))}
	mine := scheduleRun(r, sh)
	for k, cs := range stages {
		switch {
		case cs.Name == s.Name:
			mine.Stages[k] = to
		case k > idx && mine.Stages[k] == schedule.Skipped:
			mine.Stages[k] = schedule.Pending
		}
	}
	st.Runs = append(st.Runs, mine)
	for i := range runs {
		if runs[i].ID != r.ID {
			st.Runs = append(st.Runs, scheduleRun(&runs[i], sh))
		}
	}
	if err := st.Validate(); err != nil {
		e.Log.Info("command refused: out of order", "run", r.ID, "stage", s.Name, "err", err)
		return &Refusal{Reason: fmt.Sprintf("a newer version is already ahead of %s in the pipeline at or after %s; merge a new change instead.", r.Tag, s.Name)}
	}
	return nil
}

func (e *Engine) deployStage(ctx context.Context, r *pipelineRun, s config.Stage, idx int, req Command) (string, error) {
	row, _ := stageRow(r, s.Name)
	forceBy := ""
	if req.Force {
		forceBy = req.Actor
	}
	switch row.State {
	case schedule.Skipped:
		if err := e.inOrder(ctx, r, s, idx, schedule.Pending); err != nil {
			return "", err
		}
		if err := e.Store.ReopenStage(ctx, r.ID, idx, []schedule.StageState{schedule.Skipped}, req.Actor, forceBy,
			commandEvent(req, s.Name, "label "+s.SkipLabelName()+" skipped it")); err != nil {
			return "", stateChanged(err, s.Name)
		}
		text := fmt.Sprintf("%s will deploy to %s in version order, although label %s skips it.", r.Tag, s.Name, s.SkipLabelName())
		if req.Force {
			text += " Forced: its deploy window and alarms will not hold it (recorded)."
		}
		return text, nil
	case schedule.Pending:
		if !req.Force {
			return "", &Refusal{Reason: fmt.Sprintf("%s is already on its way to %s (%s). An admin can pass a closed window or firing alarms with `/shipbot deploy %s --force`.",
				r.Tag, s.Name, markdown.Escape(orQueued(row.Wait.Text())), s.Name)}
		}
		if err := e.Store.ForceStage(ctx, r.ID, idx, req.Actor, commandEvent(req, s.Name, "past its deploy window and alarms")); err != nil {
			return "", stateChanged(err, s.Name)
		}
		return fmt.Sprintf("Forced: %s goes to %s past its deploy window and alarms (recorded); a freeze still holds it.", r.Tag, s.Name), nil
	case schedule.Passed:
		return "", &Refusal{Reason: fmt.Sprintf("%s is already deployed to %s.", r.Tag, s.Name)}
	case schedule.Active:
		return "", &Refusal{Reason: fmt.Sprintf("%s is deploying to %s now.", r.Tag, s.Name)}
	case schedule.Failed, schedule.RolledBack:
		return "", &Refusal{Reason: fmt.Sprintf("%s failed in %s; use `/shipbot retry %s`.", r.Tag, s.Name, s.Name)}
	}
	return "", &Refusal{Reason: fmt.Sprintf("%s is %s in %s; there is nothing to deploy.", r.Tag, row.State, s.Name)}
}

func (e *Engine) retryStage(ctx context.Context, r *pipelineRun, s config.Stage, idx int, req Command) (string, error) {
	row, _ := stageRow(r, s.Name)
	st := row.State
	if st != schedule.Failed && st != schedule.RolledBack {
		return "", &Refusal{Reason: fmt.Sprintf("%s did not fail in %s (it is %s); only a failed stage is retried.", r.Tag, s.Name, row.State)}
	}
	if err := e.inOrder(ctx, r, s, idx, schedule.Pending); err != nil {
		return "", err
	}
	if err := e.Store.ReopenStage(ctx, r.ID, idx, []schedule.StageState{st}, "", "", commandEvent(req, s.Name, "after it "+st.String())); err != nil {
		return "", stateChanged(err, s.Name)
	}
	return fmt.Sprintf("Retrying %s in %s as a new attempt.", r.Tag, s.Name), nil
}

func (e *Engine) rollbackStage(ctx context.Context, r *pipelineRun, s config.Stage, idx int, req Command) (string, error) {
	row, _ := stageRow(r, s.Name)
	if row.State != schedule.Passed {
		return "", &Refusal{Reason: fmt.Sprintf("%s is not deployed to %s (it is %s); only a deployed version is rolled back.", r.Tag, s.Name, row.State)}
	}
	if err := e.inOrder(ctx, r, s, idx, schedule.Active); err != nil {
		return "", err
	}
	if busy, ok, err := e.Store.ActiveAt(ctx, r.PipelineKey, idx); err != nil {
		return "", err
	} else if ok {
		return "", &Refusal{Reason: fmt.Sprintf("%s is busy deploying %s; freeze the pipeline first, then roll back once it is done.", s.Name, busy.Tag)}
	}
	// What the stage ran before this version, newest first: the previous
	// one, or the one named.
	ran, err := e.Store.StageVersions(ctx, r.PipelineKey, idx, r.Order, maxRollbackChoices)
	if err != nil {
		return "", err
	}
	if len(ran) == 0 {
		return "", &Refusal{Reason: fmt.Sprintf("no earlier version was deployed to %s; there is nothing to roll back to.", s.Name)}
	}
	to, ok := rollbackTarget(ran, req.To)
	if !ok {
		return "", &Refusal{Reason: fmt.Sprintf("%s did not run %s before %s; it ran %s.", s.Name, markdown.Escape(req.To), r.Tag, tagList(ran))}
	}
	version, tag := to.Version, to.Tag
	execs, err := e.newExecutions(ctx, r, idx, s, true, version, tag)
	if err != nil {
		return "", err
	}
	if err := e.Store.Reenter(ctx, schedule.Passed, execs, commandEvent(req, s.Name, "from "+r.Tag+" to "+tag)); err != nil {
		return "", stateChanged(err, s.Name)
	}
	return fmt.Sprintf("Rolling %s back from %s to %s.", s.Name, r.Tag, tag), nil
}

// maxRollbackChoices bounds the versions a rollback looks among (and a
// refusal lists): the newest a stage ran before.
const maxRollbackChoices = 50

// rollbackTarget is the version a rollback restores among those the stage
// ran (newest first): the named one, by tag or version, or the previous.
func rollbackTarget(ran []store.Release, named string) (store.Release, bool) {
	if named == "" {
		return ran[0], true
	}
	for _, r := range ran {
		if r.Tag == named || r.Version == named || r.Version == strings.TrimPrefix(named, "v") {
			return r, true
		}
	}
	return store.Release{}, false
}

// tagList names versions for a reply, at most ten.
func tagList(rs []store.Release) string {
	var tags []string
	for i, r := range rs {
		if i == 10 {
			tags = append(tags, fmt.Sprintf("and %d more", len(rs)-i))
			break
		}
		tags = append(tags, r.Tag)
	}
	return strings.Join(tags, ", ")
}

// approveStage lets the run into a stage that waits for approval, in
// version order (chatops checked who may).
func (e *Engine) approveStage(ctx context.Context, r *pipelineRun, s config.Stage, idx int, req Command) (string, error) {
	row, err := e.decidable(r, s, req)
	if err != nil {
		return "", err
	}
	if row.ApprovedBy != "" {
		return "", &Refusal{Reason: fmt.Sprintf("%s was already approved into %s by @%s.", r.Tag, s.Name, markdown.Escape(row.ApprovedBy))}
	}
	if err := e.Store.ApproveStage(ctx, r.ID, idx, req.Actor, commandEvent(req, s.Name, "")); err != nil {
		return "", stateChanged(err, s.Name)
	}
	return fmt.Sprintf("Approved: %s goes to %s in version order.", r.Tag, s.Name), nil
}

// rejectStage fails a stage that waits for approval: the run stops there.
func (e *Engine) rejectStage(ctx context.Context, r *pipelineRun, s config.Stage, idx int, req Command) (string, error) {
	if _, err := e.decidable(r, s, req); err != nil {
		return "", err
	}
	failed := "rejected by @" + req.Actor
	if req.Reason != "" {
		failed += ": " + req.Reason
	}
	if err := e.Store.RejectStage(ctx, r.ID, idx, req.Actor, req.Reason, commandEvent(req, s.Name, ""),
		stageEvent(store.KindStageFailed, s.Name, failed)); err != nil {
		return "", stateChanged(err, s.Name)
	}
	return fmt.Sprintf("Rejected: %s will not deploy to %s; its rollout stops there.", r.Tag, s.Name), nil
}

// decidable refuses an approval or a rejection of a stage that needs none
// or that the run is no longer waiting for.
func (e *Engine) decidable(r *pipelineRun, s config.Stage, req Command) (store.StageRow, error) {
	row, _ := stageRow(r, s.Name)
	if !s.Approval {
		return row, &Refusal{Reason: fmt.Sprintf("%s needs no approval (its configuration does not set `approval: true`).", s.Name)}
	}
	if row.State != schedule.Pending {
		return row, &Refusal{Reason: fmt.Sprintf("%s is %s in %s; only a version waiting for it can be approved or rejected.", r.Tag, row.State, s.Name)}
	}
	return row, nil
}

// commandEvent records a command as its commenter typed it, and what it
// came to (why, in words).
func commandEvent(req Command, stage, why string) store.Event {
	line := "/shipbot " + string(req.Verb) + " " + req.Stage
	if req.Force {
		line += " --force"
	}
	if req.To != "" {
		line += " to " + req.To
	}
	if req.Reason != "" {
		line += " " + req.Reason
	}
	if why != "" {
		line += " (" + why + ")"
	}
	return store.Event{Kind: store.CommandKind(string(req.Verb)), Stage: stage, Actor: req.Actor, Detail: line}
}

func stateChanged(err error, stage string) error {
	if errors.Is(err, store.ErrStateChanged) {
		return &Refusal{Reason: fmt.Sprintf("%s changed while the command ran; look at the rollout and try again.", stage)}
	}
	return err
}

func orQueued(wait string) string {
	if wait == "" {
		return "queued"
	}
	return wait
}

// statusText is the rollout in a few lines of Markdown. A stage's state
// quotes outside text (a freeze reason, an alarm's answer) and logins,
// escaped: the reply must neither render them nor notify anyone.
func statusText(rr store.RolloutRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n\n", rr.Tag)
	for _, s := range rr.Stages {
		state := s.State.String()
		if !s.Wait.None() {
			state += " (" + s.Wait.Text() + ")"
		}
		if s.DeployBy != "" {
			state += ", deployed on request of @" + s.DeployBy
		}
		if s.ForceBy != "" {
			state += ", forced by @" + s.ForceBy
		}
		if s.ApprovedBy != "" {
			state += ", approved by @" + s.ApprovedBy
		}
		if s.RejectedBy != "" {
			state += ", rejected by @" + s.RejectedBy
			if s.Rejection != "" {
				state += ": " + s.Rejection
			}
		}
		fmt.Fprintf(&b, "- %s: %s\n", s.Name, markdown.Escape(state))
	}
	return b.String()
}

// Freeze holds every new stage start of the pipeline key until Unfreeze.
// It is the one way to freeze, for the API as for /shipbot freeze.
func (e *Engine) Freeze(ctx context.Context, key, reason, actor string) error {
	e.init()
	release, held, err := e.leases.Hold(ctx, pipelineLease(key))
	if err != nil {
		return err
	}
	if held {
		defer release()
	}
	// Without the lease (another replica drives the pipeline) the freeze
	// still holds: that replica reads it before it starts any stage.
	return e.freeze(ctx, key, reason, actor)
}

// Unfreeze lets the pipeline's stages start again; frozen reports whether
// it was frozen. actor is who asked, for the audit log.
func (e *Engine) Unfreeze(ctx context.Context, key, actor string) (frozen bool, err error) {
	e.init()
	release, held, err := e.leases.Hold(ctx, pipelineLease(key))
	if err != nil {
		return false, err
	}
	if held {
		defer release()
	}
	return e.unfreeze(ctx, key, actor)
}

func (e *Engine) freeze(ctx context.Context, key, reason, actor string) error {
	if err := e.Store.Freeze(ctx, key, reason, actor); err != nil {
		return err
	}
	e.Log.Info("pipeline frozen", "pipeline", key, "actor", actor, "reason", reason)
	e.Wake()
	return nil
}

func (e *Engine) unfreeze(ctx context.Context, key, actor string) (bool, error) {
	if was, err := e.Store.Unfreeze(ctx, key, actor); err != nil || !was {
		return false, err
	}
	e.Log.Info("pipeline unfrozen", "pipeline", key, "actor", actor)
	e.Wake()
	return true, nil
}

// Approval says whether stage of the pull request's rollout waits for an
// approval and who may give it (it implements chatops.Operator's
// Approval). stage is a stage name, or "<pipeline>/<stage>"; it is looked
// up in the configuration the rollout runs with, so the rules are those
// the merge released with. It reads only: no lock.
//
// Of a merge that runs several pipelines, the stage picks the rollout
// (see pick): a bare name several of them have is refused, naming them.
func (e *Engine) Approval(ctx context.Context, repo string, pr int, stage string) (Approval, error) {
	e.init()
	all, err := e.rollouts(ctx, repo, pr)
	if err != nil {
		return Approval{}, err
	}
	rr, err := pick(all, stage)
	if err != nil {
		return Approval{}, err
	}
	cfg, err := e.parseConfig(rr.Repo, rr.Config)
	if err != nil {
		return Approval{}, fmt.Errorf("config of run %s: %w", rr.ID, err)
	}
	name := stage
	if pl, st, ok := strings.Cut(stage, "/"); ok && pl == rr.Pipeline {
		name = st
	}
	p, _ := cfg.Pipeline(rr.Pipeline)
	s, ok := p.Stage(name)
	if !ok {
		names := make([]string, 0, len(rr.Stages))
		for _, st := range rr.Stages {
			names = append(names, st.Name)
		}
		return Approval{}, &Refusal{Reason: fmt.Sprintf("%s has no stage %s; its stages are %s.",
			rr.Tag, markdown.Escape(stage), markdown.Escape(strings.Join(names, ", ")))}
	}
	return Approval{Stage: s.Name, Required: s.Approval, Approvers: append([]string(nil), s.Approvers...)}, nil
}
