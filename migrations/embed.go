// Package migrations embeds the numbered schema files so the binary carries
// its own schema; goose applies them (on start and through `bot migrate`).
// Each database kind has its own folder because SQL dialects differ:
// sqlite/ for the embedded store, postgres/ for the store that several
// replicas share. A PostgreSQL database starts fresh, so postgres/ begins
// with the schema sqlite/ arrives at; later changes go into both.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite is the migration set for the SQLite store.
func SQLite() fs.FS { return sub("sqlite") }

// Postgres is the migration set for the PostgreSQL store.
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	s, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the embed pattern guarantees the folder exists
	}
	return s
}

// Versions are the version numbers of a migration set (SQLite() or
// Postgres()), in order: numbered files, with gaps where a number was
// left to another branch of work.
func Versions(set fs.FS) ([]int64, error) {
	names, err := fs.Glob(set, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, n := range names {
		v, err := strconv.ParseInt(strings.SplitN(n, "_", 2)[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", n, err)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
