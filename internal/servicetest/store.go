package servicetest

import (
	"context"
	"os"
	"path/filepath"
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
func OpenStore(tb testing.TB, path string) *store.SQLite {
	tb.Helper()
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
