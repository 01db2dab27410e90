package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/store/pgtest"
	"github.com/shipbot/shipbot/migrations"
)

// postgresVersions are the versions of the PostgreSQL migrations, in
// order (numbers may have gaps).
func postgresVersions(t *testing.T) []int64 {
	t.Helper()
	vs, err := migrations.Versions(migrations.Postgres())
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// bot migrate takes a postgres:// SHIPBOT_DB, and never prints its
// password.
func TestMigratePostgres(t *testing.T) {
	clearEnv(t)
	db := pgtest.NewDatabase(t, "")
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	password, ok := u.User.Password()
	if !ok && os.Getenv(pgtest.EnvURL) == "" {
		// The throwaway cluster trusts every local connection: any
		// password does, and the test can look for it in the output.
		password = "pw-secret-4711"
		u.User = url.UserPassword(u.User.Username(), password)
	}
	t.Setenv("SHIPBOT_DB", u.String())
	code, out, stderr := runBot(t, "migrate")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("applied migrations %v", postgresVersions(t))) {
		t.Fatalf("first migrate: exit %d, %q %q", code, out, stderr)
	}
	if code, out, stderr = runBot(t, "migrate"); code != 0 || !strings.Contains(out, "schema up to date") {
		t.Fatalf("second migrate: exit %d, %q %q", code, out, stderr)
	}
	if password != "" && strings.Contains(out+stderr, password) {
		t.Errorf("migrate printed the database password: %q %q", out, stderr)
	}
	if !strings.Contains(out, db.Name) {
		t.Errorf("migrate's output %q does not name the database %s", out, db.Name)
	}
}
