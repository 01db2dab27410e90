package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event kinds: what the audit log records. A stage transition is
// "stage." and the transition; a command is "command." and its verb.
const (
	KindMergeRecorded    = "merge.recorded"
	KindMergeRefused     = "merge.refused"
	KindReleaseCreated   = "release.created"
	KindStageEntered     = "stage.entered"
	KindStageTriggered   = "stage.triggered"
	KindStageSucceeded   = "stage.succeeded"
	KindStageFailed      = "stage.failed"
	KindStageBaking      = "stage.baking"
	KindStagePassed      = "stage.passed"
	KindStageSkipped     = "stage.skipped"
	KindStageSuperseded  = "stage.superseded"
	KindStageWaiting     = "stage.waiting"
	KindStageRollingBack = "stage.rolling_back"
	KindStageRolledBack  = "stage.rolled_back"
	KindPipelineFrozen   = "pipeline.frozen"
	KindPipelineUnfrozen = "pipeline.unfrozen"
)

// CommandKind is the kind of the event that records a /shipbot command.
func CommandKind(verb string) string { return "command." + verb }

// Entered is the event of a stage attempt starting: the version it
// deploys, and a wave's targets.
func Entered(execs []Execution) Event {
	e := execs[0]
	ev := Event{Kind: KindStageEntered, Stage: e.StageName, Detail: e.Tag}
	if e.Rollback {
		ev.Kind, ev.Detail = KindStageRollingBack, "to "+e.Tag
	}
	if e.Target != "" {
		targets := make([]string, len(execs))
		for i, x := range execs {
			targets[i] = x.Target
		}
		ev.Detail += " on " + strings.Join(targets, ", ")
	}
	return ev
}

// Event is one entry of the audit log: what happened, to which run and
// stage, who asked for it and why. Events are written only by the store
// method that makes the change they record, in its transaction: a change
// that commits has its event, one that does not has none.
type Event struct {
	ID int64
	At time.Time
	// Repo is the repository; Pipeline the pipeline key
	// (owner/name:pipeline), "" for what concerns the merge as a whole.
	Repo     string
	Pipeline string
	// RunID is the rollout the event concerns (a run's first rollout has
	// the run's id), or the run for a merge's own events. MergeID is the
	// merge run's id either way.
	RunID   string
	MergeID string
	Stage   string
	Kind    string
	// Actor is who asked: a commenter, an API caller; "" for shipbot.
	Actor  string
	Detail string
}

// EventQuery picks events for ListEvents: all of them by default.
type EventQuery struct {
	// Pipeline, when set, keeps the pipeline's events and its
	// repository's merge events (those have no pipeline yet).
	Pipeline string
	// Run, when set, keeps the events of a rollout or of a merge run (the
	// merge's own, and every one of its rollouts').
	Run string
	// Before, when not zero, keeps events older than this id: the next
	// page.
	Before int64
	// Limit bounds the answer; zero means 50.
	Limit int
}

// Events reads the audit log.
type Events interface {
	// ListEvents lists the events q picks, newest first.
	ListEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// LatestEvent is a mark that changes whenever an event is written, for
	// live views to poll cheaply: it grows with every event committed (on
	// PostgreSQL also with one that commits after a later id did).
	LatestEvent(ctx context.Context) (int64, error)
}

// change runs f on the writer, in a transaction with the events evs of
// rolloutID when there are any; f reports whether it changed anything, and
// only a change is recorded.
func (s *queries) change(ctx context.Context, rolloutID string, evs []Event, f func(t execer) (bool, error)) error {
	if len(evs) == 0 {
		_, err := f(dbExec{s.w})
		return err
	}
	return s.tx(ctx, func(t sqlTx) error {
		changed, err := f(sqlExec{t})
		if err != nil || !changed {
			return err
		}
		return insertRolloutEvents(ctx, sqlExec{t}, rolloutID, evs)
	})
}

// execer is a transaction of either store: database/sql's, or pgx's
// through pgxExec.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (rowsAffected int64, err error)
}

type sqlExec struct{ sqlTx }

