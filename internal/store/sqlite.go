package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver, so CGO_ENABLED=0 builds work

	"github.com/shipbot/shipbot/migrations"
)

// SQLite is the embedded store: one file, WAL mode.
//
// SQLite allows one writer at a time, so writes go through a pool of exactly
// one connection: callers queue in Go instead of spinning in SQLite's busy
// handler, which sleeps in coarse steps and would wreck intake latency.
// Reads use their own pool and run beside the writer, as WAL permits.
//
// Checkpoints (copying the WAL back into the database file) are not left to
// SQLite's automatic checkpoint, which runs inside whichever commit crosses
// the WAL threshold and stalls that commit (a webhook delivery GitHub is
// waiting on) for several fsyncs. Nor do they run beside the writer: a
// checkpoint writes the WAL's pages into the database file and fsyncs it,
// and a delivery's commit that fsyncs at the same moment waits behind that
// flush on the disk. Instead the inbox committer, the one goroutine that
// writes deliveries, checkpoints between its commits: small and often (see
// checkpointPages), and only while no delivery is waiting. See
// groupcommit.go.
type SQLite struct {
	queries // w is the one-connection writer, r the readers
	path    string
	// lock is the file's one-process lock (see lockFile), released by
	// Close; nil where locks do not exist.
	lock *os.File

	stop chan struct{}

	saves      chan saveReq
	commitDone chan struct{}

	// Owned by the committer goroutine.
	walPages int  // estimated pages written to the WAL since the last checkpoint
	ckptDue  bool // the periodic checkpoint is due at the next idle moment

}

var _ Store = (*SQLite)(nil)

// errInUse means another process holds a database file's lock.
var errInUse = errors.New("in use by another process")

// OpenSQLite opens (creating if needed) the database file at path and
// checks its integrity (see checkIntegrity). It does not migrate; call
// Migrate.
func OpenSQLite(path string) (s *SQLite, err error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	// One process per file: a second one would drive the same pipelines
	// beside the first.
	lock, err := lockFile(path + ".lock")
	if errors.Is(err, errInUse) {
		return nil, fmt.Errorf("open sqlite %s: the database is in use by another shipbot process (%s is locked); "+
			"run one process per SQLite file, or use PostgreSQL for several", path, path+".lock")
	}
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	defer func() {
		if err != nil && lock != nil {
			lock.Close()
		}
	}()
	// synchronous(FULL): a delivery is acknowledged only once it would
	// survive a power cut, not just a process crash; the intake benchmark
	// measures this mode.
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := checkIntegrity(w, path); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// All four stay open when idle: database/sql keeps two by default,
	// and a third reader closed after each busy moment was reopened at the
	// next (schema parsed, pragmas run, every cached statement prepared
	// again on it): 6% of a merge burst's CPU.
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s = &SQLite{queries: queries{w: sqlDB{DB: w, stmts: newStmtCache()}, r: sqlDB{DB: r, stmts: newStmtCache()}, seq: "rowid"}, path: path, lock: lock, stop: make(chan struct{}),
		saves: make(chan saveReq, maxBatch), commitDone: make(chan struct{})}
	go s.committer()
	return s, nil
}

func (s *SQLite) migrator() (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w.DB, migrations.SQLite())
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns the versions applied.
func (s *SQLite) Migrate(ctx context.Context) ([]int64, error) {
	p, err := s.migrator()
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", s.path, err)
	}
	applied := make([]int64, 0, len(res))
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, s.takeOver(ctx)
}

