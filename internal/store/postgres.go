package store

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/shipbot/shipbot/migrations"
)

// Postgres is the store that several replicas share: one PostgreSQL
// database, reached through a pgx connection pool.
//
// It behaves as the SQLite store does, method for method (the conformance
// suite in storetest holds both to it), and most of its methods are the
// SQLite store's own: the shared queries (sqldb.go), the same SQL text run
// through database/sql. Those are single statements, or transactions whose
// UPDATEs re-check their WHERE on the row as committed, which PostgreSQL
// does at READ COMMITTED: a second writer waits for the first's row lock
// and then finds what it wrote. The methods here are those where SQLite's
// one writer gave more than that and PostgreSQL needs another way: SKIP
// LOCKED claims for the inbox, an advisory lock where rows do not exist
// yet (StartRollout), an identity column for run order (CreateRun), lease
// and claim expiries on the server's clock, ON CONFLICT for idempotent
// inserts.
//
// What SQLite needed and PostgreSQL does not:
//   - Group commit of deliveries: PostgreSQL already flushes the WAL of
//     concurrent commits together, so each delivery is its own INSERT.
//   - The WAL checkpointer: the server checkpoints on its own, in the
//     background, without stalling a commit.
//   - PRAGMA quick_check at open: the server owns its files (and checks
//     pages as it reads them when the cluster has data checksums). Opening
//     checks that the database answers.
type Postgres struct {
	pool *pgxpool.Pool
	// queries run the SQL shared with SQLite on the pool as database/sql
	// sees it (goose uses it too); the methods below use pgx directly.
	queries
	// versions reads the schema version for Ready (without the migration
	// lock that Migrate takes).
	versions *goose.Provider
	name     string // the URL without its password, for messages
	secret   string // the URL's password, scrubbed from every error

	listenOnce sync.Once
	listener   *pgListener // Listen's connection, from the first Listen on
}

var (
	_ Store         = (*Postgres)(nil)
	_ PayloadPruner = (*Postgres)(nil)
)

// defaultPostgresConns is the pool size when the URL does not set
// pool_max_conns: the service's loops, workers and HTTP handlers each hold
// a connection only for a statement or a short transaction.
const defaultPostgresConns = 10

// IsPostgresURL reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgresURL(dsn string) bool {
	scheme, _, ok := strings.Cut(dsn, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// OpenPostgres connects to the PostgreSQL database that the URL dsn names
// and checks that it answers. It does not migrate; call Migrate. Its
// errors never contain the URL's password.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	name, secret := redactedURL(dsn), urlPassword(dsn)
	fail := func(err error) error {
		return redactErr(fmt.Errorf("open postgres %s: %w", name, err), secret)
	}
	if _, err := url.Parse(dsn); err != nil {
		// Neither url.Parse's error nor pgx's would hide all of the
		// password: both quote the URL, and cannot know where in it the
		// password ends.
		return nil, fmt.Errorf("open postgres %s: not a valid URL (percent-encode special characters in the user and password)", name)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fail(err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, defaultPostgresConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	versions, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres())
	if err != nil {
		db.Close()
		pool.Close()
		return nil, fail(fmt.Errorf("load migrations: %w", err))
	}
	return &Postgres{pool: pool, queries: queries{r: sqlDB{DB: db, dollar: true}, w: sqlDB{DB: db, dollar: true}, seq: "seq"}, versions: versions, name: name, secret: secret}, nil
}

// Migrate applies every pending migration and returns the versions applied.
// Replicas that start together migrate one at a time: goose holds a
// PostgreSQL advisory lock for the duration, and the ones that wait find
// nothing left to apply.
func (s *Postgres) Migrate(ctx context.Context) ([]int64, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.w.DB, migrations.Postgres(), goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, s.redact(fmt.Errorf("migrate %s: %w", s.name, err))
	}
	applied := make([]int64, 0, len(res))
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Ready implements Store: the database answers, its schema is current and
// a write commits (the heartbeat row, as the SQLite store writes it: a
// read-only standby, a full disk or a read-only transaction mode fail it).
func (s *Postgres) Ready(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return s.redact(fmt.Errorf("database unreachable: %w", err))
	}
	current, target, err := s.versions.GetVersions(ctx)
	if err != nil {
		return s.redact(fmt.Errorf("read schema version: %w", err))
	}
	if current < target {
		return fmt.Errorf("schema at version %d, binary expects %d: run `bot migrate`", current, target)
	}
	if err := s.probeWrite(ctx); err != nil {
		return s.redact(fmt.Errorf("database %s cannot be written: %w", s.name, err))
	}
	return nil
}

// Close implements Store.
func (s *Postgres) Close() error {
	s.listenOnce.Do(func() {}) // no listener starts from now on
	if s.listener != nil {
		s.listener.close()
	}
	err := s.w.Close() // the goose provider's too: it closes only this
	s.pool.Close()
	return err
}

