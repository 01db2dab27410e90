package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
)

// Execution phases, as the rollout model names them.
const (
	PhaseTriggering = rollout.Triggering
	PhaseDeploying  = rollout.Deploying
	PhaseBaking     = rollout.Baking
	PhaseFinished   = rollout.Finished
)

// Rollout states.
const (
	RolloutActive = "active"
	RolloutDone   = "done"
)

// StageRow and Execution are the rollout model's types, persisted as they
// are: states and phases by name, waits as JSON. An Execution's RolloutID
// is the id of the rollout it belongs to (see RolloutRun.ID).
type (
	StageRow  = rollout.Stage
	Execution = rollout.Execution
)

// RolloutRun is a rollout with the merge run it belongs to: one pipeline
// taking the merge's release through its stages.
//
// Run is the merge run. The fields that RolloutRun declares itself are the
// rollout's, and shadow the run's fields of the same name: ID is the
// rollout's id (Run.ID the run's), Pipeline, Version, Tag, PrevTag and
// ReleaseURL are the pipeline and the release the rollout deploys. A run's
// first rollout has the run's id and, in the single-pipeline form, the
// run's release, so for every run of that form the two are the same and
// every id users and downstreams have seen (run_id in payloads and
// Idempotency-Keys, /runs/{id}) names the rollout too. A second pipeline's
// rollout of the same run gets an id of its own.
//
// The views that list runs (RecentRollouts, GetRollout by a run's id)
// also give runs that have no rollout: Rollout is then "", ID, Pipeline
// and the release are the run's, and there are no stages.
type RolloutRun struct {
	Run
	ID          string
	Pipeline    string
	PipelineKey string
	Order       int64
	Rollout     string // RolloutActive, RolloutDone, or "" for a run without rollout
	Version     string
	Tag         string
	PrevTag     string
	ReleaseURL  string
	Config      []byte
	Labels      []string
	Stages      []StageRow
}

// Release is what a rollout deploys: the version a merge released for its
// pipeline, its tag, the tag before it and the GitHub Release.
type Release struct {
	Version, Tag, PrevTag, URL string
}

// Release is the release the rollout deploys (a Run's Release method is
// the run's intent; this one shadows it).
func (rr RolloutRun) Release() Release {
	return Release{Version: rr.Version, Tag: rr.Tag, PrevTag: rr.PrevTag, URL: rr.ReleaseURL}
}

// Release is the run's release intent: the version, tag and release that
// the merge recorded (before it created the tag). A single-pipeline merge
// rolls out exactly this.
func (r Run) Release() Release {
	return Release{Version: r.Version, Tag: r.Tag, PrevTag: r.PrevTag, URL: r.ReleaseURL}
}