// takeOver ends every lease and delivery claim at once: this process holds
// the file's lock, so whoever took them before is gone (a crash, a kill)
// and waiting for them to expire would only hold rollouts and merges up
// for their TTL.
func (s *SQLite) takeOver(ctx context.Context) error {
	if s.lock == nil {
		return nil
	}
	now := ms(time.Now())
	if _, err := s.w.ExecContext(ctx, `UPDATE leases SET until = 0 WHERE until > ?`, now); err != nil {
		return fmt.Errorf("take over the leases of %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE deliveries SET claimed_by = '', claimed_until = 0 WHERE claimed_until > ?`, now); err != nil {
		return fmt.Errorf("take over the claimed deliveries of %s: %w", s.path, err)
	}
	return nil
}

// Ready implements Store: the database answers, its schema is current and
// a write commits (see probeWrite).
func (s *SQLite) Ready(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	p, err := s.migrator()
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current < target {
		return fmt.Errorf("schema at version %d, binary expects %d: run `bot migrate`", current, target)
	}
	if err := s.probeWrite(ctx); err != nil {
		return fmt.Errorf("database %s cannot be written: %w", s.path, err)
	}
	return nil
}

// Close implements Store. It folds the WAL back into the database file so
// the file is whole on its own.
func (s *SQLite) Close() error {
	close(s.stop)
	<-s.commitDone
	_, cerr := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	// The writer closes first: while a process stops, a step still running
	// may find its reads failing, and must not then be able to write a
	// decision it made on what it could not read (say, end a rollout whose
	// final state it could not show).
	s.w.stmts.close()
	s.r.stmts.close()
	werr := s.w.Close()
	rerr := s.r.Close()
	var lerr error
	if s.lock != nil {
		lerr = s.lock.Close() // the next process may take the file now
	}
	return errors.Join(cerr, werr, rerr, lerr)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

const deliveryCols = `seq, id, event, action, repo, installation, payload, status, attempts, last_error, received_at`

func scanDelivery(sc interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var received int64
	err := sc.Scan(&d.Seq, &d.ID, &d.Event, &d.Action, &d.Repo, &d.Installation, &d.Payload,
		&d.Status, &d.Attempts, &d.LastError, &received)
	d.ReceivedAt = time.UnixMilli(received)
	return d, err
}

// ClaimDeliveries implements Inbox.
func (s *SQLite) ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, limit int, filter EventFilter) ([]Delivery, error) {
	now := time.Now()
	args := []any{owner, ms(now.Add(lease)), ms(now), ms(now)}
	var events string
	for _, f := range []struct {
		op   string
		list []string
	}{{"IN", filter.Only}, {"NOT IN", filter.Except}} {
		if len(f.list) > 0 {
			events += ` AND event ` + f.op + ` (?` + strings.Repeat(",?", len(f.list)-1) + `)`
			for _, e := range f.list {
				args = append(args, e)
			}
		}
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE deliveries
		SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
		WHERE seq IN (
			SELECT seq FROM deliveries
			WHERE status = 'pending' AND claimed_until < ? AND not_before <= ?`+events+`
			ORDER BY seq LIMIT ?)
		RETURNING `+deliveryCols,
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	// RETURNING gives no order guarantee; the worker relies on arrival order.
	slices.SortFunc(out, func(a, b Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// RenewClaims implements Inbox.
func (s *SQLite) RenewClaims(ctx context.Context, owner string, ids []string, lease time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{ms(time.Now().Add(lease)), owner}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE deliveries SET claimed_until = ?
		WHERE claimed_by = ? AND status = 'pending' AND id IN (?`+strings.Repeat(",?", len(ids)-1)+`)
		RETURNING id`, args...)
	if err != nil {
		return nil, fmt.Errorf("renew delivery claims: %w", err)
	}
	defer rows.Close()
	return lostClaims(rows, ids)
}

// lostClaims reads the ids a renewal returned and gives those of ids it
// did not.
func lostClaims(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}, ids []string) ([]string, error) {
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("renew delivery claims: %w", err)
		}
		held[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renew delivery claims: %w", err)
	}
	var lost []string
	for _, id := range ids {
		if !held[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

// FinishDelivery implements Inbox.
func (s *queries) FinishDelivery(ctx context.Context, id, status, lastError string, retryAt time.Time) error {
	var res sql.Result
	var err error
	switch status {
	case StatusDone, StatusFailed:
		res, err = s.w.ExecContext(ctx, `UPDATE deliveries
			SET status = ?, last_error = ?, claimed_by = '', claimed_until = 0, finished_at = ?
			WHERE id = ?`, status, lastError, ms(time.Now()), id)
	case StatusPending:
		res, err = s.w.ExecContext(ctx, `UPDATE deliveries
			SET last_error = ?, claimed_by = '', claimed_until = 0, not_before = ?
			WHERE id = ?`, lastError, ms(retryAt), id)
	default:
		return fmt.Errorf("finish delivery %s: invalid status %q", id, status)
	}
	if err != nil {
		return fmt.Errorf("finish delivery %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("finish delivery %s: %w", id, ErrNotFound)
	}
	return nil
}

// GetDelivery implements Inbox.
func (s *queries) GetDelivery(ctx context.Context, id string) (Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	return d, nil
}

// InboxDepth implements Inbox.
func (s *queries) InboxDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count inbox: %w", err)
	}
	return n, nil
}
