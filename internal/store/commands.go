package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/schedule"
)

// ErrStateChanged means a stage was not in the state a command expected:
// something else moved it meanwhile.
var ErrStateChanged = errors.New("the stage changed meanwhile")

// Commands carries out what people ask of a merged pull request's rollout.
type Commands interface {
	// RolloutByPR is the rollout of the newest run of the pull request
	// that went into one: of a run with several (one per pipeline), its
	// first, which has the run's id.
	RolloutByPR(ctx context.Context, repo string, pr int) (RolloutRun, error)
	// ReopenStage puts stage idx of the rollout back to pending, when it is
	// in one of from, with the later stages a label skipped (they are
	// decided again when reached), and the rollout back into its pipeline.
	// deployBy and forceBy, when not empty, are recorded on the stage.
	//
	// Each method that changes state writes evs (the command's event:
	// command.<verb>, its actor and what they said) in its transaction.
	ReopenStage(ctx context.Context, rolloutID string, idx int, from []schedule.StageState, deployBy, forceBy string, evs ...Event) error
	// ForceStage records who forced a pending stage past its blockers.
	ForceStage(ctx context.Context, rolloutID string, idx int, forceBy string, evs ...Event) error
	// Reenter starts executions (one, or one per wave target) at a stage
	// its rollout had passed (a rollback asked for by hand), when the stage
	// is still from, and puts the rollout back into its pipeline. It
	// records evs (the command), then stage.rolling_back.
	Reenter(ctx context.Context, from schedule.StageState, execs []Execution, evs ...Event) error
	// ApproveStage records who approved the rollout into pending stage
	// idx.
	ApproveStage(ctx context.Context, rolloutID string, idx int, actor string, evs ...Event) error
	// RejectStage fails pending stage idx of the rollout on a person's
	// word, with their reason.
	RejectStage(ctx context.Context, rolloutID string, idx int, actor, reason string, evs ...Event) error
	// NewerEntered is the newest version of the pipeline, newer than
	// order, that ever entered stage idx.
	NewerEntered(ctx context.Context, pipelineKey string, idx int, order int64) (tag string, found bool, err error)
	// ActiveAt is the execution active at stage idx of the pipeline, if
	// any.
	ActiveAt(ctx context.Context, pipelineKey string, idx int) (Execution, bool, error)
	// StageVersions lists the versions a non-rollback execution deployed
	// successfully at stage idx for rollouts of the pipeline older than
	// beforeOrder, newest first, each once, at most limit: what a rollback
	// to a named version may restore. The first is LastDeployed's.
	StageVersions(ctx context.Context, pipelineKey string, idx int, beforeOrder int64, limit int) ([]Release, error)
	// RecordRefused puts a command that was refused, and so changed
	// nothing, on the rollout's audit log: the event is the whole record.
	RecordRefused(ctx context.Context, rolloutID string, ev Event) error
}

