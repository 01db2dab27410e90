package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateRun implements Runs. Seq comes from an identity column: SQLite's
// max(seq) + 1 is safe under its one writer only. Concurrent creations of
// one (repo, sha): the second INSERT waits for the first to commit, then
// does nothing and reads the run the first created.
func (s *Postgres) CreateRun(ctx context.Context, r Run) (Run, bool, error) {
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.State == "" {
		r.State = RunPending
	}
	now := ms(time.Now())
	var created bool
	err := s.tx(ctx, func(t pgx.Tx) error {
		tag, err := t.Exec(ctx, `INSERT INTO runs (id, repo, sha, installation, branch, pr, pr_facts, source, merged_at,
			parent, state, pipeline, summary, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (repo, sha) DO NOTHING`,
			r.ID, r.Repo, r.SHA, r.Installation, r.Branch, r.PR, nonNilBytes(r.PRFacts), r.Source, ms(r.MergedAt), r.Parent,
			r.State, r.Pipeline, nonNilBytes(r.Summary), now, now)
		if err != nil || tag.RowsAffected() != 1 {
			return err
		}
		created = true
		return insertRunEvents(ctx, pgxExec{t}, r.ID, []Event{mergeRecorded(r)})
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("create run %s@%s: %w", r.Repo, r.SHA, err)
	}
	stored, err := s.RunBySHA(ctx, r.Repo, r.SHA)
	return stored, created, err
}

// FillRun implements Runs. PostgreSQL, like SQLite, evaluates every SET
// expression against the row as it was, so the CASEs all see the old
// pr_facts; two fills at once are ordered by the row lock, and the second
// sees what the first wrote.
func (s *Postgres) FillRun(ctx context.Context, r Run) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET
		pr        = CASE WHEN octet_length(pr_facts) = 0 AND octet_length($1::bytea) > 0 THEN $2::bigint ELSE pr END,
		merged_at = CASE WHEN octet_length(pr_facts) = 0 AND octet_length($1::bytea) > 0 AND $3::bigint <> 0 THEN $3::bigint ELSE merged_at END,
		pr_facts  = CASE WHEN octet_length(pr_facts) = 0 THEN $1::bytea ELSE pr_facts END,
		parent    = CASE WHEN parent = '' THEN $4::text ELSE parent END,
		updated_at = $5
		WHERE id = $6`,
		nonNilBytes(r.PRFacts), r.PR, ms(r.MergedAt), r.Parent, ms(time.Now()), r.ID)
	if err != nil {
		return fmt.Errorf("fill run %s: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("fill run %s: %w", r.ID, ErrNotFound)
	}
	return nil
}

// AcquireLease implements Leases. Two acquirers at once: the second's
// INSERT meets the first's row, waits for its commit, and re-checks the
// DO UPDATE condition against it.
func (s *Postgres) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, `+pgNowMS+` + $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until < `+pgNowMS,
		name, owner, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return tag.RowsAffected() == 1, nil
}
