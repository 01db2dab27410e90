package store

import (
	"context"
	"errors"
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO runs (id, repo, sha, installation, branch, pr, pr_facts, source, merged_at,
		parent, state, pipeline, summary, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (repo, sha) DO NOTHING`,
		r.ID, r.Repo, r.SHA, r.Installation, r.Branch, r.PR, nonNilBytes(r.PRFacts), r.Source, ms(r.MergedAt), r.Parent,
		r.State, r.Pipeline, nonNilBytes(r.Summary), now, now)
	if err != nil {
		return Run{}, false, fmt.Errorf("create run %s@%s: %w", r.Repo, r.SHA, err)
	}
	stored, err := s.RunBySHA(ctx, r.Repo, r.SHA)
	return stored, tag.RowsAffected() == 1, err
}

// UpdateRun implements Runs.
func (s *Postgres) UpdateRun(ctx context.Context, r Run) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET pr = $1, state = $2, pipeline = $3, version = $4,
		tag = $5, prev_tag = $6, release_url = $7, summary = $8, updated_at = $9 WHERE id = $10`,
		r.PR, r.State, r.Pipeline, r.Version, r.Tag, r.PrevTag, r.ReleaseURL,
		nonNilBytes(r.Summary), ms(time.Now()), r.ID)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update run %s: %w", r.ID, ErrNotFound)
	}
	return nil
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

// GetRun implements Runs.
func (s *Postgres) GetRun(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

// RunBySHA implements Runs.
func (s *Postgres) RunBySHA(ctx context.Context, repo, sha string) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE repo = $1 AND sha = $2`, repo, sha))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s@%s: %w", repo, sha, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %s@%s: %w", repo, sha, err)
	}
	return r, nil
}

func (s *Postgres) queryRuns(ctx context.Context, query string, args ...any) ([]Run, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// OpenRuns implements Runs.
func (s *Postgres) OpenRuns(ctx context.Context, repo string) ([]Run, error) {
	out, err := s.queryRuns(ctx, `SELECT `+runCols+` FROM runs
		WHERE repo = $1 AND state IN ('pending', 'releasing') ORDER BY merged_at, seq`, repo)
	if err != nil {
		return nil, fmt.Errorf("open runs of %s: %w", repo, err)
	}
	return historyOrder(out), nil
}

// queryStrings reads a one-column list of strings.
func (s *Postgres) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// ReposWithOpenRuns implements Runs.
func (s *Postgres) ReposWithOpenRuns(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT repo FROM runs WHERE state IN ('pending', 'releasing') ORDER BY repo`)
	if err != nil {
		return nil, fmt.Errorf("repositories with open runs: %w", err)
	}
	return out, nil
}

// ListRuns implements Runs.
func (s *Postgres) ListRuns(ctx context.Context, repo string, limit int) ([]Run, error) {
	q, args := `SELECT `+runCols+` FROM runs`, []any{limit}
	if repo != "" {
		q += ` WHERE repo = $2`
		args = append(args, repo)
	}
	q += ` ORDER BY seq DESC LIMIT $1`
	out, err := s.queryRuns(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// RepoPipelines implements Runs.
func (s *Postgres) RepoPipelines(ctx context.Context, repo string) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT pipeline FROM runs WHERE repo = $1 AND pipeline <> '' ORDER BY pipeline`, repo)
	if err != nil {
		return nil, fmt.Errorf("pipelines of %s: %w", repo, err)
	}
	return out, nil
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

// ReleaseLease implements Leases.
func (s *Postgres) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// CheckRunID implements CheckRuns.
func (s *Postgres) CheckRunID(ctx context.Context, repo, sha, name string) (int64, bool, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM check_runs WHERE repo = $1 AND sha = $2 AND name = $3`, repo, sha, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("check run %s for %s@%s: %w", name, repo, sha, err)
	}
	return id, true, nil
}

// SaveCheckRunID implements CheckRuns.
func (s *Postgres) SaveCheckRunID(ctx context.Context, repo, sha, name string, id int64) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO check_runs (repo, sha, name, id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (repo, sha, name) DO UPDATE SET id = excluded.id`, repo, sha, name, id); err != nil {
		return fmt.Errorf("save check run %s for %s@%s: %w", name, repo, sha, err)
	}
	return nil
}

// CommentID implements Comments.
func (s *Postgres) CommentID(ctx context.Context, repo string, pr int) (int64, bool, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM comments WHERE repo = $1 AND pr = $2`, repo, pr).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("comment of %s#%d: %w", repo, pr, err)
	}
	return id, true, nil
}

// SaveCommentID implements Comments. Saving the id it has changes no row,
// as in the SQLite store.
func (s *Postgres) SaveCommentID(ctx context.Context, repo string, pr int, id int64) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO comments (repo, pr, id) VALUES ($1, $2, $3)
		ON CONFLICT (repo, pr) DO UPDATE SET id = excluded.id WHERE comments.id <> excluded.id`, repo, pr, id); err != nil {
		return fmt.Errorf("save comment of %s#%d: %w", repo, pr, err)
	}
	return nil
}
