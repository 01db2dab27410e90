package storetest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shipbot/shipbot/internal/store"
)

var runsCases = []testCase{
	{"CreateRun_fills_id_seq_timestamps", createRunFills},
	{"CreateRun_unique_per_repo_sha", createRunUnique},
	{"CreateRun_concurrent_one_run", createRunConcurrent},
	{"CreateRun_seq_follows_arrival", createRunSeq},
	{"UpdateRun_writes_evaluation_fields_only", updateRunFields},
	{"UpdateRun_unknown", updateRunUnknown},
	{"FillRun_only_fills_empty", fillRunOnlyEmpty},
	{"FillRun_unknown", fillRunUnknown},
	{"GetRun_RunBySHA_unknown", getRunUnknown},
	{"OpenRuns_merge_order", openRunsMergeOrder},
	{"ReposWithOpenRuns", reposWithOpenRuns},
	{"ListRuns_newest_first", listRuns},
	{"RepoPipelines_sorted_distinct", repoPipelines},
}

// runOpts compare runs as stored: times to the millisecond, and the
// fields the store fills (ID, Seq, timestamps) left out.
var runOpts = cmp.Options{timeOpts, cmpopts.IgnoreFields(store.Run{}, "ID", "Seq", "CreatedAt", "UpdatedAt")}

func (e *env) getRun(id string) store.Run {
	e.Helper()
	r, err := e.s.GetRun(e.ctx, id)
	e.must(err)
	return r
}

func createRunFills(e *env) {
	in := store.Run{Repo: repo, SHA: "a1", Installation: 7, Branch: "main", PR: 12, PRFacts: []byte(`{"number":12}`),
		Source: "pull_request", MergedAt: base, Parent: "p0"}
	r, created, err := e.s.CreateRun(e.ctx, in)
	e.must(err)
	if !created {
		e.Fatal("first CreateRun reported the run existed")
	}
	if r.ID == "" || r.Seq <= 0 || !recent(r.CreatedAt) || !recent(r.UpdatedAt) {
		e.Errorf("created run has ID %q, Seq %d, times %v %v; want them filled", r.ID, r.Seq, r.CreatedAt, r.UpdatedAt)
	}
	if r.State != store.RunPending || !r.Open() {
		e.Errorf("a new run is %q; want pending (open)", r.State)
	}
	want := in
	want.State = store.RunPending
	if diff := cmp.Diff(want, r, runOpts); diff != "" {
		e.Errorf("CreateRun returned (-want +got):\n%s", diff)
	}
	got := e.getRun(r.ID)
	if diff := cmp.Diff(r, got, timeOpts); diff != "" {
		e.Errorf("GetRun (-created +read):\n%s", diff)
	}
	bySHA, err := e.s.RunBySHA(e.ctx, repo, "a1")
	e.must(err)
	if diff := cmp.Diff(r, bySHA, timeOpts); diff != "" {
		e.Errorf("RunBySHA (-created +read):\n%s", diff)
	}
}

func createRunUnique(e *env) {
	first, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "a1", Installation: 1, Branch: "main", Source: "push", Parent: "p0"})
	e.must(err)
	if !created {
		e.Fatal("first CreateRun reported the run existed")
	}
	// The other delivery of the same merge.
	second, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "a1", Installation: 1, Branch: "main", Source: "pull_request",
		PR: 7, PRFacts: []byte(`{"number":7}`), MergedAt: base})
	e.must(err)
	if created {
		e.Error("second CreateRun for the same merge reported a creation")
	}
	if diff := cmp.Diff(first, second, timeOpts); diff != "" {
		e.Errorf("second CreateRun returned (-stored +returned):\n%s", diff)
	}
	if runs, err := e.s.ListRuns(e.ctx, repo, 10); err != nil || len(runs) != 1 {
		e.Errorf("ListRuns = %d runs, %v; want 1", len(runs), err)
	}
	other, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: "acme/web", SHA: "a1", Installation: 1, Branch: "main", Source: "push"})
	e.must(err)
	if !created || other.ID == first.ID {
		e.Errorf("the same sha in another repository: created %v, id %s (first %s); want a run of its own", created, other.ID, first.ID)
	}
}

