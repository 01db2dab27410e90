package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shipbot/shipbot/internal/store/pgtest"
)

// BenchmarkHistory reads what each stage of a pipeline ran, as the
// environments view and GET /api/v1/pipelines do on every load (and every
// live update), over a pipeline that has rolled out 5,000 versions to two
// stages. Each stage's query walks the pipeline's rollouts backwards by
// index and stops when it has enough: it does not grow with the history
// (reading it all took 123 ms on SQLite).
func BenchmarkHistory(b *testing.B) {
	ctx := context.Background()
	b.Run("sqlite", func(b *testing.B) {
		s, err := OpenSQLite(filepath.Join(b.TempDir(), "shipbot.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		benchHistory(b, &s.queries)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := OpenPostgres(ctx, pgtest.NewDatabase(b, "").URL)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		benchHistory(b, &s.queries)
	})
}

func benchHistory(b *testing.B, s *queries) {
	ctx := context.Background()
	const key, versions = "acme/api:api", 5000
	benchFill(b, s)
	if s.w.dollar {
		// As autovacuum would by now: plan on the tables as they are.
		if _, err := s.w.ExecContext(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		h, err := s.History(ctx, key, []string{"qa", "prod"}, 7)
		if err != nil || len(h["prod"]) != 7 || h["prod"][0].Tag != fmt.Sprintf("v1.%d.0", versions-1) {
			b.Fatalf("History = %v, %v", h["prod"], err)
		}
	}
}

// benchFill gives pipeline acme/api:api 5,000 versions, each deployed to
// qa and prod.
func benchFill(b *testing.B, s *queries) {
	ctx := context.Background()
	const key, versions = "acme/api:api", 5000
	err := s.tx(ctx, func(t sqlTx) error {
		for i := range versions {
			id, tag := fmt.Sprint("r", i), fmt.Sprintf("v1.%d.0", i)
			if _, err := t.ExecContext(ctx, `INSERT INTO runs (id, repo, sha, installation, branch, source, seq, state, pipeline, version, tag, created_at, updated_at)
				VALUES (?, 'acme/api', ?, 1, 'main', 'push', ?, 'released', 'api', ?, ?, ?, ?)`, id, id, i+1, tag[1:], tag, i, i); err != nil {
				return err
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO rollouts (id, run_id, pipeline, pipeline_key, version, tag, rollout_order, state, created_at, updated_at)
				VALUES (?, ?, 'api', ?, ?, ?, ?, 'done', ?, ?)`, id, id, key, tag[1:], tag, i+1, i, i); err != nil {
				return err
			}
			for idx, stage := range []string{"qa", "prod"} {
				if _, err := t.ExecContext(ctx, `INSERT INTO executions (id, rollout_id, idx, stage, attempt, version, tag, phase, outcome, token_hash, created_at, finished_at)
					VALUES (?, ?, ?, ?, 1, ?, ?, 'finished', 'succeeded', ?, ?, ?)`,
					id+stage, id, idx, stage, tag[1:], tag, id+stage, 1000*i+idx, 1000*i+idx+500); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