// RolloutByPR implements Commands.
func (s *queries) RolloutByPR(ctx context.Context, repo string, pr int) (RolloutRun, error) {
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT o.id FROM runs r JOIN rollouts o ON o.run_id = r.id
		WHERE r.repo = ? AND r.pr = ? ORDER BY r.created_at DESC, o.id = r.id DESC, o.created_at, o.id LIMIT 1`, repo, pr).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return RolloutRun{}, ErrNotFound
	}
	if err != nil {
		return RolloutRun{}, fmt.Errorf("rollout of %s#%d: %w", repo, pr, err)
	}
	return s.GetRollout(ctx, id)
}

// ReopenStage implements Commands.
func (s *queries) ReopenStage(ctx context.Context, rolloutID string, idx int, from []schedule.StageState, deployBy, forceBy string, evs ...Event) error {
	args := []any{ms(time.Now()), deployBy, deployBy, forceBy, forceBy, rolloutID, idx}
	for _, f := range from {
		args = append(args, f.String())
	}
	err := s.tx(ctx, func(t sqlTx) error {
		res, err := t.ExecContext(ctx, `UPDATE stage_states SET state = 'pending', wait = '', updated_at = ?,
			deploy_by = CASE WHEN CAST(? AS TEXT) <> '' THEN ? ELSE deploy_by END,
			force_by = CASE WHEN CAST(? AS TEXT) <> '' THEN ? ELSE force_by END
			WHERE rollout_id = ? AND idx = ? AND state IN (?`+strings.Repeat(",?", len(from)-1)+`)`, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrStateChanged
		}
		if _, err := t.ExecContext(ctx, `UPDATE stage_states SET state = 'pending', updated_at = ? WHERE rollout_id = ? AND idx > ? AND state = 'skipped'`,
			ms(time.Now()), rolloutID, idx); err != nil {
			return err
		}
		if _, err = t.ExecContext(ctx, `UPDATE rollouts SET state = 'active', updated_at = ? WHERE id = ?`, ms(time.Now()), rolloutID); err != nil {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, rolloutID, evs)
	})
	if err != nil {
		return fmt.Errorf("reopen stage %d of rollout %s: %w", idx, rolloutID, err)
	}
	return nil
}

// ForceStage implements Commands.
func (s *queries) ForceStage(ctx context.Context, rolloutID string, idx int, forceBy string, evs ...Event) error {
	return s.onPending(ctx, "force", rolloutID, idx, evs, `UPDATE stage_states SET force_by = ?, updated_at = ? WHERE rollout_id = ? AND idx = ? AND state = 'pending'`,
		forceBy, ms(time.Now()), rolloutID, idx)
}

// onPending runs a command's update of a pending stage, which must change
// exactly that stage, with the command's events.
func (s *queries) onPending(ctx context.Context, what, rolloutID string, idx int, evs []Event, q string, args ...any) error {
	err := s.change(ctx, rolloutID, evs, func(t execer) (bool, error) {
		n, err := t.ExecContext(ctx, q, args...)
		if err == nil && n != 1 {
			err = ErrStateChanged
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("%s stage %d of rollout %s: %w", what, idx, rolloutID, err)
	}
	return nil
}

// Reenter implements Commands.
func (s *queries) Reenter(ctx context.Context, from schedule.StageState, execs []Execution, evs ...Event) error {
	if len(execs) == 0 {
		return errors.New("re-enter stage: no execution")
	}
	e := execs[0]
	err := s.tx(ctx, func(t sqlTx) error {
		res, err := t.ExecContext(ctx, `UPDATE stage_states SET state = 'active', wait = '', updated_at = ? WHERE rollout_id = ? AND idx = ? AND state = ?`,
			ms(time.Now()), e.RolloutID, e.Stage, from.String())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrStateChanged
		}
		if _, err := t.ExecContext(ctx, `UPDATE rollouts SET state = 'active', updated_at = ? WHERE id = ?`, ms(time.Now()), e.RolloutID); err != nil {
			return err
		}
		if err := insertExecutions(ctx, t, execs); err != nil {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, e.RolloutID, append(evs, Entered(execs)))
	})
	if err != nil {
		return fmt.Errorf("re-enter stage %s of rollout %s: %w", e.StageName, e.RolloutID, err)
	}
	return nil
}

// ApproveStage implements Commands.
func (s *queries) ApproveStage(ctx context.Context, rolloutID string, idx int, actor string, evs ...Event) error {
	return s.onPending(ctx, "approve", rolloutID, idx, evs, `UPDATE stage_states SET approved_by = ?, updated_at = ? WHERE rollout_id = ? AND idx = ? AND state = 'pending'`,
		actor, ms(time.Now()), rolloutID, idx)
}

// RejectStage implements Commands.
func (s *queries) RejectStage(ctx context.Context, rolloutID string, idx int, actor, reason string, evs ...Event) error {
	return s.onPending(ctx, "reject", rolloutID, idx, evs, `UPDATE stage_states SET state = 'failed', wait = '', rejected_by = ?, rejection = ?, updated_at = ?
		WHERE rollout_id = ? AND idx = ? AND state = 'pending'`, actor, reason, ms(time.Now()), rolloutID, idx)
}

// NewerEntered implements Commands.
func (s *queries) NewerEntered(ctx context.Context, pipelineKey string, idx int, order int64) (string, bool, error) {
	var tag string
	err := s.r.QueryRowContext(ctx, `SELECT o.tag FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE o.pipeline_key = ? AND e.idx = ? AND o.rollout_order > ? AND NOT e.rollback
		ORDER BY o.rollout_order DESC LIMIT 1`, pipelineKey, idx, order).Scan(&tag)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("newer versions at stage %d of %s: %w", idx, pipelineKey, err)
	}
	return tag, true, nil
}

// RecordRefused implements Commands.
func (s *queries) RecordRefused(ctx context.Context, rolloutID string, ev Event) error {
	if err := s.tx(ctx, func(t sqlTx) error { return insertRolloutEvents(ctx, sqlExec{t}, rolloutID, []Event{ev}) }); err != nil {
		return fmt.Errorf("record refused %s of rollout %s: %w", ev.Kind, rolloutID, err)
	}
	return nil
}

// StageVersions implements Commands.
func (s *queries) StageVersions(ctx context.Context, pipelineKey string, idx int, beforeOrder int64, limit int) ([]Release, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.version, e.tag FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE o.pipeline_key = ? AND e.idx = ? AND o.rollout_order < ? AND NOT e.rollback AND e.outcome = 'succeeded'
		GROUP BY e.version, e.tag ORDER BY max(o.rollout_order) DESC LIMIT ?`, pipelineKey, idx, beforeOrder, limit)
	if err != nil {
		return nil, fmt.Errorf("versions of stage %d of %s: %w", idx, pipelineKey, err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		if err := rows.Scan(&r.Version, &r.Tag); err != nil {
			return nil, fmt.Errorf("versions of stage %d of %s: %w", idx, pipelineKey, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("versions of stage %d of %s: %w", idx, pipelineKey, err)
	}
	return out, nil
}

// ActiveAt implements Commands.
func (s *queries) ActiveAt(ctx context.Context, pipelineKey string, idx int) (Execution, bool, error) {
	execs, err := s.OpenExecutionsOf(ctx, pipelineKey)
	if err != nil {
		return Execution{}, false, err
	}
	for _, e := range execs {
		if e.Stage == idx {
			return e, true, nil
		}
	}
	return Execution{}, false, nil
}
