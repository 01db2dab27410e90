// Package migrations embeds the numbered schema files so the binary carries
// its own schema; goose applies them (on start and through `bot migrate`).
// Each database kind has its own folder because SQL dialects differ:
// sqlite/ for the embedded store, postgres/ for the store that several
// replicas share. A PostgreSQL database starts fresh, so postgres/ begins
// with the schema sqlite/ arrives at; later changes go into both.
package migrations

import (
	"embed"
	"io/fs"
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
