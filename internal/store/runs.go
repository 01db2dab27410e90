package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Run states. A run is open while pending or releasing; every other state
// is where its merge handling ended (the rollout engine takes released runs
// further).
const (
	RunPending   = "pending"   // created, gate not evaluated yet
	RunReleasing = "releasing" // allowed, version chosen and persisted, release being created
	RunReleased  = "released"  // tag and release exist
	RunRefused   = "refused"   // the gate refused the merge
	RunInvalid   = "invalid"   // invalid configuration, nothing released
	RunSkipped   = "skipped"   // nothing to do: no config, or semver:none
	RunFailed    = "failed"    // an error past retrying
)

// Run is one merge being taken through gate, release and rollout: its
// repository, merge commit, pull request and verdict. Its rollouts, one
// per pipeline it runs, are apart (Rollouts).
type Run struct {
	ID           string
	Repo         string
	SHA          string
	Installation int64
	Branch       string
	PR           int
	// PRFacts is the pull request as a delivery carried it (JSON owned by
	// the merge handler), so processing need not read it again.
	PRFacts  []byte
	Source   string
	MergedAt time.Time
	// Parent is the branch head this merge was made on (its first parent;
	// a push's "before"), "" until known. It orders runs exactly where merge
	// times, which GitHub gives in whole seconds, tie.
	Parent   string
	Seq      int64
	State    string
	Pipeline string
	// Version, Tag, PrevTag and ReleaseURL are the merge's release
	// intent: evaluation records the version before it creates the tag,
	// so a crash resumes with the same one. Each rollout of the run keeps
	// the release it deploys (RolloutRun); in the single-pipeline form,
	// this one.
	Version    string
	Tag        string
	PrevTag    string
	ReleaseURL string
	// Summary is what the PR is told about the run: a RunSummary as JSON
	// (Summarized decodes it).
	Summary   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Open reports whether the run still needs merge handling.
func (r Run) Open() bool { return r.State == RunPending || r.State == RunReleasing }

// Runs persists runs.
type Runs interface {
	// CreateRun inserts r unless a run for (r.Repo, r.SHA) exists, and
	// returns the stored run and whether this call created it. It fills ID,
	// Seq and the timestamps, and records merge.recorded when it creates.
	CreateRun(ctx context.Context, r Run) (Run, bool, error)
	// UpdateRun writes the fields evaluation owns: PR, State, Pipeline,
	// Version, Tag, PrevTag, ReleaseURL and Summary. What deliveries bring
	// (PRFacts, MergedAt, Parent) changes only through FillRun, so a
	// delivery and an evaluation racing on one run cannot undo each other.
	// evs (merge.refused with its reasons, release.created) are recorded
	// in the same transaction.
	UpdateRun(ctx context.Context, r Run, evs ...Event) error
	// FillRun sets what r carries of PRFacts (with PR and MergedAt) and
	// Parent on the run r.ID, each only where the stored run has none yet.
	FillRun(ctx context.Context, r Run) error
	GetRun(ctx context.Context, id string) (Run, error)
	RunBySHA(ctx context.Context, repo, sha string) (Run, error)
	// OpenRunIDs lists the ids of repo's open runs in merge order: a run
	// after the open run its Parent names, otherwise by merge time, then
	// arrival. Ids alone: whoever takes a run up reads it then (GetRun),
	// and a burst's backlog of pull request facts is not read again each
	// time the order is.
	OpenRunIDs(ctx context.Context, repo string) ([]string, error)
	// ReposWithOpenRuns lists repositories that have open runs.
	ReposWithOpenRuns(ctx context.Context) ([]string, error)
	// ListRuns lists the newest runs first, at most limit.
	ListRuns(ctx context.Context, repo string, limit int) ([]Run, error)
	// RepoPipelines lists, sorted, the pipeline names that the
	// configurations of repo's merges have named.
	RepoPipelines(ctx context.Context, repo string) ([]string, error)
}

// Leases are named locks with an owner and an expiry.
type Leases interface {
	// AcquireLease takes or renews name for owner until now+ttl; it reports
	// false when another owner holds an unexpired lease.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives name up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// CheckRuns remembers the check runs the bot created.
type CheckRuns interface {
	CheckRunID(ctx context.Context, repo, sha, name string) (int64, bool, error)
	SaveCheckRunID(ctx context.Context, repo, sha, name string, id int64) error
}

// NewID returns a random 128-bit identifier in hex.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the kernel's RNG does not fail
	}
	return hex.EncodeToString(b[:])
}

const runCols = `id, repo, sha, installation, branch, pr, pr_facts, source, merged_at, parent, seq, state, pipeline,
	version, tag, prev_tag, release_url, summary, created_at, updated_at`

