package store_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/migrations"

	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/pgtest"
)

// postgresVersions are the versions of the PostgreSQL migrations, in
// order: numbered files, with gaps where another branch took a number.
func postgresVersions(t *testing.T) []int64 {
	t.Helper()
	vs, err := migrations.Versions(migrations.Postgres())
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// Replicas that start together migrate one fresh database at once: one
// applies the schema, the others wait for it and find nothing to do.
func TestPostgresMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDatabase(t, "")
	const replicas = 3
	applied := make([][]int64, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(ctx, db.URL)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	var all []int64
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if want := postgresVersions(t); !slices.Equal(all, want) {
		t.Errorf("migrations applied %v; want each of %v applied once", applied, want)
	}
	s, err := store.Open(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready after the migration: %v", err)
	}
}

// Ready names the missing migration on a database nobody migrated.
func TestPostgresReadyUnmigrated(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDatabase(t, "")
	s, err := store.Open(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*store.Postgres); !ok {
		t.Fatalf("Open(%s) = %T; want *store.Postgres", store.DisplayName(db.URL), s)
	}
	if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), "bot migrate") {
		t.Errorf("Ready on an unmigrated database = %v; want it to say to run bot migrate", err)
	}
}

// The URL's password appears in no error, whether the server cannot be
// reached or the URL cannot be used, in any spelling of it.
func TestPostgresErrorsHidePassword(t *testing.T) {
	const password = "s3cr3t p@ss/wörd%21"
	u := url.URL{Scheme: "postgres", User: url.UserPassword("shipbot", password), Host: "127.0.0.1:1", Path: "/shipbot"}
	// Every spelling, and every fragment of it a partial scrub could leave.
	spellings := []string{password, url.QueryEscape(password), url.PathEscape(password), u.User.String(), "s3cr3t", "p@ss", "wörd", "w%C3%B6rd"}
	for _, dsn := range []string{
		u.String(), // nothing listens on port 1
		u.String() + "?sslmode=bogus",
		u.String() + "?connect_timeout=x",
		strings.Replace(u.String(), "127.0.0.1:1", "127.0.0.1:99999", 1),
		"postgresql://shipbot:" + password + "@[::1/shipbot", // unparsable
	} {
		_, err := store.Open(context.Background(), dsn)
		if err == nil {
			t.Errorf("Open(%s) succeeded", store.DisplayName(dsn))
			continue
		}
		for _, s := range spellings {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Open error shows the password (as %q): %v", s, err)
			}
		}
		if name := store.DisplayName(dsn); strings.Contains(name, "p@ss") || strings.Contains(name, "s3cr3t") {
			t.Errorf("DisplayName(…) = %q shows the password", name)
		}
	}
}

func TestIsPostgresURL(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db":        true,
		"postgresql://u:p@h:5/db":  true,
		"POSTGRES://h/db":          true,
		"shipbot.db":               false,
		"/data/shipbot.db":         false,
		"file:shipbot.db":          false,
		"./postgres://odd/path.db": false,
		"":                         false,
	} {
		if got := store.IsPostgresURL(dsn); got != want {
			t.Errorf("IsPostgresURL(%q) = %v; want %v", dsn, got, want)
		}
	}
	for dsn, want := range map[string]string{
		"postgres://u:p%40ss@h/db": "p@ss",
		"postgres://u@h/db":        "",
		"/data/u:pw@x.db":          "",
	} {
		if got := store.DSNPassword(dsn); got != want {
			t.Errorf("DSNPassword(%q) = %q; want %q", dsn, got, want)
		}
	}
	// Not a URL: Open takes it for a SQLite file.
	s, err := store.Open(context.Background(), t.TempDir()+"/shipbot.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*store.SQLite); !ok {
		t.Errorf("Open(path) = %T; want *store.SQLite", s)
	}
	if s, err := store.Open(context.Background(), ""); err == nil || s != nil {
		t.Errorf("Open(\"\") = %v, %v; want no store and an error", s, err)
	}
}