// redact scrubs the URL's password from err.
func (s *Postgres) redact(err error) error { return redactErr(err, s.secret) }

// tx runs f in one transaction (READ COMMITTED), committed when f returns
// nil and rolled back otherwise.
func (s *Postgres) tx(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, f)
}

// SaveDelivery implements Inbox. It returns once the delivery is committed.
// Concurrent saves of one id: the second INSERT waits for the first to
// commit and then does nothing, so exactly one reports the delivery new.
func (s *Postgres) SaveDelivery(ctx context.Context, d Delivery) (bool, error) {
	if d.Status == "" {
		d.Status = StatusPending
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = time.Now()
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO deliveries
		(id, event, action, repo, installation, payload, status, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Event, d.Action, d.Repo, d.Installation, d.Payload, d.Status, ms(d.ReceivedAt))
	if err != nil {
		return false, fmt.Errorf("save delivery %s: %w", d.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// pgNowMS is the database server's clock in unix milliseconds. Lease and
// claim expiries are set and compared on it, never on a replica's own
// clock: replicas whose clocks disagree by seconds would otherwise take
// each other's leases early (a 10 s lease leaves no room for skew).
// clock_timestamp, not now(): now() is the transaction's start.
const pgNowMS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

// ClaimDeliveries implements Inbox. FOR UPDATE SKIP LOCKED lets replicas
// claim at once without waiting for one another or taking the same
// delivery: a row another claimer has locked is passed over, and a row it
// claimed and committed meanwhile is re-checked against the WHERE (its
// lease now holds) and left out.
func (s *Postgres) ClaimDeliveries(ctx context.Context, owner string, lease time.Duration, limit int, filter EventFilter) ([]Delivery, error) {
	args := []any{owner, lease.Milliseconds(), ms(time.Now()), limit}
	var events string
	if len(filter.Only) > 0 {
		args = append(args, filter.Only)
		events += fmt.Sprintf(` AND event = ANY($%d)`, len(args))
	}
	if len(filter.Except) > 0 {
		args = append(args, filter.Except)
		events += fmt.Sprintf(` AND event <> ALL($%d)`, len(args))
	}
	rows, err := s.pool.Query(ctx, `UPDATE deliveries
		SET claimed_by = $1, claimed_until = `+pgNowMS+` + $2, attempts = attempts + 1
		WHERE seq IN (
			SELECT seq FROM deliveries
			WHERE status = 'pending' AND claimed_until < `+pgNowMS+` AND not_before <= $3`+events+`
			ORDER BY seq LIMIT $4
			FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryCols, args...)
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
func (s *Postgres) RenewClaims(ctx context.Context, owner string, ids []string, lease time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE deliveries SET claimed_until = `+pgNowMS+` + $1
		WHERE claimed_by = $2 AND status = 'pending' AND id = ANY($3)
		RETURNING id`, lease.Milliseconds(), owner, ids)
	if err != nil {
		return nil, fmt.Errorf("renew delivery claims: %w", err)
	}
	defer rows.Close()
	return lostClaims(rows, ids)
}

// PruneDeliveryPayloads implements PayloadPruner. SKIP LOCKED keeps two
// replicas pruning at once from waiting on each other's batch.
func (s *Postgres) PruneDeliveryPayloads(ctx context.Context, receivedBefore time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	var total int64
	for {
		// The conditions are the partial index's, so the planner uses it.
		tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET payload = NULL WHERE seq IN (
			SELECT seq FROM deliveries
			WHERE payload IS NOT NULL AND status IN ('done', 'failed', 'ignored') AND received_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED)`, ms(receivedBefore), batch)
		if err != nil {
			return total, fmt.Errorf("prune delivery payloads: %w", err)
		}
		n := tag.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// --- Secrets in URLs ----------------------------------------------------

// redactedURL is dsn with its password replaced, for messages and logs.
func redactedURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		// An unparsable URL is shown by its scheme alone: what follows
		// may hold the password in a form Parse did not recognise.
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://[unparsable URL]"
	}
	return u.Redacted()
}

// urlPassword is the password of the URL dsn, "" when it has none.
func urlPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	// Parse failed: take what sits between the user's colon and the last
	// "@" (a password spelled unescaped may hold "/" or "@"), so an error
	// quoting the URL can still be scrubbed; scrubbing too much is
	// harmless.
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, p, _ := strings.Cut(rest[:at], ":")
	return p
}

// redactErr hides secret in err's message, in every form a URL or a quote
// may spell it, keeping err's chain for errors.Is and errors.As.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, form := range []string{url.QueryEscape(secret), url.PathEscape(secret), (&url.URL{User: url.UserPassword("", secret)}).String(), secret} {
		form = strings.TrimPrefix(strings.TrimSuffix(form, "@"), "//:")
		if form != "" {
			clean = strings.ReplaceAll(clean, form, "xxxxx")
		}
	}
	if clean == msg {
		return err
	}
	return redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