// scanRun reads runCols, then any extra columns into extra.
func scanRun(sc interface{ Scan(...any) error }, extra ...any) (Run, error) {
	var r Run
	var merged, created, updated int64
	err := sc.Scan(append([]any{&r.ID, &r.Repo, &r.SHA, &r.Installation, &r.Branch, &r.PR, &r.PRFacts, &r.Source, &merged, &r.Parent, &r.Seq,
		&r.State, &r.Pipeline, &r.Version, &r.Tag, &r.PrevTag, &r.ReleaseURL, &r.Summary, &created, &updated}, extra...)...)
	if merged != 0 {
		r.MergedAt = time.UnixMilli(merged)
	}
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return r, err
}

// CreateRun implements Runs.
func (s *SQLite) CreateRun(ctx context.Context, r Run) (Run, bool, error) {
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.State == "" {
		r.State = RunPending
	}
	now := ms(time.Now())
	var created bool
	err := s.tx(ctx, func(t sqlTx) error {
		res, err := t.ExecContext(ctx, `INSERT INTO runs (id, repo, sha, installation, branch, pr, pr_facts, source, merged_at,
			parent, seq, state, pipeline, summary, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM runs), ?, ?, ?, ?, ?)
			ON CONFLICT (repo, sha) DO NOTHING`,
			r.ID, r.Repo, r.SHA, r.Installation, r.Branch, r.PR, nonNilBytes(r.PRFacts), r.Source, ms(r.MergedAt), r.Parent,
			r.State, r.Pipeline, nonNilBytes(r.Summary), now, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		created = true
		return insertRunEvents(ctx, sqlExec{t}, r.ID, []Event{mergeRecorded(r)})
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("create run %s@%s: %w", r.Repo, r.SHA, err)
	}
	stored, err := s.runBySHA(ctx, s.w, r.Repo, r.SHA)
	return stored, created, err
}

// mergeRecorded is the event of a merge's run being created: which commit,
// from which pull request, learned from which delivery.
func mergeRecorded(r Run) Event {
	sha := r.SHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	detail := "commit " + sha + " on " + r.Branch
	if r.PR != 0 {
		detail = fmt.Sprintf("pull request #%d, %s", r.PR, detail)
	}
	if r.Source != "" {
		detail += " (from " + r.Source + ")"
	}
	return Event{Kind: KindMergeRecorded, Detail: detail}
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// UpdateRun implements Runs.
func (s *queries) UpdateRun(ctx context.Context, r Run, evs ...Event) error {
	update := func(t execer) error {
		n, err := t.ExecContext(ctx, `UPDATE runs SET pr = ?, state = ?, pipeline = ?, version = ?,
			tag = ?, prev_tag = ?, release_url = ?, summary = ?, updated_at = ? WHERE id = ?`,
			r.PR, r.State, r.Pipeline, r.Version, r.Tag, r.PrevTag, r.ReleaseURL,
			nonNilBytes(r.Summary), ms(time.Now()), r.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	}
	var err error
	if len(evs) == 0 {
		err = update(dbExec{s.w})
	} else {
		err = s.tx(ctx, func(t sqlTx) error {
			if err := update(sqlExec{t}); err != nil {
				return err
			}
			return insertRunEvents(ctx, sqlExec{t}, r.ID, evs)
		})
	}
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	return nil
}

// FillRun implements Runs. SQLite evaluates every SET expression against
// the row as it was, so the CASEs all see the old pr_facts.
func (s *SQLite) FillRun(ctx context.Context, r Run) error {
	facts := nonNilBytes(r.PRFacts)
	res, err := s.w.ExecContext(ctx, `UPDATE runs SET
		pr        = CASE WHEN length(pr_facts) = 0 AND length(?1) > 0 THEN ?2 ELSE pr END,
		merged_at = CASE WHEN length(pr_facts) = 0 AND length(?1) > 0 AND ?3 != 0 THEN ?3 ELSE merged_at END,
		pr_facts  = CASE WHEN length(pr_facts) = 0 THEN ?1 ELSE pr_facts END,
		parent    = CASE WHEN parent = '' THEN ?4 ELSE parent END,
		updated_at = ?5
		WHERE id = ?6`,
		facts, r.PR, ms(r.MergedAt), r.Parent, ms(time.Now()), r.ID)
	if err != nil {
		return fmt.Errorf("fill run %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("fill run %s: %w", r.ID, ErrNotFound)
	}
	return nil
}

// GetRun implements Runs.
func (s *queries) GetRun(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

// RunBySHA implements Runs.
func (s *queries) RunBySHA(ctx context.Context, repo, sha string) (Run, error) {
	return s.runBySHA(ctx, s.r, repo, sha)
}

func (s *queries) runBySHA(ctx context.Context, db sqlDB, repo, sha string) (Run, error) {
	r, err := scanRun(db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE repo = ? AND sha = ?`, repo, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s@%s: %w", repo, sha, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %s@%s: %w", repo, sha, err)
	}
	return r, nil
}

func (s *queries) queryRuns(ctx context.Context, query string, args ...any) ([]Run, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
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

// OpenRunIDs implements Runs.
func (s *queries) OpenRunIDs(ctx context.Context, repo string) ([]string, error) {
	// Merge time first; a run whose merge time is not known yet (0) sorts
	// by arrival among the others. History then has the last word.
	rows, err := s.r.QueryContext(ctx, `SELECT id, sha, parent FROM runs
		WHERE repo = ? AND state IN ('pending', 'releasing') ORDER BY merged_at, seq`, repo)
	if err != nil {
		return nil, fmt.Errorf("open runs of %s: %w", repo, err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		var r Run
		if err := rows.Scan(&r.ID, &r.SHA, &r.Parent); err != nil {
			return nil, fmt.Errorf("open runs of %s: %w", repo, err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open runs of %s: %w", repo, err)
	}
	ids := make([]string, 0, len(runs))
	for _, r := range historyOrder(runs) {
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// historyOrder moves each run after the open run its Parent names, keeping
// the given order otherwise. GitHub's merge times have whole seconds, so
// merges in one second tie on them; the branch's first-parent history
// orders them exactly.
func historyOrder(runs []Run) []Run {
	bySHA := make(map[string]int, len(runs))
	for i, r := range runs {
		bySHA[r.SHA] = i
	}
	out := make([]Run, 0, len(runs))
	const visiting, done = 1, 2
	mark := make([]int, len(runs))
	var visit func(i int)
	visit = func(i int) {
		if mark[i] != 0 {
			return // done, or a cycle, which history cannot have
		}
		mark[i] = visiting
		if j, ok := bySHA[runs[i].Parent]; ok && runs[i].Parent != "" {
			visit(j)
		}
		mark[i] = done
		out = append(out, runs[i])
	}
	for i := range runs {
		visit(i)
	}
	return out
}

// ReposWithOpenRuns implements Runs.
func (s *queries) ReposWithOpenRuns(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT repo FROM runs WHERE state IN ('pending', 'releasing') ORDER BY repo`)
	if err != nil {
		return nil, fmt.Errorf("repositories with open runs: %w", err)
	}
	return out, nil
}

// ListRuns implements Runs.
func (s *queries) ListRuns(ctx context.Context, repo string, limit int) ([]Run, error) {
	q, args := `SELECT `+runCols+` FROM runs`, []any{}
	if repo != "" {
		q += ` WHERE repo = ?`
		args = append(args, repo)
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	out, err := s.queryRuns(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// RepoPipelines implements Runs.
func (s *queries) RepoPipelines(ctx context.Context, repo string) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT DISTINCT pipeline FROM runs WHERE repo = ? AND pipeline <> '' ORDER BY pipeline`, repo)
	if err != nil {
		return nil, fmt.Errorf("pipelines of %s: %w", repo, err)
	}
	return out, nil
}

// queryStrings reads a one-column list of strings.
func (s *queries) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// AcquireLease implements Leases.
func (s *SQLite) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := time.Now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until < ?`,
		name, owner, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseLease implements Leases.
func (s *queries) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// CheckRunID implements CheckRuns.
func (s *queries) CheckRunID(ctx context.Context, repo, sha, name string) (int64, bool, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM check_runs WHERE repo = ? AND sha = ? AND name = ?`, repo, sha, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("check run %s for %s@%s: %w", name, repo, sha, err)
	}
	return id, true, nil
}

// SaveCheckRunID implements CheckRuns.
func (s *queries) SaveCheckRunID(ctx context.Context, repo, sha, name string, id int64) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO check_runs (repo, sha, name, id) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo, sha, name) DO UPDATE SET id = excluded.id`, repo, sha, name, id); err != nil {
		return fmt.Errorf("save check run %s for %s@%s: %w", name, repo, sha, err)
	}
	return nil
}

// Comments remembers the sticky comment of each pull request.
type Comments interface {
	CommentID(ctx context.Context, repo string, pr int) (int64, bool, error)
	SaveCommentID(ctx context.Context, repo string, pr int, id int64) error
}

// CommentID implements Comments.
func (s *queries) CommentID(ctx context.Context, repo string, pr int) (int64, bool, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM comments WHERE repo = ? AND pr = ?`, repo, pr).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("comment of %s#%d: %w", repo, pr, err)
	}
	return id, true, nil
}

// SaveCommentID implements Comments.
func (s *queries) SaveCommentID(ctx context.Context, repo string, pr int, id int64) error {
	// Saving the id it has is the common case (every edit of the sticky
	// comment saves it): the WHERE makes that change nothing, and a
	// transaction that changes nothing costs no fsync.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO comments (repo, pr, id) VALUES (?, ?, ?)
		ON CONFLICT (repo, pr) DO UPDATE SET id = excluded.id WHERE comments.id <> excluded.id`, repo, pr, id); err != nil {
		return fmt.Errorf("save comment of %s#%d: %w", repo, pr, err)
	}
	return nil
}
