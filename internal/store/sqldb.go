package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
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
}

func (d sqlDB) bind(q string) string {
	if d.dollar {
		return rebind(q)
	}
	return q
}

func (d sqlDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.bind(q), args...)
}

func (d sqlDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.bind(q), args...)
}

func (d sqlDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.bind(q), args...)
}

// sqlTx is a transaction on a sqlDB, rebinding as its handle does.
type sqlTx struct {
	*sql.Tx
	dollar bool
}

func (t sqlTx) bind(q string) string { return sqlDB{dollar: t.dollar}.bind(q) }

func (t sqlTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.bind(q), args...)
}

func (t sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.bind(q), args...)
}

func (t sqlTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.bind(q), args...)
}

// tx runs f in a transaction on the writer, committing when f succeeds.
func (s *queries) tx(ctx context.Context, f func(sqlTx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(sqlTx{Tx: t, dollar: s.w.dollar}); err != nil {
		return errors.Join(err, t.Rollback())
	}
	return t.Commit()
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
