package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/storetest"
)

// TestSQLiteConformance holds the SQLite store to the contract every store
// implementation shares (package storetest), each subtest on a fresh
// migrated file of its own.
func TestSQLiteConformance(t *testing.T) {
	// Migrating costs far more than copying a migrated file (a few hundred
	// milliseconds under -race): migrate once, copy per subtest.
	template := filepath.Join(t.TempDir(), "template.db")
	s, err := store.OpenSQLite(template)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // folds the WAL into the file
		t.Fatal(err)
	}
	migrated, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}

	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "shipbot.db")
		if err := os.WriteFile(path, migrated, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			// A closed store is one file, which an operator may copy or
			// move: the last connection's close folds the WAL in and
			// removes it, and Close returns after that.
			for _, suffix := range []string{"-wal", "-shm"} {
				if _, err := os.Stat(path + suffix); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after Close, %s%s: %v; want it gone", filepath.Base(path), suffix, err)
				}
			}
		})
		return s
	})
}