// Rollouts persists the rollout engine's state. Every method that changes
// more than one row is one transaction, so a crash leaves either the state
// before or the state after.
//
// Methods that take a rolloutID (and Executions' RolloutID) name a rollout by
// RolloutRun.ID: for a run's first rollout, the run's id.
type Rollouts interface {
	// StartRollout puts a released run into pipelineKey's rollout, last in
	// version order, with every stage pending, deploying rel, and returns
	// the rollout's id and order. The run's first rollout takes the run's
	// id, another pipeline's rollout of the run an id of its own. Starting
	// a run in a pipeline again (a retry after a crash) keeps the
	// rollout's id, order, stages, configuration and labels; its release
	// becomes rel, as the merge knows it now (the same version: one
	// version per merge).
	//
	// Every method that changes state takes the events that record the
	// change (kind, stage, actor, detail; the store fills in the rest) and
	// writes them in the change's transaction; a call that changes nothing
	// records nothing. StartRollout records evs only when it creates the
	// rollout.
	StartRollout(ctx context.Context, runID, pipelineKey string, rel Release, config []byte, labels []string, stages []string, evs ...Event) (rolloutID string, order int64, err error)
	// SetLabels records the current labels of a pull request's rollouts.
	SetLabels(ctx context.Context, repo string, pr int, labels []string) error
	PipelinesWithRollouts(ctx context.Context) ([]string, error)
	// LoadRollout reads the pipeline's active rollouts, in order, with
	// their runs and stages.
	LoadRollout(ctx context.Context, pipelineKey string) ([]RolloutRun, error)
	// GetRollout reads a rollout by its id with its run and stages. An id
	// of a run that has no rollout gives that run, without rollout.
	GetRollout(ctx context.Context, rolloutID string) (RolloutRun, error)
	// RolloutsOf reads every rollout of a run (one per pipeline it runs),
	// with stages, in the order they started: the run's first rollout,
	// which has the run's id, first. A run without rollouts has none.
	RolloutsOf(ctx context.Context, runID string) ([]RolloutRun, error)
	SetStageState(ctx context.Context, rolloutID string, idx int, state schedule.StageState, evs ...Event) error
	// SetStageStates sets stages from idx on (a supersede).
	SetStageStatesFrom(ctx context.Context, rolloutID string, idx int, state schedule.StageState, evs ...Event) error
	// SetWait records why the rollout waits at stage idx; evs only when
	// the wait changed.
	SetWait(ctx context.Context, rolloutID string, idx int, wait rollout.Wait, evs ...Event) error
	// EnterStage marks the stage active and records its new executions:
	// one, or one per target of a wave, all of the same stage and attempt,
	// with the event stage.entered (stage.rolling_back for a rollback).
	EnterStage(ctx context.Context, execs ...Execution) error
	// NextAttempt is one more than the stage's highest attempt so far.
	NextAttempt(ctx context.Context, rolloutID string, idx int) (int, error)
	// UpdateExecution writes the engine's view of an execution. It never
	// clears an outcome (nor its reason and URL) that ReportOutcome recorded
	// meanwhile: a downstream may report while the engine is still sending
	// the trigger, and the engine's copy then has no outcome yet.
	UpdateExecution(ctx context.Context, e Execution, evs ...Event) error
	// FinishExecution records the execution's outcome (and how it passed)
	// and the stage's new state (Active while other targets of a wave are
	// still at work).
	FinishExecution(ctx context.Context, e Execution, stageState schedule.StageState, evs ...Event) error
	// FinishAndEnter finishes one execution and starts the next ones of
	// the same stage (a rollback: of every target of a wave) in one
	// transaction; the stage stays active. It records evs, then
	// stage.rolling_back.
	FinishAndEnter(ctx context.Context, finished Execution, next []Execution, evs ...Event) error
	OpenExecutions(ctx context.Context) ([]Execution, error)
	OpenExecutionsOf(ctx context.Context, pipelineKey string) ([]Execution, error)
	ReportOutcome(ctx context.Context, id string, outcome rollout.Outcome, reason, url string) error
	// RunByTag finds the run that released tag in repo: as its release
	// intent or as one of its rollouts' releases.
	RunByTag(ctx context.Context, repo, tag string) (Run, bool, error)
	ExecutionByToken(ctx context.Context, tokenHash string) (Execution, error)
	// Executions lists a rollout's executions by stage, then attempt, then
	// in the order they were entered (a wave's targets in stage order).
	Executions(ctx context.Context, rolloutID string) ([]Execution, error)
	// LastDeployed is the newest version a non-rollback execution deployed
	// successfully at stage idx for a rollout of the pipeline older than
	// beforeOrder: what a rollback restores.
	LastDeployed(ctx context.Context, pipelineKey string, idx int, beforeOrder int64) (version, tag string, ok bool, err error)
	FinishRollout(ctx context.Context, rolloutID string) error
	// Freeze and Unfreeze record pipeline.frozen and pipeline.unfrozen
	// with the actor (and the freeze's reason).
	Freeze(ctx context.Context, pipelineKey, reason, actor string) error
	// Unfreeze reports whether the pipeline was frozen; only then is
	// anything recorded.
	Unfreeze(ctx context.Context, pipelineKey, actor string) (bool, error)
	Frozen(ctx context.Context, pipelineKey string) (reason string, frozen bool, err error)
}