func createRunConcurrent(e *env) {
	const n = 12
	var mu sync.Mutex
	ids := map[string]bool{}
	creations := 0
	parallel(n, func(i int) {
		src := []string{"push", "pull_request"}[i%2]
		r, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "a1", Installation: 1, Branch: "main", Source: src})
		if err != nil {
			e.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ids[r.ID] = true
		if created {
			creations++
		}
	})
	if creations != 1 || len(ids) != 1 {
		e.Errorf("%d creations, %d distinct runs returned; want exactly 1 of each", creations, len(ids))
	}
	if runs, err := e.s.ListRuns(e.ctx, repo, 100); err != nil || len(runs) != 1 {
		e.Errorf("ListRuns = %d runs, %v; want 1", len(runs), err)
	}
}

func createRunSeq(e *env) {
	a, b := e.newRun(repo, "a", 0), e.newRun("acme/web", "b", 0)
	if b.Seq <= a.Seq {
		e.Errorf("Seq %d then %d; want increasing in arrival order", a.Seq, b.Seq)
	}
	const n = 10
	seqs := make([]int64, n)
	parallel(n, func(i int) {
		r, _, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: fmt.Sprint("c", i), Installation: 1, Branch: "main", Source: "push"})
		if err != nil {
			e.Error(err)
			return
		}
		seqs[i] = r.Seq
	})
	seen := map[int64]bool{}
	for _, s := range seqs {
		if seen[s] || s <= b.Seq {
			e.Errorf("concurrent creations got Seqs %v; want distinct, after %d", seqs, b.Seq)
			break
		}
		seen[s] = true
	}
}

func updateRunFields(e *env) {
	r, _, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "a1", Installation: 1, Branch: "main", Source: "pull_request",
		PR: 3, PRFacts: []byte(`{"number":3}`), MergedAt: base, Parent: "p0"})
	e.must(err)
	upd := r
	upd.PR, upd.State, upd.Pipeline, upd.Version, upd.Tag, upd.PrevTag = 4, store.RunReleasing, "api", "1.2.0", "v1.2.0", "v1.1.0"
	upd.ReleaseURL, upd.Summary = "https://github.example/acme/api/releases/v1.2.0", []byte(`{"notes":["x"]}`)
	// What deliveries bring is not UpdateRun's to change.
	upd.PRFacts, upd.MergedAt, upd.Parent = []byte(`{"number":99}`), base.Add(time.Hour), "p9"
	e.must(e.s.UpdateRun(e.ctx, upd))

	want := r
	want.PR, want.State, want.Pipeline, want.Version, want.Tag, want.PrevTag = upd.PR, upd.State, upd.Pipeline, upd.Version, upd.Tag, upd.PrevTag
	want.ReleaseURL, want.Summary = upd.ReleaseURL, upd.Summary
	got := e.getRun(r.ID)
	if diff := cmp.Diff(want, got, runOpts); diff != "" {
		e.Errorf("after UpdateRun (-want +got):\n%s", diff)
	}
	if got.ID != r.ID || got.Seq != r.Seq {
		e.Errorf("UpdateRun changed the run's identity: %s/%d, was %s/%d", got.ID, got.Seq, r.ID, r.Seq)
	}
}

func updateRunUnknown(e *env) {
	if err := e.s.UpdateRun(e.ctx, store.Run{ID: "nope", State: store.RunReleased}); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("UpdateRun(unknown) = %v; want ErrNotFound", err)
	}
}

