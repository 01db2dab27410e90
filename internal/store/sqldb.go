package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
)

// queries are the store methods SQLite and PostgreSQL share: the same SQL
// text, run through database/sql (PostgreSQL's through pgx's stdlib
// adapter on the store's own pool). The text is written once, in the
// portable subset of both dialects with SQLite's ? placeholders, and
// rebound to $1, $2… on PostgreSQL. What only one database can do (SQLite's
// group commit and one-writer pool, PostgreSQL's SKIP LOCKED claims,
// advisory locks and server-clock leases) stays in that store's own
// methods, which shadow these.
//
// No query builder: the shared SQL needs nothing a rebind cannot give.
type queries struct {
	r, w sqlDB // readers and the writer; the same pool on PostgreSQL
	// seq is the column that keeps insertion order (a wave's targets in
	// stage order): SQLite's rowid, a PostgreSQL identity column.
	seq string

	probe writeProbe // Ready's write probe, see health.go
}

// sqlDB is a database/sql handle that rebinds the shared queries' ?
// placeholders where its database wants $n.
type sqlDB struct {
	*sql.DB
	dollar bool
	// stmts, where set, keeps each query prepared (SQLite's: pgx keeps
	// its own per connection).
	stmts *stmtCache
}

func (d sqlDB) bind(q string) string {
	if d.dollar {
		return rebind(q)
	}
	return q
}

func (d sqlDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := d.stmts.prepared(d.DB, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, d.bind(q), args...)
}

func (d sqlDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := d.stmts.prepared(d.DB, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, d.bind(q), args...)
}

func (d sqlDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := d.stmts.prepared(d.DB, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, d.bind(q), args...)
}

// sqlTx is a transaction on a sqlDB, rebinding as its handle does.
type sqlTx struct {
	*sql.Tx
	db sqlDB
}

// stmt is q prepared on the transaction's connection, or nil where the
// handle keeps no statements. database/sql finds the statement already
// prepared on that connection, and closes the transaction's handle of it
// when the transaction ends.
func (t sqlTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st := t.db.stmts.prepared(t.db.DB, q); st != nil {
		return t.Tx.StmtContext(ctx, st)
	}
	return nil
}

func (t sqlTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, t.db.bind(q), args...)
}

func (t sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, t.db.bind(q), args...)
}

func (t sqlTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, t.db.bind(q), args...)
}

// tx runs f in a transaction on the writer, committing when f succeeds.
func (s *queries) tx(ctx context.Context, f func(sqlTx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(sqlTx{Tx: t, db: s.w}); err != nil {
		return errors.Join(err, t.Rollback())
	}
	return t.Commit()
}

// stmtCache keeps SQLite's statements prepared. database/sql prepares,
// runs and finalizes a statement for every call with arguments, and
// modernc's SQLite parses the text each time: a tenth of the CPU of a
// burst of merges went to SQLite's parser. The store's queries are a fixed
// set of texts (the few built at run time vary only in how many
// placeholders they have), so the cache stops growing past a bound rather
// than evicting.
type stmtCache struct {
	mu      sync.Mutex
	closed  bool
	stmts   map[string]*sql.Stmt
	pending map[string]bool // being prepared in the background
	// preparing counts the background preparations, and cancel ends
	// those still waiting for a connection: a preparation holds one of
	// the pool's connections, and the pool's Close does not wait for a
	// connection in use, so without them a store's Close returned with a
	// connection still open (and the WAL not yet folded in).
	preparing sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
}

func newStmtCache() *stmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &stmtCache{ctx: ctx, cancel: cancel}
}

// maxStmts bounds the cache; a text past it runs unprepared, as before.
const maxStmts = 512

// prepared returns q prepared on db if it is, and otherwise prepares it
// in the background for next time and returns nil (the caller runs q
// unprepared, once). Never in the caller: a transaction holds the
// writer's one connection, which a preparation would wait for.
func (c *stmtCache) prepared(db *sql.DB, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if c.closed || c.pending[q] || len(c.stmts)+len(c.pending) >= maxStmts {
		return nil
	}
	if c.pending == nil {
		c.pending = map[string]bool{}
	}
	c.pending[q] = true
	c.preparing.Go(func() {
		st, err := db.PrepareContext(c.ctx, q) // once the connection is free
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, q)
		switch {
		case err != nil: // q runs unprepared, and says what is wrong
		case c.closed:
			st.Close() // no one else has it
		default:
			if c.stmts == nil {
				c.stmts = map[string]*sql.Stmt{}
			}
			c.stmts[q] = st
		}
	})
	return nil
}

// close forgets every statement kept; closing the pool afterwards
// finalizes them with their connections. Closing each here instead would
// wait for the calls still running it, and a stopping process may have a
// call waiting for the writer's connection. Preparations still waiting
// for a connection are cancelled, and close returns once every
// preparation has given its connection back.
func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	c.stmts = nil
	c.cancel()
	c.mu.Unlock()
	c.preparing.Wait()
}

// rebind turns ? placeholders into $1, $2…, leaving string literals,
// quoted identifiers and comments alone. The shared queries use no ?
// operators (PostgreSQL's JSON operators are the only ones there are).
// Written here rather than taken from sqlx, whose Rebind is the one kept
// implementation: it would bring a whole query layer for twenty lines, and
// it rewrites a ? inside a string literal too.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				j := strings.IndexByte(q[i:], '\n')
				if j < 0 {
					j = len(q) - i
				}
				b.WriteString(q[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