// StartRollout implements Rollouts.
func (s *SQLite) StartRollout(ctx context.Context, runID, pipelineKey string, rel Release, config []byte, labels []string, stages []string, evs ...Event) (string, int64, error) {
	lj, err := json.Marshal(nonNilStrings(labels))
	if err != nil {
		return "", 0, err
	}
	var id string
	var order int64
	err = s.tx(ctx, func(t sqlTx) error {
		now := ms(time.Now())
		err := t.QueryRowContext(ctx, `SELECT id, rollout_order FROM rollouts WHERE run_id = ? AND pipeline_key = ?`, runID, pipelineKey).Scan(&id, &order)
		if err == nil {
			// Already started (a retry): keep its place. The release is
			// the merge's as it stands now, as the run's own columns are.
			_, err := t.ExecContext(ctx, `UPDATE rollouts SET version = ?, tag = ?, prev_tag = ?, release_url = ?, updated_at = ?
				WHERE id = ? AND (version <> ? OR tag <> ? OR prev_tag <> ? OR release_url <> ?)`,
				rel.Version, rel.Tag, rel.PrevTag, rel.URL, now, id, rel.Version, rel.Tag, rel.PrevTag, rel.URL)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The run's first rollout takes the run's id, so that the ids
		// users and downstreams know a single-pipeline merge by name its
		// rollout; another pipeline's rollout of the run gets its own.
		var taken bool
		if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM rollouts WHERE id = ?)`, runID).Scan(&taken); err != nil {
			return err
		}
		id = runID
		if taken {
			id = NewID()
		}
		if err := t.QueryRowContext(ctx, `SELECT coalesce(max(rollout_order), 0) + 1 FROM rollouts WHERE pipeline_key = ?`, pipelineKey).Scan(&order); err != nil {
			return err
		}
		state := RolloutActive
		if len(stages) == 0 {
			state = RolloutDone
		}
		res, err := t.ExecContext(ctx, `INSERT INTO rollouts (id, run_id, pipeline, pipeline_key, version, tag, prev_tag, release_url,
			rollout_order, state, config, labels, created_at, updated_at)
			SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM runs WHERE id = ?`,
			id, pipelineName(pipelineKey), pipelineKey, rel.Version, rel.Tag, rel.PrevTag, rel.URL,
			order, state, nonNilBytes(config), string(lj), now, now, runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %s: %w", runID, ErrNotFound)
		}
		for i, name := range stages {
			if _, err := t.ExecContext(ctx, `INSERT INTO stage_states (rollout_id, idx, stage, state, updated_at) VALUES (?, ?, ?, 'pending', ?)`,
				id, i, name, now); err != nil {
				return err
			}
		}
		return insertRolloutEvents(ctx, sqlExec{t}, id, evs)
	})
	if err != nil {
		return "", 0, fmt.Errorf("start rollout of run %s in %s: %w", runID, pipelineKey, err)
	}
	return id, order, nil
}

// pipelineName is the pipeline's name in its key (owner/name:pipeline).
// Repository names have no colon, so the first one ends the repository.
func pipelineName(key string) string {
	if _, name, ok := strings.Cut(key, ":"); ok {
		return name
	}
	return key
}

func nonNilStrings(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// SetLabels implements Rollouts.
func (s *queries) SetLabels(ctx context.Context, repo string, pr int, labels []string) error {
	lj, err := json.Marshal(nonNilStrings(labels))
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE rollouts SET labels = ?
		WHERE run_id IN (SELECT id FROM runs WHERE repo = ? AND pr = ?)`, string(lj), repo, pr); err != nil {
		return fmt.Errorf("set labels of %s#%d: %w", repo, pr, err)
	}
	return nil
}

// PipelinesWithRollouts implements Rollouts.
func (s *queries) PipelinesWithRollouts(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT pipeline_key FROM rollouts WHERE state = 'active' ORDER BY pipeline_key`)
	if err != nil {
		return nil, fmt.Errorf("pipelines with rollouts: %w", err)
	}
	return out, nil
}

// rolloutCols are a rollout's columns with its run's, from runs r joined
// with rollouts o; for a run without rollout (a LEFT JOIN that found none)
// they are the run's own, with no rollout.
const rolloutCols = `r.id, r.repo, r.sha, r.installation, r.branch, r.pr, r.pr_facts, r.source, r.merged_at, r.parent, r.seq,
	r.state, r.pipeline, r.version, r.tag, r.prev_tag, r.release_url, r.summary, r.created_at, r.updated_at,
	coalesce(o.id, r.id), coalesce(o.pipeline, r.pipeline), coalesce(o.pipeline_key, ''), coalesce(o.rollout_order, 0),
	coalesce(o.state, ''), coalesce(o.version, r.version), coalesce(o.tag, r.tag), coalesce(o.prev_tag, r.prev_tag),
	coalesce(o.release_url, r.release_url), o.config, coalesce(o.labels, '[]')`

func scanRollout(sc interface{ Scan(...any) error }) (RolloutRun, error) {
	var rr RolloutRun
	var labels string
	r, err := scanRun(sc, &rr.ID, &rr.Pipeline, &rr.PipelineKey, &rr.Order, &rr.Rollout,
		&rr.Version, &rr.Tag, &rr.PrevTag, &rr.ReleaseURL, &rr.Config, &labels)
	if err != nil {
		return rr, err
	}
	rr.Run = r
	if err := json.Unmarshal([]byte(labels), &rr.Labels); err != nil {
		return rr, fmt.Errorf("labels of rollout %s: %w", rr.ID, err)
	}
	return rr, nil
}

func (s *queries) stagesOf(ctx context.Context, ids []string) (map[string][]StageRow, error) {
	out := map[string][]StageRow{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, `SELECT rollout_id, idx, stage, state, wait, updated_at, deploy_by, force_by, approved_by, rejected_by, rejection FROM stage_states
		WHERE rollout_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY rollout_id, idx`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStages(rows)
}

// rowSource is what both stores' query results are to scanStages:
// database/sql's *sql.Rows and pgx's Rows.
type rowSource interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanStages reads rows of (rollout_id, idx, stage, state, wait,
// updated_at, deploy_by, force_by, approved_by, rejected_by, rejection).
func scanStages(rows rowSource) (map[string][]StageRow, error) {
	out := map[string][]StageRow{}
	for rows.Next() {
		var id, state, wait string
		var st StageRow
		var updated int64
		if err := rows.Scan(&id, &st.Index, &st.Name, &state, &wait, &updated, &st.DeployBy, &st.ForceBy,
			&st.ApprovedBy, &st.RejectedBy, &st.Rejection); err != nil {
			return nil, err
		}
		var err error
		if st.State, err = rollout.ParseStageState(state); err != nil {
			return nil, fmt.Errorf("rollout %s stage %d: %w", id, st.Index, err)
		}
		if st.Wait, err = rollout.UnmarshalWait(wait); err != nil {
			return nil, fmt.Errorf("rollout %s stage %d: %w", id, st.Index, err)
		}
		st.UpdatedAt = time.UnixMilli(updated)
		out[id] = append(out[id], st)
	}
	return out, rows.Err()
}

// LoadRollout implements Rollouts.
func (s *queries) LoadRollout(ctx context.Context, pipelineKey string) ([]RolloutRun, error) {
	out, ids, err := s.queryRollouts(ctx, `WHERE o.pipeline_key = ? AND o.state = 'active' ORDER BY o.rollout_order`, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("load rollout %s: %w", pipelineKey, err)
	}
	// The stages of the pipeline's active rollouts, by one query whose
	// text does not grow with them (an IN list of every id cost a fresh
	// parse of a long statement on every engine pass). A rollout finished
	// between the two queries has no stages here: read those by id.
	stages, err := s.activeStages(ctx, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("load stages of %s: %w", pipelineKey, err)
	}
	var missing []string
	for _, id := range ids {
		if _, ok := stages[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		more, err := s.stagesOf(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("load stages of %s: %w", pipelineKey, err)
		}
		maps.Copy(stages, more)
	}
	for i := range out {
		out[i].Stages = stages[out[i].ID]
	}
	return out, nil
}

// activeStages reads the stages of the pipeline's active rollouts.
func (s *queries) activeStages(ctx context.Context, pipelineKey string) (map[string][]StageRow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT st.rollout_id, st.idx, st.stage, st.state, st.wait, st.updated_at, st.deploy_by, st.force_by,
		st.approved_by, st.rejected_by, st.rejection
		FROM rollouts o JOIN stage_states st ON st.rollout_id = o.id
		WHERE o.pipeline_key = ? AND o.state = 'active' ORDER BY st.rollout_id, st.idx`, pipelineKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStages(rows)
}

// GetRollout implements Rollouts.
func (s *queries) GetRollout(ctx context.Context, rolloutID string) (RolloutRun, error) {
	// A run's first rollout has the run's id, so an id of a run that has
	// rollouts finds one by the first query; only a run without any falls
	// through to the second.
	rr, err := scanRollout(s.r.QueryRowContext(ctx, `SELECT `+rolloutCols+` FROM rollouts o JOIN runs r ON r.id = o.run_id
		WHERE o.id = ?`, rolloutID))
	if errors.Is(err, sql.ErrNoRows) {
		rr, err = scanRollout(s.r.QueryRowContext(ctx, `SELECT `+rolloutCols+` FROM runs r LEFT JOIN rollouts o ON false -- the run alone
			WHERE r.id = ?`, rolloutID))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return RolloutRun{}, fmt.Errorf("rollout %s: %w", rolloutID, ErrNotFound)
	}
	if err != nil {
		return RolloutRun{}, fmt.Errorf("read rollout %s: %w", rolloutID, err)
	}
	if rr.Rollout == "" {
		return rr, nil
	}
	stages, err := s.stagesOf(ctx, []string{rr.ID})
	if err != nil {
		return RolloutRun{}, fmt.Errorf("read stages of rollout %s: %w", rr.ID, err)
	}
	rr.Stages = stages[rr.ID]
	return rr, nil
}

// queryRollouts reads the rollouts (with their runs, without stages) that
// where selects, and their ids.
func (s *queries) queryRollouts(ctx context.Context, where string, args ...any) ([]RolloutRun, []string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+rolloutCols+` FROM rollouts o JOIN runs r ON r.id = o.run_id `+where, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []RolloutRun
	var ids []string
	for rows.Next() {
		rr, err := scanRollout(rows)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rr)
		ids = append(ids, rr.ID)
	}
	return out, ids, rows.Err()
}