func fillRunOnlyEmpty(e *env) {
	facts1, facts2 := []byte(`{"number":7}`), []byte(`{"number":8}`)

	// A push came first: no pull request, no parent known yet.
	a := e.newRun(repo, "a", 0)
	e.must(e.s.FillRun(e.ctx, store.Run{ID: a.ID, PRFacts: facts1, PR: 7, MergedAt: base, Parent: "p-a"}))
	want := a
	want.PRFacts, want.PR, want.MergedAt, want.Parent = facts1, 7, base, "p-a"
	if diff := cmp.Diff(want, e.getRun(a.ID), runOpts); diff != "" {
		e.Errorf("first FillRun (-want +got):\n%s", diff)
	}
	e.must(e.s.FillRun(e.ctx, store.Run{ID: a.ID, PRFacts: facts2, PR: 8, MergedAt: base.Add(time.Hour), Parent: "p-other"}))
	if diff := cmp.Diff(want, e.getRun(a.ID), runOpts); diff != "" {
		e.Errorf("a second FillRun overwrote what was there (-want +got):\n%s", diff)
	}

	// The push named the parent; the pull request's delivery fills the
	// facts, while an evaluation under way has already moved the run on.
	b, _, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "b", Installation: 1, Branch: "main", Source: "push", Parent: "p-b"})
	e.must(err)
	b.State, b.Version = store.RunReleasing, "1.0.0"
	e.must(e.s.UpdateRun(e.ctx, b))
	e.must(e.s.FillRun(e.ctx, store.Run{ID: b.ID, PRFacts: facts1, PR: 7, MergedAt: base, Parent: "p-other"}))
	wantB := b
	wantB.PRFacts, wantB.PR, wantB.MergedAt = facts1, 7, base
	if diff := cmp.Diff(wantB, e.getRun(b.ID), runOpts); diff != "" {
		e.Errorf("FillRun of facts onto a run with a parent and an evaluation under way (-want +got):\n%s", diff)
	}

	// The pull request came first; history later names the parent alone.
	c, _, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "c", Installation: 1, Branch: "main", Source: "pull_request",
		PR: 5, PRFacts: facts1, MergedAt: base})
	e.must(err)
	e.must(e.s.FillRun(e.ctx, store.Run{ID: c.ID, Parent: "p-c"}))
	wantC := c
	wantC.Parent = "p-c"
	if diff := cmp.Diff(wantC, e.getRun(c.ID), runOpts); diff != "" {
		e.Errorf("FillRun of the parent alone (-want +got):\n%s", diff)
	}
}

func fillRunUnknown(e *env) {
	if err := e.s.FillRun(e.ctx, store.Run{ID: "nope", Parent: "p"}); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("FillRun(unknown) = %v; want ErrNotFound", err)
	}
}

func getRunUnknown(e *env) {
	if _, err := e.s.GetRun(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("GetRun(unknown) = %v; want ErrNotFound", err)
	}
	e.newRun(repo, "a1", 0)
	if _, err := e.s.RunBySHA(e.ctx, "acme/web", "a1"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RunBySHA(other repository) = %v; want ErrNotFound", err)
	}
}

func openRunsMergeOrder(e *env) {
	create := func(sha string, mergedAt time.Time, parent string) store.Run {
		e.Helper()
		r, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: sha, Installation: 1, Branch: "main", Source: "push",
			MergedAt: mergedAt, Parent: parent})
		e.must(err)
		if !created {
			e.Fatalf("run %s existed", sha)
		}
		return r
	}
	sec := time.Second
	// Arrival order differs from merge order; b1, b2 and x merged in the
	// same second, where only history (b2's parent is b1) and arrival
	// tell them apart.
	create("c", base.Add(2*sec), "")
	create("b2", base.Add(sec), "b1")
	create("b1", base.Add(sec), "a")
	create("x", base.Add(sec), "")
	create("a", base, "")
	rel := create("r", base.Add(3*sec), "")
	rel.State = store.RunReleasing // still open
	e.must(e.s.UpdateRun(e.ctx, rel))
	done := create("d", base.Add(-sec), "")
	done.State = store.RunReleased
	e.must(e.s.UpdateRun(e.ctx, done))
	refused := create("f", base.Add(sec), "")
	refused.State = store.RunRefused
	e.must(e.s.UpdateRun(e.ctx, refused))
	e.newRun("acme/web", "z", 0)

	ids, err := e.s.OpenRunIDs(e.ctx, repo)
	e.must(err)
	var open []store.Run
	for _, id := range ids {
		r, err := e.s.GetRun(e.ctx, id)
		e.must(err)
		open = append(open, r)
	}
	if got := fmt.Sprint(shas(open)); got != "[a b1 b2 x c r]" {
		e.Errorf("OpenRunIDs = runs %s; want [a b1 b2 x c r]: merge time, a run after its parent, then arrival; closed runs and other repositories left out", got)
	}
}

func reposWithOpenRuns(e *env) {
	e.newRun(repo, "a", 0)
	e.released("acme/web", "b", 0, "1.0.0") // only closed runs
	ops := e.newRun("acme/ops", "c", 0)
	ops.State = store.RunReleasing
	e.must(e.s.UpdateRun(e.ctx, ops))
	e.newRun(repo, "d", 0)
	got, err := e.s.ReposWithOpenRuns(e.ctx)
	e.must(err)
	if fmt.Sprint(sorted(got)) != "[acme/api acme/ops]" {
		e.Errorf("ReposWithOpenRuns = %v; want acme/api and acme/ops, once each", got)
	}
}

