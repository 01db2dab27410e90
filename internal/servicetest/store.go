package servicetest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
)

// DBPath is where a test keeps its database: shipbot.db in a fresh
// temporary directory, removed at tb's cleanup. The directory is made
// under $SHIPBOT_TEST_DBDIR when that is set (to compare disks).
func DBPath(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("SHIPBOT_TEST_DBDIR")
	if base == "" {
		return filepath.Join(tb.TempDir(), "shipbot.db")
	}
	dir, err := os.MkdirTemp(base, "shipbot-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "shipbot.db")
}

// OpenStore opens the SQLite database at path and migrates it, as `bot
// serve` does. Closing it is the caller's: a rig closes it after the
// service stopped.
//
// A database that does not exist yet starts as a copy of one migrated
// once per test process: every migration in its own transaction, each
// with its fsyncs, was a sixth of the CPU of the engine's tests, and
// most of their setup. Migrating itself is tested where it is the
// subject (internal/store). Migrate still runs, and finds nothing to do.
func OpenStore(tb testing.TB, path string) *store.SQLite {
	tb.Helper()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		CreateDB(tb, path)
	}
	st, err := store.OpenSQLite(path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	return st
}

// CreateDB writes a freshly migrated SQLite database at path: a copy of
// the one migrated once per test process (see OpenStore).
func CreateDB(tb testing.TB, path string) {
	tb.Helper()
	db, err := migrated()
	if err != nil {
		tb.Fatalf("migrated database: %v", err)
	}
	if err := os.WriteFile(path, db, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// migrated is a freshly migrated SQLite database file's bytes, made once
// per process. Close checkpoints the WAL into the file, so the file alone
// is the whole database.
var migrated = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "shipbot-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "shipbot.db")
	st, err := store.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})