// RolloutsOf implements Rollouts.
func (s *queries) RolloutsOf(ctx context.Context, runID string) ([]RolloutRun, error) {
	out, ids, err := s.queryRollouts(ctx, `WHERE o.run_id = ? ORDER BY o.id <> o.run_id, o.created_at, o.`+s.seq, runID)
	if err != nil {
		return nil, fmt.Errorf("rollouts of run %s: %w", runID, err)
	}
	stages, err := s.stagesOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stages of run %s's rollouts: %w", runID, err)
	}
	for i := range out {
		out[i].Stages = stages[out[i].ID]
	}
	return out, nil
}

// SetStageState implements Rollouts.
func (s *queries) SetStageState(ctx context.Context, rolloutID string, idx int, state schedule.StageState, evs ...Event) error {
	if err := s.change(ctx, rolloutID, evs, func(t execer) (bool, error) {
		n, err := t.ExecContext(ctx, `UPDATE stage_states SET state = ?, wait = '', updated_at = ? WHERE rollout_id = ? AND idx = ?`,
			state.String(), ms(time.Now()), rolloutID, idx)
		return n > 0, err
	}); err != nil {
		return fmt.Errorf("set stage %d of rollout %s to %s: %w", idx, rolloutID, state, err)
	}
	return nil
}