func listRuns(e *env) {
	e.newRun(repo, "a1", 0)
	e.newRun(repo, "a2", 0)
	e.newRun(repo, "a3", 0)
	e.newRun("acme/web", "b1", 0)
	list := func(repo string, limit int) string {
		e.Helper()
		runs, err := e.s.ListRuns(e.ctx, repo, limit)
		e.must(err)
		return fmt.Sprint(shas(runs))
	}
	if got := list(repo, 2); got != "[a3 a2]" {
		e.Errorf("ListRuns(%s, 2) = %s; want the newest two [a3 a2]", repo, got)
	}
	if got := list(repo, 10); got != "[a3 a2 a1]" {
		e.Errorf("ListRuns(%s, 10) = %s; want [a3 a2 a1]", repo, got)
	}
	if got := list("", 10); got != "[b1 a3 a2 a1]" {
		e.Errorf(`ListRuns("", 10) = %s; want every repository's [b1 a3 a2 a1]`, got)
	}
}

func repoPipelines(e *env) {
	for i, p := range []string{"web", "api", "", "api"} {
		r := e.newRun(repo, fmt.Sprint("s", i), 0)
		r.State, r.Pipeline = store.RunReleased, p
		e.must(e.s.UpdateRun(e.ctx, r))
	}
	other := e.newRun("acme/ops", "o", 0)
	other.State, other.Pipeline = store.RunReleased, "ops"
	e.must(e.s.UpdateRun(e.ctx, other))
	got, err := e.s.RepoPipelines(e.ctx, repo)
	e.must(err)
	if fmt.Sprint(got) != "[api web]" {
		e.Errorf("RepoPipelines = %q; want [api web]: sorted, once each, none unnamed, none of another repository", got)
	}
}

// --- Leases -------------------------------------------------------------

var leasesCases = []testCase{
	{"acquire_renew_release_expiry_takeover", leaseLifecycle},
	{"renewal_extends_expiry", leaseRenewalExtends},
	{"release_only_by_holder", leaseReleaseOnlyByHolder},
	{"names_independent", leaseNamesIndependent},
	{"AcquireLease_concurrent_one_winner", leaseConcurrent},
	{"AcquireLease_concurrent_takeover_one_winner", leaseConcurrentTakeover},
}

func (e *env) acquire(name, owner string, ttl time.Duration) bool {
	e.Helper()
	ok, err := e.s.AcquireLease(e.ctx, name, owner, ttl)
	e.must(err)
	return ok
}

const lease = "pipeline:" + pk

func leaseLifecycle(e *env) {
	if !e.acquire(lease, "a", longTTL) {
		e.Fatal("a could not take a free lease")
	}
	if e.acquire(lease, "b", longTTL) {
		e.Fatal("b took a lease a holds")
	}
	if !e.acquire(lease, "a", longTTL) {
		e.Fatal("a could not renew its own lease")
	}
	e.must(e.s.ReleaseLease(e.ctx, lease, "a"))
	if !e.acquire(lease, "b", shortTTL) {
		e.Fatal("b could not take a lease its holder released (a SIGTERM hands leases back at once)")
	}
	expire() // b dies
	if !e.acquire(lease, "c", longTTL) {
		e.Fatal("c could not take over a lease that expired")
	}
	if e.acquire(lease, "b", longTTL) {
		e.Fatal("b renewed a lease it lost to c")
	}
}

func leaseRenewalExtends(e *env) {
	if !e.acquire(lease, "a", shortTTL) {
		e.Fatal("a could not take a free lease")
	}
	if !e.acquire(lease, "a", longTTL) {
		e.Fatal("a could not renew its own lease")
	}
	expire() // the first ttl is over; the renewal's is not
	if e.acquire(lease, "b", longTTL) {
		e.Fatal("b took a lease a had renewed: the renewal did not extend it")
	}
}

func leaseReleaseOnlyByHolder(e *env) {
	e.acquire(lease, "a", longTTL)
	e.must(e.s.ReleaseLease(e.ctx, lease, "b"))
	if e.acquire(lease, "b", longTTL) {
		e.Fatal("a release by a non-holder freed the lease")
	}
	if !e.acquire(lease, "a", longTTL) {
		e.Fatal("a lost its lease to another owner's release")
	}
	e.must(e.s.ReleaseLease(e.ctx, "never-taken", "a"))
}