func (t sqlExec) ExecContext(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.sqlTx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// dbExec runs a statement on its own.
type dbExec struct{ sqlDB }

func (d dbExec) ExecContext(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := d.sqlDB.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// pgxExec runs the shared ?-placeholder SQL in a pgx transaction.
type pgxExec struct{ pgx.Tx }

func (t pgxExec) ExecContext(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.Exec(ctx, rebind(q), args...)
	return tag.RowsAffected(), err
}

// insertRolloutEvents records evs of the rollout: its id, repository,
// pipeline and merge fill what an event leaves empty.
func insertRolloutEvents(ctx context.Context, t execer, rolloutID string, evs []Event) error {
	now := ms(time.Now())
	for _, ev := range evs {
		n, err := t.ExecContext(ctx, `INSERT INTO events (at, repo, pipeline, run_id, merge_id, stage, kind, actor, detail)
			SELECT ?, r.repo, o.pipeline_key, o.id, o.run_id, ?, ?, ?, ? FROM rollouts o JOIN runs r ON r.id = o.run_id WHERE o.id = ?`,
			now, ev.Stage, ev.Kind, ev.Actor, ev.Detail, rolloutID)
		if err != nil {
			return fmt.Errorf("record %s: %w", ev.Kind, err)
		}
		if n != 1 {
			return fmt.Errorf("record %s: rollout %s: %w", ev.Kind, rolloutID, ErrNotFound)
		}
	}
	return nil
}

// insertRunEvents records evs of a merge run as a whole.
func insertRunEvents(ctx context.Context, t execer, runID string, evs []Event) error {
	now := ms(time.Now())
	for _, ev := range evs {
		n, err := t.ExecContext(ctx, `INSERT INTO events (at, repo, pipeline, run_id, merge_id, stage, kind, actor, detail)
			SELECT ?, repo, ?, id, id, ?, ?, ?, ? FROM runs WHERE id = ?`,
			now, ev.Pipeline, ev.Stage, ev.Kind, ev.Actor, ev.Detail, runID)
		if err != nil {
			return fmt.Errorf("record %s: %w", ev.Kind, err)
		}
		if n != 1 {
			return fmt.Errorf("record %s: run %s: %w", ev.Kind, runID, ErrNotFound)
		}
	}
	return nil
}

// insertPipelineEvent records an event of a pipeline as a whole.
func insertPipelineEvent(ctx context.Context, t execer, key string, ev Event) error {
	repo, _, _ := strings.Cut(key, ":")
	if _, err := t.ExecContext(ctx, `INSERT INTO events (at, repo, pipeline, kind, actor, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(time.Now()), repo, key, ev.Kind, ev.Actor, ev.Detail); err != nil {
		return fmt.Errorf("record %s: %w", ev.Kind, err)
	}
	return nil
}

const eventCols = `id, at, repo, pipeline, run_id, merge_id, stage, kind, actor, detail`

// ListEvents implements Events.
func (s *queries) ListEvents(ctx context.Context, q EventQuery) ([]Event, error) {
	var where []string
	var args []any
	if q.Pipeline != "" {
		repo, _, _ := strings.Cut(q.Pipeline, ":")
		where = append(where, `(pipeline = ? OR (pipeline = '' AND repo = ?))`)
		args = append(args, q.Pipeline, repo)
	}
	if q.Run != "" {
		where = append(where, `(run_id = ? OR merge_id = ?)`)
		args = append(args, q.Run, q.Run)
	}
	if q.Before > 0 {
		where = append(where, `id < ?`)
		args = append(args, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	query := `SELECT ` + eventCols + ` FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	rows, err := s.r.QueryContext(ctx, query, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		var at int64
		if err := rows.Scan(&ev.ID, &at, &ev.Repo, &ev.Pipeline, &ev.RunID, &ev.MergeID, &ev.Stage, &ev.Kind, &ev.Actor, &ev.Detail); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		ev.At = time.UnixMilli(at)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// LatestEvent implements Events. The newest id plus how many of the last
// thousand ids exist: PostgreSQL hands identities out at insert, so an
// event may commit after one with a higher id, which the count still
// notices.
func (s *queries) LatestEvent(ctx context.Context) (int64, error) {
	var top, n int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(id), 0), count(*) FROM events
		WHERE id > (SELECT coalesce(max(id), 0) - 1000 FROM events)`).Scan(&top, &n)
	if err != nil {
		return 0, fmt.Errorf("latest event: %w", err)
	}
	return top<<10 | n&1023, nil
}