// SetStageStatesFrom implements Rollouts.
func (s *queries) SetStageStatesFrom(ctx context.Context, rolloutID string, idx int, state schedule.StageState, evs ...Event) error {
	if err := s.change(ctx, rolloutID, evs, func(t execer) (bool, error) {
		n, err := t.ExecContext(ctx, `UPDATE stage_states SET state = ?, wait = '', updated_at = ? WHERE rollout_id = ? AND idx >= ?`,
			state.String(), ms(time.Now()), rolloutID, idx)
		return n > 0, err
	}); err != nil {
		return fmt.Errorf("set stages %d.. of rollout %s to %s: %w", idx, rolloutID, state, err)
	}
	return nil
}

// SetWait implements Rollouts.
func (s *queries) SetWait(ctx context.Context, rolloutID string, idx int, w rollout.Wait, evs ...Event) error {
	wait, err := rollout.MarshalWait(w)
	if err != nil {
		return fmt.Errorf("set wait of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	if err := s.change(ctx, rolloutID, evs, func(t execer) (bool, error) {
		n, err := t.ExecContext(ctx, `UPDATE stage_states SET wait = ? WHERE rollout_id = ? AND idx = ? AND wait <> ?`, wait, rolloutID, idx, wait)
		return n > 0, err
	}); err != nil {
		return fmt.Errorf("set wait of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	return nil
}

// EnterStage implements Rollouts.
func (s *queries) EnterStage(ctx context.Context, execs ...Execution) error {
	if len(execs) == 0 {
		return errors.New("enter stage: no execution")
	}
	e := execs[0]
	err := s.tx(ctx, func(t sqlTx) error {
		if _, err := t.ExecContext(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = ? WHERE rollout_id = ? AND idx = ?`,
			ms(time.Now()), e.RolloutID, e.Stage); err != nil {
			return err
		}
		if err := insertExecutions(ctx, t, execs); err != nil {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, e.RolloutID, []Event{Entered(execs)})
	})
	if err != nil {
		return fmt.Errorf("enter stage %s of rollout %s: %w", e.StageName, e.RolloutID, err)
	}
	return nil
}

// NextAttempt implements Rollouts.
func (s *queries) NextAttempt(ctx context.Context, rolloutID string, idx int) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(attempt), 0) + 1 FROM executions WHERE rollout_id = ? AND idx = ?`, rolloutID, idx).Scan(&n); err != nil {
		return 0, fmt.Errorf("next attempt of rollout %s stage %d: %w", rolloutID, idx, err)
	}
	return n, nil
}

// UpdateExecution implements Rollouts.
func (s *queries) UpdateExecution(ctx context.Context, e Execution, evs ...Event) error {
	// The CASEs read the row as it was: an outcome already recorded stays,
	// with its reason, unless e brings one of its own; a URL is never
	// replaced by none.
	if err := s.change(ctx, e.RolloutID, evs, func(t execer) (bool, error) {
		n, err := t.ExecContext(ctx, `UPDATE executions SET phase = ?,
		outcome = CASE WHEN CAST(? AS TEXT) <> '' THEN ? ELSE outcome END,
		reason = CASE WHEN CAST(? AS TEXT) = '' AND outcome <> '' THEN reason ELSE ? END,
		event_id = ?,
		url = CASE WHEN CAST(? AS TEXT) <> '' THEN ? ELSE url END,
		deadline = ?, bake_until = ?, next_check = ? WHERE id = ?`,
			e.Phase, e.Outcome, e.Outcome, e.Outcome, e.Reason, e.EventID, e.URL, e.URL,
			ms(e.Deadline), ms(e.BakeUntil), ms(e.NextCheck), e.ID)
		return n > 0, err
	}); err != nil {
		return fmt.Errorf("update execution %s: %w", e.ID, err)
	}
	return nil
}

// FinishExecution implements Rollouts.
func (s *queries) FinishExecution(ctx context.Context, e Execution, stageState schedule.StageState, evs ...Event) error {
	err := s.tx(ctx, func(t sqlTx) error {
		now := ms(time.Now())
		res, err := t.ExecContext(ctx, `UPDATE executions SET phase = 'finished', outcome = ?, pass = ?, reason = ?, url = ?, finished_at = ?
			WHERE id = ? AND phase <> 'finished'`, e.Outcome, e.Pass, e.Reason, e.URL, now, e.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAlreadyFinished
		}
		if _, err = t.ExecContext(ctx, `UPDATE stage_states SET state = ?, wait = '', updated_at = ? WHERE rollout_id = ? AND idx = ?`,
			stageState.String(), now, e.RolloutID, e.Stage); err != nil {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, e.RolloutID, evs)
	})
	if errors.Is(err, errAlreadyFinished) {
		return fmt.Errorf("finish execution %s: %w", e.ID, ErrFinished)
	}
	if err != nil {
		return fmt.Errorf("finish execution %s: %w", e.ID, err)
	}
	return nil
}

var errAlreadyFinished = errors.New("already finished")

// ErrFinished means an execution already had its outcome: a second report
// changes nothing.
var ErrFinished = errors.New("execution already finished")

const execCols = `id, rollout_id, idx, stage, target, attempt, rollback, version, tag, phase, outcome, pass, reason, token_hash,
	event_id, url, deadline, bake_until, next_check, created_at, finished_at`

func scanExecution(sc interface{ Scan(...any) error }) (Execution, error) {
	var e Execution
	var deadline, bake, next, created, finished int64
	err := sc.Scan(&e.ID, &e.RolloutID, &e.Stage, &e.StageName, &e.Target, &e.Attempt, &e.Rollback, &e.Version, &e.Tag, &e.Phase,
		&e.Outcome, &e.Pass, &e.Reason, &e.TokenHash, &e.EventID, &e.URL, &deadline, &bake, &next, &created, &finished)
	e.Deadline, e.BakeUntil, e.NextCheck = fromMS(deadline), fromMS(bake), fromMS(next)
	e.CreatedAt, e.FinishedAt = fromMS(created), fromMS(finished)
	return e, err
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func (s *queries) queryExecutions(ctx context.Context, q string, args ...any) ([]Execution, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+execCols+` FROM executions `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// OpenExecutions implements Rollouts.
func (s *queries) OpenExecutions(ctx context.Context) ([]Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE phase <> 'finished' ORDER BY created_at, `+s.seq)
	if err != nil {
		return nil, fmt.Errorf("open executions: %w", err)
	}
	return out, nil
}

// ExecutionByToken implements Rollouts.
func (s *queries) ExecutionByToken(ctx context.Context, tokenHash string) (Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE token_hash = ?`, tokenHash)
	if err != nil {
		return Execution{}, fmt.Errorf("execution by token: %w", err)
	}
	if len(out) == 0 {
		return Execution{}, ErrNotFound
	}
	return out[0], nil
}

// Executions implements Rollouts.
func (s *queries) Executions(ctx context.Context, rolloutID string) ([]Execution, error) {
	out, err := s.queryExecutions(ctx, `WHERE rollout_id = ? ORDER BY idx, attempt, `+s.seq, rolloutID)
	if err != nil {
		return nil, fmt.Errorf("executions of rollout %s: %w", rolloutID, err)
	}
	return out, nil
}

// LastDeployed implements Rollouts.
func (s *queries) LastDeployed(ctx context.Context, pipelineKey string, idx int, beforeOrder int64) (string, string, bool, error) {
	var version, tag string
	err := s.r.QueryRowContext(ctx, `SELECT e.version, e.tag FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE o.pipeline_key = ? AND e.idx = ? AND o.rollout_order < ? AND NOT e.rollback AND e.outcome = 'succeeded'
		ORDER BY o.rollout_order DESC, e.attempt DESC LIMIT 1`, pipelineKey, idx, beforeOrder).Scan(&version, &tag)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("last deployed at stage %d of %s: %w", idx, pipelineKey, err)
	}
	return version, tag, true, nil
}

// FinishRollout implements Rollouts.
func (s *queries) FinishRollout(ctx context.Context, rolloutID string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE rollouts SET state = 'done', updated_at = ? WHERE id = ?`, ms(time.Now()), rolloutID); err != nil {
		return fmt.Errorf("finish rollout %s: %w", rolloutID, err)
	}
	return nil
}

// Freeze implements Rollouts.
func (s *queries) Freeze(ctx context.Context, pipelineKey, reason, actor string) error {
	if err := s.tx(ctx, func(t sqlTx) error {
		if _, err := t.ExecContext(ctx, `INSERT INTO freezes (pipeline_key, reason, actor, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (pipeline_key) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, at = excluded.at`,
			pipelineKey, reason, actor, ms(time.Now())); err != nil {
			return err
		}
		return insertPipelineEvent(ctx, sqlExec{t}, pipelineKey, Event{Kind: KindPipelineFrozen, Actor: actor, Detail: reason})
	}); err != nil {
		return fmt.Errorf("freeze %s: %w", pipelineKey, err)
	}
	return nil
}

// Unfreeze implements Rollouts.
func (s *queries) Unfreeze(ctx context.Context, pipelineKey, actor string) (bool, error) {
	var was bool
	if err := s.tx(ctx, func(t sqlTx) error {
		res, err := t.ExecContext(ctx, `DELETE FROM freezes WHERE pipeline_key = ?`, pipelineKey)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		was = true
		return insertPipelineEvent(ctx, sqlExec{t}, pipelineKey, Event{Kind: KindPipelineUnfrozen, Actor: actor})
	}); err != nil {
		return false, fmt.Errorf("unfreeze %s: %w", pipelineKey, err)
	}
	return was, nil
}

// Frozen implements Rollouts.
func (s *queries) Frozen(ctx context.Context, pipelineKey string) (string, bool, error) {
	var reason string
	err := s.r.QueryRowContext(ctx, `SELECT reason FROM freezes WHERE pipeline_key = ?`, pipelineKey).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("frozen %s: %w", pipelineKey, err)
	}
	return reason, true, nil
}

// OpenExecutionsOf lists the pipeline's unfinished executions, oldest first.
func (s *queries) OpenExecutionsOf(ctx context.Context, pipelineKey string) ([]Execution, error) {
	// Driven by the partial index of open executions (a handful), each
	// looking its rollout up by key: "rollout_id IN (rollouts of the
	// pipeline)" made SQLite scan every rollout the database ever had, on
	// every engine pass.
	out, err := s.queryExecutions(ctx, `WHERE phase <> 'finished'
		AND (SELECT pipeline_key FROM rollouts WHERE rollouts.id = executions.rollout_id) = ? ORDER BY created_at, `+s.seq, pipelineKey)
	if err != nil {
		return nil, fmt.Errorf("open executions of %s: %w", pipelineKey, err)
	}
	return out, nil
}

// ReportOutcome records a downstream's report on an execution still
// waiting for one; the engine applies it. An execution that already has an
// outcome (or is baking or finished) returns ErrFinished.
func (s *queries) ReportOutcome(ctx context.Context, id string, outcome rollout.Outcome, reason, url string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE executions SET outcome = ?, reason = ?, url = CASE WHEN CAST(? AS TEXT) <> '' THEN ? ELSE url END
		WHERE id = ? AND phase IN ('triggering', 'deploying') AND outcome = ''`, outcome, reason, url, url, id)
	if err != nil {
		return fmt.Errorf("report outcome of execution %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("report outcome of execution %s: %w", id, ErrFinished)
	}
	return nil
}

// RunByTag implements Rollouts.
func (s *queries) RunByTag(ctx context.Context, repo, tag string) (Run, bool, error) {
	// The run's own tag is its release intent, there before any rollout
	// (and the only one when the rollout never started); a rollout's tag
	// is the release it deploys.
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE repo = ?
		AND (tag = ? OR EXISTS (SELECT 1 FROM rollouts o WHERE o.run_id = runs.id AND o.tag = ?)) LIMIT 1`, repo, tag, tag))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("run of %s %s: %w", repo, tag, err)
	}
	return r, true, nil
}

// FinishAndEnter implements Rollouts.
func (s *queries) FinishAndEnter(ctx context.Context, finished Execution, next []Execution, evs ...Event) error {
	if len(next) == 0 {
		return errors.New("finish and enter: no next execution")
	}
	err := s.tx(ctx, func(t sqlTx) error {
		now := ms(time.Now())
		res, err := t.ExecContext(ctx, `UPDATE executions SET phase = 'finished', outcome = ?, reason = ?, url = ?, finished_at = ?
			WHERE id = ? AND phase <> 'finished'`, finished.Outcome, finished.Reason, finished.URL, now, finished.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAlreadyFinished
		}
		if _, err := t.ExecContext(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = ? WHERE rollout_id = ? AND idx = ?`,
			now, next[0].RolloutID, next[0].Stage); err != nil {
			return err
		}
		if err := insertExecutions(ctx, t, next); err != nil {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, finished.RolloutID, append(evs, Entered(next)))
	})
	if errors.Is(err, errAlreadyFinished) {
		return fmt.Errorf("finish execution %s: %w", finished.ID, ErrFinished)
	}
	if err != nil {
		return fmt.Errorf("roll back stage %s of rollout %s: %w", next[0].StageName, next[0].RolloutID, err)
	}
	return nil
}

// insertExecutions records new executions of one stage attempt, in their
// targets' order (rowid keeps it for Executions).
func insertExecutions(ctx context.Context, t sqlTx, execs []Execution) error {
	now := ms(time.Now())
	for _, e := range execs {
		if _, err := t.ExecContext(ctx, `INSERT INTO executions (id, rollout_id, idx, stage, target, attempt, rollback, version, tag, phase,
			token_hash, deadline, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.RolloutID, e.Stage, e.StageName, e.Target, e.Attempt, e.Rollback, e.Version, e.Tag, e.Phase, e.TokenHash, ms(e.Deadline), now); err != nil {
			return err
		}
	}
	return nil
}