func leaseNamesIndependent(e *env) {
	if !e.acquire("pipeline:acme/api:api", "a", longTTL) || !e.acquire("pipeline:acme/web:web", "b", longTTL) {
		e.Fatal("leases of different names interfere")
	}
	e.must(e.s.ReleaseLease(e.ctx, "pipeline:acme/web:web", "b"))
	if e.acquire("pipeline:acme/api:api", "b", longTTL) {
		e.Fatal("releasing one name freed another")
	}
}

// race has n owners try for the lease at once and returns the winners.
func (e *env) race(n int) []string {
	var mu sync.Mutex
	var winners []string
	parallel(n, func(i int) {
		owner := fmt.Sprint("replica-", i)
		ok, err := e.s.AcquireLease(e.ctx, lease, owner, longTTL)
		if err != nil {
			e.Error(err)
			return
		}
		if ok {
			mu.Lock()
			winners = append(winners, owner)
			mu.Unlock()
		}
	})
	return winners
}

func leaseConcurrent(e *env) {
	if w := e.race(16); len(w) != 1 {
		e.Errorf("%d owners got one lease at once: %v; want exactly 1", len(w), w)
	}
}

func leaseConcurrentTakeover(e *env) {
	e.acquire(lease, "dead", shortTTL)
	expire()
	if w := e.race(16); len(w) != 1 {
		e.Errorf("%d owners took over one expired lease at once: %v; want exactly 1", len(w), w)
	}
}

// --- CheckRuns and Comments ----------------------------------------------

var checkRunsCases = []testCase{{"CheckRunID_save_overwrite_keys", checkRunIDs}}

func checkRunIDs(e *env) {
	get := func(repo, sha, name string) (int64, bool) {
		e.Helper()
		id, ok, err := e.s.CheckRunID(e.ctx, repo, sha, name)
		e.must(err)
		return id, ok
	}
	if _, ok := get(repo, "a1", "shipbot/rollout"); ok {
		e.Fatal("unknown check run found")
	}
	e.must(e.s.SaveCheckRunID(e.ctx, repo, "a1", "shipbot/rollout", 42))
	if id, ok := get(repo, "a1", "shipbot/rollout"); !ok || id != 42 {
		e.Errorf("CheckRunID = %d, %v; want 42", id, ok)
	}
	e.must(e.s.SaveCheckRunID(e.ctx, repo, "a1", "shipbot/rollout", 43))
	if id, ok := get(repo, "a1", "shipbot/rollout"); !ok || id != 43 {
		e.Errorf("CheckRunID after a second save = %d, %v; want 43", id, ok)
	}
	for _, k := range [][3]string{{repo, "a1", "shipbot/preview"}, {repo, "b2", "shipbot/rollout"}, {"acme/web", "a1", "shipbot/rollout"}} {
		if id, ok := get(k[0], k[1], k[2]); ok {
			e.Errorf("CheckRunID%v = %d; want none: repository, sha and name each make the key", k, id)
		}
	}
}

var commentsCases = []testCase{{"CommentID_save_overwrite_keys", commentIDs}}

func commentIDs(e *env) {
	get := func(repo string, pr int) (int64, bool) {
		e.Helper()
		id, ok, err := e.s.CommentID(e.ctx, repo, pr)
		e.must(err)
		return id, ok
	}
	if _, ok := get(repo, 7); ok {
		e.Fatal("unknown comment found")
	}
	e.must(e.s.SaveCommentID(e.ctx, repo, 7, 100))
	e.must(e.s.SaveCommentID(e.ctx, repo, 7, 100)) // saving the id it has
	if id, ok := get(repo, 7); !ok || id != 100 {
		e.Errorf("CommentID = %d, %v; want 100", id, ok)
	}
	e.must(e.s.SaveCommentID(e.ctx, repo, 7, 101))
	if id, ok := get(repo, 7); !ok || id != 101 {
		e.Errorf("CommentID after a new id = %d, %v; want 101", id, ok)
	}
	if id, ok := get(repo, 8); ok {
		e.Errorf("CommentID of another PR = %d; want none", id)
	}
	if id, ok := get("acme/web", 7); ok {
		e.Errorf("CommentID of another repository's PR = %d; want none", id)
	}
}
