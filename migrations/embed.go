// Package migrations embeds the numbered schema files so the binary carries
// its own schema; goose applies them (on start and through `bot migrate`).
// Each database kind has its own folder because SQL dialects differ; a
// PostgreSQL folder joins sqlite/ when that store lands.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql
var files embed.FS

// SQLite is the migration set for the SQLite store.
func SQLite() fs.FS {
	sub, err := fs.Sub(files, "sqlite")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder exists
	}
	return sub
}
