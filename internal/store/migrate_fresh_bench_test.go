package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkMigrateFresh: opening a new SQLite file and bringing its schema
// to the current version, as every `bot run` job does on its runner's
// fresh RUNNER_TEMP. Under -race: 600 ms with goose v3.29.0 (whose SQL
// parser took a 4 MiB buffer from a sync.Pool per line, and the race
// detector's pool drops a quarter of them), 365 ms with v3.30.0; without
// -race 25 ms either way.
func BenchmarkMigrateFresh(b *testing.B) {
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		s, err := OpenSQLite(filepath.Join(dir, fmt.Sprintf("fresh%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
