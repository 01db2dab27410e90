package store_test

import (
	"context"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/pgtest"
	"github.com/shipbot/shipbot/internal/store/storetest"
)

// TestMain stops the throwaway PostgreSQL cluster, if the tests started
// one, when they end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgresConformance holds the PostgreSQL store to the contract every
// store implementation shares (package storetest), each subtest on a
// database of its own.
//
// Migrating costs far more than copying: the schema is migrated once, into
// a template database, and each subtest's database is a copy of it
// (CREATE DATABASE … TEMPLATE, some 30 ms with PostgreSQL 15's FILE_COPY
// strategy, and about 8 MB of disk while the subtest runs), dropped when
// the subtest ends. A database per subtest, rather than a schema, keeps
// each store exactly as a migrated production database is: its own goose
// version table, no search_path.
func TestPostgresConformance(t *testing.T) {
	ctx := context.Background()
	template := pgtest.NewDatabase(t, "")
	s, err := store.OpenPostgres(ctx, template.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // a template must have no connections
		t.Fatal(err)
	}

	storetest.Run(t, func(t *testing.T) store.Store {
		db := pgtest.NewDatabase(t, template.Name)
		s, err := store.OpenPostgres(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Registered after NewDatabase's: runs first, so the database is
		// dropped with no connection left.
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}
