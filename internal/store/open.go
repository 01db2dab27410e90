package store

import "context"

// Database is a store as Open gives it: a Store whose schema Migrate
// brings up to date.
type Database interface {
	Store
	// Migrate applies every pending migration and returns the versions
	// applied.
	Migrate(ctx context.Context) ([]int64, error)
}

var (
	_ Database = (*SQLite)(nil)
	_ Database = (*Postgres)(nil)
)

// Open opens the database that dsn (SHIPBOT_DB) names: a postgres:// or
// postgresql:// URL opens the PostgreSQL store, anything else is the path
// of a SQLite file. It does not migrate. Errors never contain a URL's
// password.
func Open(ctx context.Context, dsn string) (Database, error) {
	// Each branch returns a nil interface on error, not a nil pointer in
	// one.
	if IsPostgresURL(dsn) {
		s, err := OpenPostgres(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := OpenSQLite(dsn)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DisplayName is dsn as messages and logs may show it: a PostgreSQL URL
// without its password, a SQLite path as it is.
func DisplayName(dsn string) string {
	if IsPostgresURL(dsn) {
		return redactedURL(dsn)
	}
	return dsn
}

// DSNPassword is the password a PostgreSQL URL dsn holds, "" when it holds
// none or dsn is a SQLite path: a secret to scrub from logs.
func DSNPassword(dsn string) string {
	if IsPostgresURL(dsn) {
		return urlPassword(dsn)
	}
	return ""
}
