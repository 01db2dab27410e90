package merge_test

// Integration tests of "Merge gate and automatic semantic-version
// releases": the real service (webhook intake, durable inbox, worker, merge
// coordinator, preview handler) on a real SQLite file and a loopback port,
// fed signed deliveries, talking over HTTP to the GitHub fake as a GitHub
// App (JWT, installation token). Nothing here sleeps for a fixed time:
// every wait polls the store or the fake against a deadline.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

const (
	repo        = "acme/api"
	owner, name = "acme", "api"
	rollout     = "shipbot/rollout"
	preview     = "shipbot/preview"
	configFile  = ".github/shipbot.yml"
	releasesAPI = "POST /repos/{owner}/{repo}/releases"
	tokenAPI    = "POST /app/installations/{installation_id}/access_tokens"
)

const repoConfig = `version: 1
release:
  tag_prefix: v
  initial: 0.1.0
  bump: conventional
gate:
  approvals: 1
  require_protected_branch: true
  require_checks: true
`

// world is one fake GitHub with one repository, and where the bot keeps its
// database, so a restarted bot finds its state again.
type world struct {
	tb         testing.TB
	gh         *githubtest.Server
	db         string // the database file
	secret     []byte
	deliveries servicetest.Deliveries
	logs       *servicetest.LogBuffer
}

// newWorld starts a schema-checked fake holding acme/api with files (the
// shipbot config when nil), protected main requiring ci/test and one
// approval, and alice and bob as collaborators with write access.
func newWorld(tb testing.TB, files map[string]string) *world {
	tb.Helper()
	if files == nil {
		files = map[string]string{"README.md": "# api\n", configFile: repoConfig}
	}
	// Cleanups run last-in first-out: every bot stops before the fake's
	// schema log is checked, and that before the logs are dumped.
	w := &world{
		tb:     tb,
		logs:   servicetest.NewLogBuffer(tb, 0),
		gh:     servicetest.NewGitHub(tb, githubtest.WithSchemaCheck(schemacheck.ValidateResponse)),
		db:     servicetest.DBPath(tb),
		secret: []byte("webhook-secret"),
	}
	servicetest.SeedRepo(w.gh, repo, files)
	return w
}

// botOptions vary how a bot is started.
type botOptions struct {
	baseURL string            // default: the fake's plain REST base
	base    http.RoundTripper // innermost transport, for fault hooks
	owner   string            // lease owner; default "bot"
	// pairWait is the coordinator's PairWait; default none (-1): these
	// tests send the deliveries they mean, and one alone is evaluated
	// at once.
	pairWait time.Duration
}

// bot is the real service, started on a loopback port.
type bot struct {
	st   *store.SQLite
	srv  *servicetest.Server
	hook servicetest.Hook
	once sync.Once
	tb   testing.TB
}

// start runs the service as `bot serve` wires it, on the world's database.
func (w *world) start(o botOptions) *bot {
	tb := w.tb
	tb.Helper()
	if o.owner == "" {
		o.owner = "bot"
	}
	if o.pairWait == 0 {
		o.pairWait = -1
	}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("bot", o.owner)
	st := servicetest.OpenStore(tb, w.db)
	apps := servicetest.Apps(tb, w.gh, ghclient.Options{BaseURL: o.baseURL, Base: o.base, Logger: log})
	parts := service.Bot{Store: st, Clients: apps, Log: log, Owner: o.owner, TokenKey: w.secret, PairWait: o.pairWait}.Build()
	srv := servicetest.Start(tb, servicetest.Listen(tb), service.Options{
		Store: st, WebhookSecret: w.secret, Handlers: parts.Handlers, Loops: parts.Loops, Log: log, Owner: o.owner,
		WorkerPoll: 10 * time.Millisecond,
	})
	b := &bot{st: st, srv: srv, hook: srv.Hook(), tb: tb}
	tb.Cleanup(b.shutdown)
	return b
}

// stop cancels the service; it never blocks (a crash calls it).
func (b *bot) stop() { b.srv.Cancel() }

// shutdown stops the service, waits for it and closes the store.
func (b *bot) shutdown() {
	b.once.Do(func() {
		b.srv.Stop()
		if err := b.st.Close(); err != nil {
			b.tb.Errorf("close store: %v", err)
		}
	})
}

// delivery is one webhook delivery.
type delivery = servicetest.Delivery

// redelivery is what GitHub's "Redeliver" button sends: the same payload
// under a new delivery id.
func (w *world) redelivery(d delivery) delivery { return w.deliveries.New(d.Event, d.Body) }

// send delivers d, signed, and returns the HTTP status.
func (b *bot) send(d delivery) int {
	b.tb.Helper()
	return b.hook.Send(b.tb, d)
}

// sendAll delivers ds and requires GitHub-style acknowledgements.
func (b *bot) sendAll(ds ...delivery) {
	b.tb.Helper()
	b.hook.SendOK(b.tb, ds...)
}

// waitRun waits until the run of sha reached its verdict and returns it.
func (b *bot) waitRun(sha string) store.Run {
	b.tb.Helper()
	var r store.Run
	servicetest.Eventually(b.tb, "the run of "+sha[:7]+" is decided", func() bool {
		var err error
		r, err = b.st.RunBySHA(context.Background(), repo, sha)
		return err == nil && !r.Open()
	})
	return r
}

// waitProcessed waits until the worker finished each delivery (a
// redelivery under a known id is never stored again, so it is finished
// with the original).
func (b *bot) waitProcessed(ds ...delivery) {
	b.tb.Helper()
	for _, d := range ds {
		servicetest.WaitProcessed(b.tb, b.st, d.ID)
	}
}

// pr opens a pull request by alice with green CI on its head.
func (w *world) pr(title string, labels ...string) int {
	n := w.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{Title: title, Author: "alice", Labels: labels})
	w.gh.SetStatus(repo, w.gh.PullRequest(repo, n).HeadSHA, "ci/test", "success")
	return n
}

// merged is one merge and the two deliveries GitHub sends for it.
type merged struct {
	pr          int
	sha, before string
	closed      delivery // pull_request closed, merged
	push        delivery // push to main
}

// merge merges pull request n (alice presses the button) and builds its
// deliveries.
func (w *world) merge(n int) merged {
	before := w.gh.BranchSHA(repo, "main")
	sha := w.gh.Merge(repo, n, "alice")
	return merged{
		pr: n, sha: sha, before: before,
		closed: w.deliveries.New("pull_request", w.gh.PullRequestEvent(owner, name, n, "closed")),
		push:   w.deliveries.New("push", w.gh.PushEvent(owner, name, "refs/heads/main", before, sha)),
	}
}

// approvedMerge is the happy path's merge: a fix, approved by bob.
func (w *world) approvedMerge(title string, labels ...string) merged {
	n := w.pr(title, labels...)
	w.gh.AddReview(repo, n, "bob", "APPROVED", "")
	return w.merge(n)
}

// tagsOn lists the tags that point at sha.
func (w *world) tagsOn(sha string) []string {
	var out []string
	for _, t := range w.gh.Tags(repo) {
		if t.SHA == sha {
			out = append(out, t.Name)
		}
	}
	return out
}

func (w *world) releasesOf(tag string) []githubtest.Release {
	var out []githubtest.Release
	for _, r := range w.gh.Releases(repo) {
		if r.TagName == tag {
			out = append(out, r)
		}
	}
	return out
}

// rolloutCheck returns the single shipbot/rollout check run on sha.
func (w *world) rolloutCheck(sha string) githubtest.CheckRun {
	w.tb.Helper()
	return w.onlyCheck(sha, rollout)
}

func (w *world) onlyCheck(sha, checkName string) githubtest.CheckRun {
	w.tb.Helper()
	var found []githubtest.CheckRun
	for _, cr := range w.gh.CheckRuns(repo, sha) {
		if cr.Name == checkName {
			found = append(found, cr)
		}
	}
	if len(found) != 1 {
		w.tb.Fatalf("%d %s check runs on %s; want exactly 1: %+v", len(found), checkName, sha[:7], found)
	}
	return found[0]
}

// assertReleased checks the one release of merge m: tag on the merge
// commit, one GitHub Release whose notes name the pull request, and one
// rollout check run saying so.
func (w *world) assertReleased(m merged, tag string) {
	w.tb.Helper()
	if got := w.tagsOn(m.sha); !slices.Equal(got, []string{tag}) {
		w.tb.Errorf("tags on the merge commit %s: %v; want [%s]", m.sha[:7], got, tag)
	}
	rels := w.releasesOf(tag)
	if len(rels) != 1 {
		w.tb.Fatalf("%d releases for %s; want 1", len(rels), tag)
	}
	// The author is named (a link to the profile, escaped: a release
	// notifies nobody).
	if body := rels[0].Body; !strings.Contains(body, fmt.Sprintf("[#%d]", m.pr)) || !strings.Contains(body, "[@\u200balice]") {
		w.tb.Errorf("release notes of %s do not name pull request #%d by @alice:\n%s", tag, m.pr, body)
	}
	if rels[0].TargetCommitish != m.sha {
		w.tb.Errorf("release %s targets %s; want the merge commit %s", tag, rels[0].TargetCommitish, m.sha)
	}
	cr := w.rolloutCheck(m.sha)
	if cr.Status != "completed" || cr.Conclusion != "success" || cr.Title != "Released "+tag {
		w.tb.Errorf("rollout check = %s/%s %q; want completed/success %q", cr.Status, cr.Conclusion, cr.Title, "Released "+tag)
	}
}

// assertNothingReleased checks that no tag and no release exist.
func (w *world) assertNothingReleased() {
	w.tb.Helper()
	if tags := w.gh.Tags(repo); len(tags) != 0 {
		w.tb.Errorf("tags %+v; want none", tags)
	}
	if rels := w.gh.Releases(repo); len(rels) != 0 {
		w.tb.Errorf("releases %+v; want none", rels)
	}
	if n := w.gh.Count(releasesAPI); n != 0 {
		w.tb.Errorf("%d release creations attempted; want none", n)
	}
}

// TestApprovedMergeReleasesOnce: both deliveries of one merge, in either
// order, each redelivered under its own id and under a new one, cut one
// tag and one release.
func TestApprovedMergeReleasesOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		pushFirst bool
	}{{"pull_request first", false}, {"push first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			b := w.start(botOptions{})
			m := w.approvedMerge("fix: handle empty bodies")
			first, second := m.closed, m.push
			if tc.pushFirst {
				first, second = second, first
			}
			b.sendAll(first, second)
			// GitHub's redeliveries: the same id again (acknowledged, not
			// stored twice) and the same payload under a new id.
			if code := b.send(first); code != http.StatusOK {
				t.Errorf("redelivery under the same id answered %d; want 200", code)
			}
			if code := b.send(second); code != http.StatusOK {
				t.Errorf("redelivery under the same id answered %d; want 200", code)
			}
			again1, again2 := w.redelivery(first), w.redelivery(second)
			b.sendAll(again1, again2)
			// The push of the bot's own tag is ignored.
			tagPush := w.deliveries.New("push", w.gh.PushEvent(owner, name, "refs/tags/v0.1.0", "0000000000000000000000000000000000000000", m.sha))
			b.sendAll(tagPush)

			r := b.waitRun(m.sha)
			b.waitProcessed(first, second, again1, again2, tagPush)
			if r.State != store.RunReleased || r.Version != "0.1.0" || r.Tag != "v0.1.0" || r.PR != m.pr {
				t.Errorf("run = state %s version %s tag %s pr %d; want released 0.1.0 v0.1.0 #%d", r.State, r.Version, r.Tag, r.PR, m.pr)
			}
			if r.Parent != m.before {
				t.Errorf("run parent %s; want the branch head before the merge %s", r.Parent, m.before)
			}
			w.assertReleased(m, "v0.1.0")
			if n := w.gh.Count(releasesAPI); n != 1 {
				t.Errorf("%d release creations; want 1", n)
			}
			if tags := w.gh.Tags(repo); len(tags) != 1 {
				t.Errorf("tags %+v; want one", tags)
			}
			runs, _ := b.st.ListRuns(context.Background(), repo, 10)
			if len(runs) != 1 {
				t.Errorf("%d runs; want 1 (the tag push made none)", len(runs))
			}
		})
	}
}

// TestOneDeliveryIsEnough: a merge whose other delivery is lost is
// released all the same.
func TestOneDeliveryIsEnough(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		which func(merged) delivery
	}{
		{"push only", func(m merged) delivery { return m.push }},
		{"pull_request only", func(m merged) delivery { return m.closed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			b := w.start(botOptions{})
			m := w.approvedMerge("feat: add /healthz")
			b.sendAll(tc.which(m))
			r := b.waitRun(m.sha)
			if r.State != store.RunReleased || r.Tag != "v0.1.0" {
				t.Fatalf("run = %s %s; want released v0.1.0", r.State, r.Tag)
			}
			w.assertReleased(m, "v0.1.0")
			if n := w.gh.Count(releasesAPI); n != 1 {
				t.Errorf("%d release creations; want 1", n)
			}
		})
	}
}

// TestRefusedMerges: what the gate refuses is neither tagged nor released,
// and the rollout check run on the merge commit says why.
func TestRefusedMerges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// land puts a commit on main and returns it with its deliveries.
		land func(w *world) (sha string, ds []delivery)
		want []string // in the check run's summary
	}{
		{
			name: "unapproved",
			land: func(w *world) (string, []delivery) {
				m := w.merge(w.pr("feat: nobody looked"))
				return m.sha, []delivery{m.closed, m.push}
			},
			want: []string{"1 approval from someone other than the author is required; found 0"},
		},
		{
			name: "self-approval only",
			land: func(w *world) (string, []delivery) {
				n := w.pr("fix: trust me")
				w.gh.AddReview(repo, n, "alice", "APPROVED", "")
				m := w.merge(n)
				return m.sha, []delivery{m.push, m.closed}
			},
			want: []string{"1 approval from someone other than the author is required; found 0"},
		},
		{
			name: "changes requested",
			land: func(w *world) (string, []delivery) {
				n := w.pr("fix: contested")
				w.gh.AddReview(repo, n, "bob", "CHANGES_REQUESTED", "")
				m := w.merge(n)
				return m.sha, []delivery{m.closed, m.push}
			},
			// Shown on GitHub escaped: the reason names bob, without
			// notifying him in shipbot's name.
			want: []string{"@\u200bbob requested changes", "found 0"},
		},
		{
			name: "direct push",
			land: func(w *world) (string, []delivery) {
				before := w.gh.BranchSHA(repo, "main")
				sha := w.gh.AddCommit(repo, "main", "hotfix straight to main", map[string]string{"hotfix.txt": "x\n"})
				return sha, []delivery{w.deliveries.New("push", w.gh.PushEvent(owner, name, "refs/heads/main", before, sha))}
			},
			want: []string{"without a reviewed pull request"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			b := w.start(botOptions{})
			sha, ds := tc.land(w)
			b.sendAll(ds...)
			r := b.waitRun(sha)
			b.waitProcessed(ds...)
			if r.State != store.RunRefused || r.Version != "" {
				t.Errorf("run = %s version %q; want refused without a version", r.State, r.Version)
			}
			// The audit log has the refusal with its reasons, after the
			// merge was recorded.
			evs, err := b.st.ListEvents(context.Background(), store.EventQuery{Run: r.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 || evs[1].Kind != store.KindMergeRecorded || evs[0].Kind != store.KindMergeRefused ||
				!strings.Contains(evs[0].Detail, strings.ReplaceAll(tc.want[0], "\u200b", "")) {
				t.Errorf("events of the refused merge = %+v; want merge.recorded, then merge.refused with the reasons", evs)
			}
			w.assertNothingReleased()
			cr := w.rolloutCheck(sha)
			if cr.Status != "completed" || cr.Conclusion != "action_required" {
				t.Errorf("rollout check %s/%s; want completed/action_required", cr.Status, cr.Conclusion)
			}
			for _, want := range tc.want {
				if !strings.Contains(cr.Summary, want) {
					t.Errorf("rollout check summary lacks %q:\n%s", want, cr.Summary)
				}
			}
			if !strings.Contains(string(r.Summary), strings.ReplaceAll(tc.want[0], "\u200b", "")) {
				t.Errorf("run summary lacks %q: %s", tc.want[0], r.Summary)
			}
		})
	}
}

// TestBurstOfMergesKeepsMergeOrder: 20 merges land one after the other; all
// 40 deliveries then arrive at once, shuffled. Every merge is tagged once,
// and the Nth merge gets the Nth version.
func TestBurstOfMergesKeepsMergeOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	const n = 20
	var merges []merged
	var want []string
	for i := range n {
		title := fmt.Sprintf("fix: bug %d", i)
		if i%4 == 3 {
			title = fmt.Sprintf("feat: feature %d", i)
		}
		merges = append(merges, w.approvedMerge(title))
		want = append(want, nextVersion(want, strings.HasPrefix(title, "feat")))
	}
	var all []delivery
	for _, m := range merges {
		all = append(all, m.closed, m.push)
	}
	rng := rand.New(rand.NewPCG(2026, 1))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	var wg sync.WaitGroup
	codes := make([]int, len(all))
	start := make(chan struct{})
	for i, d := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), servicetest.DefaultLimit)
			defer cancel()
			code, err := b.hook.Post(ctx, d)
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = code
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("delivery %s answered %d; want 202", all[i].ID, c)
		}
	}
	for _, m := range merges {
		b.waitRun(m.sha)
	}
	b.waitProcessed(all...)

	var got []string
	for i, m := range merges {
		r, _ := b.st.RunBySHA(context.Background(), repo, m.sha)
		got = append(got, r.Tag)
		if r.State != store.RunReleased {
			t.Errorf("merge %d (%s): run %s; want released", i+1, m.sha[:7], r.State)
		}
		if tags := w.tagsOn(m.sha); len(tags) != 1 || tags[0] != want[i] {
			t.Errorf("merge %d (%s) carries tags %v; want [%s]", i+1, m.sha[:7], tags, want[i])
		}
		if rels := w.releasesOf(want[i]); len(rels) != 1 {
			t.Errorf("%d releases for %s; want 1", len(rels), want[i])
		}
		w.rolloutCheck(m.sha)
	}
	if !slices.Equal(got, want) {
		t.Errorf("versions in merge order:\n got %v\nwant %v", got, want)
	}
	if tags, rels := len(w.gh.Tags(repo)), len(w.gh.Releases(repo)); tags != n || rels != n {
		t.Errorf("%d tags and %d releases; want %d of each", tags, rels, n)
	}
	if c := w.gh.Count(releasesAPI); c != n {
		t.Errorf("%d release creations; want %d", c, n)
	}
}

// nextVersion is the tag after the last of tags for a fix or a feature,
// below 1.0.0: what the burst expects.
func nextVersion(tags []string, feat bool) string {
	if len(tags) == 0 {
		return "v0.1.0"
	}
	var major, minor, patch int
	fmt.Sscanf(tags[len(tags)-1], "v%d.%d.%d", &major, &minor, &patch)
	if feat {
		return fmt.Sprintf("v%d.%d.0", major, minor+1)
	}
	return fmt.Sprintf("v%d.%d.%d", major, minor, patch+1)
}

// TestInvalidConfigReleasesNothing: a config broken at the merge commit
// fails the rollout check, naming file, line and column.
func TestInvalidConfigReleasesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	broken := "version: 1\nrelease:\n  tag_prefix: v\n  bump: sideways\n"
	n := w.gh.OpenPullRequest(repo, githubtest.PullRequestSpec{
		Title: "chore: tweak the release config", Author: "alice", Files: map[string]string{configFile: broken},
	})
	w.gh.SetStatus(repo, w.gh.PullRequest(repo, n).HeadSHA, "ci/test", "success")
	w.gh.AddReview(repo, n, "bob", "APPROVED", "")
	m := w.merge(n)
	b.sendAll(m.closed, m.push)
	r := b.waitRun(m.sha)
	if r.State != store.RunInvalid {
		t.Errorf("run %s; want invalid", r.State)
	}
	w.assertNothingReleased()
	cr := w.rolloutCheck(m.sha)
	if cr.Status != "completed" || cr.Conclusion != "failure" {
		t.Errorf("rollout check %s/%s; want completed/failure", cr.Status, cr.Conclusion)
	}
	if !strings.Contains(cr.Summary, configFile+":4:9:") || !strings.Contains(cr.Summary, "sideways") {
		t.Errorf("rollout check summary does not name %s:4:9 and the bad value:\n%s", configFile, cr.Summary)
	}
	if !regexp.MustCompile(`\.github/shipbot\.yml:\d+:\d+`).MatchString(string(r.Summary)) {
		t.Errorf("run summary lacks file:line:col: %s", r.Summary)
	}
}

// TestNoConfigIsNeutral: a repository without .github/shipbot.yml is not
// opted in.
func TestNoConfigIsNeutral(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]string{"README.md": "# api\n"})
	b := w.start(botOptions{})
	m := w.approvedMerge("feat: something")
	b.sendAll(m.closed, m.push)
	r := b.waitRun(m.sha)
	if r.State != store.RunSkipped {
		t.Errorf("run %s; want skipped", r.State)
	}
	w.assertNothingReleased()
	cr := w.rolloutCheck(m.sha)
	if cr.Status != "completed" || cr.Conclusion != "neutral" || !strings.Contains(cr.Summary, configFile) {
		t.Errorf("rollout check %s/%s %q; want completed/neutral naming %s", cr.Status, cr.Conclusion, cr.Summary, configFile)
	}
}

// TestVersionBumps: labels override the title; semver:none releases
// nothing; a breaking change below 1.0.0 bumps the minor version.
func TestVersionBumps(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	steps := []struct {
		title  string
		labels []string
		tag    string // "" for no release
	}{
		{"fix: first", nil, "v0.1.0"},
		{"feat!: drop the v1 API", nil, "v0.2.0"},         // breaking below 1.0.0: minor
		{"fix: tiny", []string{"semver:major"}, "v1.0.0"}, // an explicit label leaves 0.x
		{"feat: not now", []string{"semver:none"}, ""},
		{"feat: later", nil, "v1.1.0"},
	}
	for _, s := range steps {
		m := w.approvedMerge(s.title, s.labels...)
		b.sendAll(m.closed, m.push)
		r := b.waitRun(m.sha)
		if s.tag == "" {
			if r.State != store.RunSkipped || len(w.tagsOn(m.sha)) != 0 {
				t.Errorf("%q %v: run %s, tags %v; want skipped, untagged", s.title, s.labels, r.State, w.tagsOn(m.sha))
			}
			cr := w.rolloutCheck(m.sha)
			if cr.Conclusion != "neutral" || !strings.Contains(cr.Summary, "semver:none") {
				t.Errorf("%q: rollout check %s %q; want neutral, naming semver:none", s.title, cr.Conclusion, cr.Summary)
			}
			continue
		}
		if r.Tag != s.tag {
			t.Errorf("%q %v: released %s; want %s", s.title, s.labels, r.Tag, s.tag)
			continue
		}
		w.assertReleased(m, s.tag)
	}
	if n := len(w.gh.Releases(repo)); n != 4 {
		t.Errorf("%d releases; want 4", n)
	}
}

// crashTransport simulates the process dying at its release creation,
// once armed: GitHub receives the request (forward) or not, the bot never
// learns the answer, and the service goes down.
type crashTransport struct {
	forward bool
	mu      sync.Mutex
	crash   func() // set by arm
	crashed atomic.Bool
}

func (c *crashTransport) arm(crash func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crash = crash
}

func (c *crashTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	crash := c.crash
	c.mu.Unlock()
	if crash == nil || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/repos/"+repo+"/releases") {
		return http.DefaultTransport.RoundTrip(req)
	}
	if c.forward && !c.crashed.Load() {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	c.crashed.Store(true)
	crash()
	return nil, errors.New("connection reset: the process is going down")
}

// TestCrashSafety: a run that persisted its version and died before its
// release was recorded finishes after a restart on the same database, with
// the same version and exactly one release.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		forward bool // the release was created before the crash
	}{{"crash before the release is created", false}, {"crash after the release is created, before it is recorded", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			ct := &crashTransport{forward: tc.forward}
			b1 := w.start(botOptions{base: ct, owner: "bot-1"})
			first := w.approvedMerge("fix: first")
			b1.sendAll(first.closed)
			b1.waitRun(first.sha)

			m := w.approvedMerge("feat: second")
			ct.arm(b1.stop)
			b1.sendAll(m.closed)
			servicetest.Eventually(t, "the first bot crashed at the release", ct.crashed.Load)
			b1.shutdown()

			r, err := w.storeRun(m.sha)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != store.RunReleasing || r.Version != "0.2.0" {
				t.Fatalf("after the crash the run is %s %q; want releasing 0.2.0", r.State, r.Version)
			}

			b2 := w.start(botOptions{owner: "bot-2"})
			got := b2.waitRun(m.sha)
			if got.State != store.RunReleased || got.Version != r.Version || got.Tag != "v0.2.0" {
				t.Errorf("after the restart the run is %s %s %s; want released %s v0.2.0", got.State, got.Version, got.Tag, r.Version)
			}
			w.assertReleased(m, "v0.2.0")
			if n := len(w.gh.Releases(repo)); n != 2 {
				t.Errorf("%d releases; want 2", n)
			}
			// The first merge's, and the second's once: either the crashed
			// attempt reached GitHub and the restart reused its release, or
			// it did not and the restart made it.
			wantCreates := 2
			if n := w.gh.Count(releasesAPI); n != wantCreates {
				t.Errorf("%d release creations reached GitHub; want %d", n, wantCreates)
			}
		})
	}

	t.Run("failed release creation is retried with the same version", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, nil)
		b := w.start(botOptions{})
		m := w.approvedMerge("feat: flaky GitHub")
		// GitHub answers the release creation 502: whether it was made is
		// unknown, so the transport does not retry the POST and the run
		// stays "releasing" with its version.
		w.gh.FailNext(releasesAPI, http.StatusBadGateway, 1)
		b.sendAll(m.closed)
		var r store.Run
		servicetest.Eventually(t, "the failed attempt is recorded", func() bool {
			d, err := b.st.GetDelivery(context.Background(), m.closed.ID)
			return err == nil && d.LastError != ""
		})
		r, _ = b.st.RunBySHA(context.Background(), repo, m.sha)
		if r.Version != "0.1.0" {
			t.Fatalf("version persisted before the release: %q; want 0.1.0", r.Version)
		}
		// The push delivery (or the retry) takes the run up again.
		b.sendAll(m.push)
		got := b.waitRun(m.sha)
		if got.State != store.RunReleased || got.Version != r.Version {
			t.Errorf("run %s %s; want released %s", got.State, got.Version, r.Version)
		}
		w.assertReleased(m, "v0.1.0")
		if n := w.gh.Count(releasesAPI); n != 2 {
			t.Errorf("%d release creations; want 2 (one failed, one made)", n)
		}
	})

	t.Run("a release already made for the merge is reused", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, nil)
		m := w.approvedMerge("fix: made by a crashed predecessor")
		// The release the bot made before dying, unrecorded: tag and
		// release for the version it computed, on the merge commit.
		client := w.installationClient(t)
		if _, _, err := client.Repositories.CreateRelease(context.Background(), owner, name, &gh.RepositoryRelease{
			TagName: gh.String("v0.1.0"), TargetCommitish: gh.String(m.sha), Name: gh.String("v0.1.0"), Body: gh.String("## v0.1.0\n\n- made earlier ([#1](x)) by @alice\n"),
		}); err != nil {
			t.Fatal(err)
		}
		w.gh.ResetRequests()
		b := w.start(botOptions{})
		b.sendAll(m.push, m.closed)
		r := b.waitRun(m.sha)
		b.waitProcessed(m.push, m.closed)
		if r.State != store.RunReleased || r.Tag != "v0.1.0" {
			t.Errorf("run %s %s; want released v0.1.0", r.State, r.Tag)
		}
		if n := w.gh.Count(releasesAPI); n != 0 {
			t.Errorf("%d release creations; want none (reuse)", n)
		}
		if n := len(w.gh.Releases(repo)); n != 1 {
			t.Errorf("%d releases; want 1", n)
		}
		if cr := w.rolloutCheck(m.sha); cr.Title != "Released v0.1.0" {
			t.Errorf("rollout check %q", cr.Title)
		}
	})
}

// storeRun reads a run while no bot runs, from the world's database.
func (w *world) storeRun(sha string) (store.Run, error) {
	st, err := store.OpenSQLite(w.db)
	if err != nil {
		return store.Run{}, err
	}
	defer st.Close()
	return st.RunBySHA(context.Background(), repo, sha)
}

// installationClient is a client of the App's installation, for set-up
// writes a test makes as someone else would.
func (w *world) installationClient(tb testing.TB) *gh.Client {
	c, err := servicetest.Apps(tb, w.gh, ghclient.Options{}).Installation(w.gh.InstallationID())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestForeignTagIsSteppedPast: a tag someone else put on the would-be
// version, before the merge or while the bot releases it, is left where it
// is, and the merge takes the next version.
func TestForeignTagIsSteppedPast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// race makes the foreign tag (and its release) appear between the
		// bot's read of the tags and its release creation.
		race bool
	}{{"tag there before the merge", false}, {"tag and release made while the bot releases", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			other := w.gh.AddCommit(repo, "experiment", "an experiment", map[string]string{"x.txt": "x\n"})
			hook := &beforeRelease{}
			b := w.start(botOptions{base: hook})
			first := w.approvedMerge("fix: first")
			b.sendAll(first.closed, first.push)
			b.waitRun(first.sha)

			m := w.approvedMerge("fix: second")
			if tc.race {
				client := w.installationClient(t)
				hook.set(func() {
					if _, _, err := client.Repositories.CreateRelease(context.Background(), owner, name, &gh.RepositoryRelease{
						TagName: gh.String("v0.1.1"), TargetCommitish: gh.String(other),
					}); err != nil {
						t.Errorf("foreign release: %v", err)
					}
				})
				b.sendAll(m.closed)
				servicetest.Eventually(t, "the release creation met the foreign tag", func() bool {
					d, err := b.st.GetDelivery(context.Background(), m.closed.ID)
					return err == nil && strings.Contains(d.LastError, "tag already exists on another commit")
				})
				// The next delivery (or the retry) takes the run up again.
				b.sendAll(m.push)
			} else {
				w.gh.AddTag(repo, "v0.1.1", other)
				b.sendAll(m.push, m.closed)
			}
			r := b.waitRun(m.sha)
			if r.State != store.RunReleased || r.Tag != "v0.1.2" {
				t.Fatalf("run %s %s; want released v0.1.2", r.State, r.Tag)
			}
			w.assertReleased(m, "v0.1.2")
			if sha, _ := w.gh.Ref(repo, "refs/tags/v0.1.1"); sha != other {
				t.Errorf("the foreign tag v0.1.1 moved to %s", sha)
			}
			want := 0
			if tc.race {
				want = 1 // the foreign one
			}
			if rels := w.releasesOf("v0.1.1"); len(rels) != want || (want == 1 && rels[0].TargetCommitish != other) {
				t.Errorf("releases of v0.1.1: %+v; want %d, the foreign one", rels, want)
			}
		})
	}
}

// beforeRelease runs a hook once, just before the bot's first release
// creation reaches GitHub.
type beforeRelease struct {
	mu   sync.Mutex
	hook func()
}

func (h *beforeRelease) set(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = f
}

func (h *beforeRelease) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/repos/"+repo+"/releases") {
		h.mu.Lock()
		f := h.hook
		h.hook = nil
		h.mu.Unlock()
		if f != nil {
			f()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestAPICallsPerMerge counts every request the fake served for one
// approved merge, both deliveries and the token fetch included.
func TestAPICallsPerMerge(t *testing.T) {
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	count := func(label string, m merged, bound int) map[string]int {
		t.Helper()
		w.gh.ResetRequests()
		b.sendAll(m.closed, m.push)
		b.waitRun(m.sha)
		b.waitProcessed(m.closed, m.push)
		reqs := w.gh.Requests()
		byPattern := map[string]int{}
		for _, r := range reqs {
			byPattern[r.Pattern]++
		}
		keys := make([]string, 0, len(byPattern))
		for k := range byPattern {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var lines []string
		for _, k := range keys {
			lines = append(lines, fmt.Sprintf("%3d  %s", byPattern[k], k))
		}
		t.Logf("%s: %d GitHub API calls\n%s", label, len(reqs), strings.Join(lines, "\n"))
		if len(reqs) > bound {
			t.Errorf("%s: %d API calls; want at most %d", label, len(reqs), bound)
		}
		if byPattern[releasesAPI] != 1 || byPattern["POST /repos/{owner}/{repo}/check-runs"] != 1 {
			t.Errorf("%s: want exactly one release creation and one check run creation", label)
		}
		return byPattern
	}
	// The first merge pays for the installation token and for asking
	// whether the commit before it, which no run explains, was a merge.
	// Each merge's sticky comment costs two: a look for the marker (the
	// database may have lost the comment's id) and the comment itself.
	first := w.approvedMerge("fix: first")
	if c := count("first merge (token fetch included)", first, 14); c[tokenAPI] != 1 {
		t.Errorf("%d token fetches; want 1", c[tokenAPI])
	}
	second := w.approvedMerge("feat: second")
	if c := count("a later merge", second, 12); c[tokenAPI] != 0 {
		t.Errorf("the later merge fetched a token again")
	}
}

// criticalPath is the longest chain of requests each of which started
// after the one before it had been answered, among reqs, ending with the
// first request whose pattern is last: the sequential round trips that led
// to it. Concurrent reads overlap and count once.
func criticalPath(reqs []githubtest.Request, last string) (int, error) {
	end := -1
	for i, r := range reqs {
		if r.Pattern == last {
			end = i
			break
		}
	}
	if end < 0 {
		return 0, fmt.Errorf("no %s among %d requests", last, len(reqs))
	}
	reqs = reqs[:end+1]
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Time.Before(reqs[j].Time) })
	depth := make([]int, len(reqs))
	best := 0
	for i, r := range reqs {
		depth[i] = 1
		for j := range i {
			if !reqs[j].Time.Add(reqs[j].Duration).After(r.Time) {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		if r.Pattern == last {
			best = depth[i]
		}
	}
	return best, nil
}

// roundTrips measures the sequential GitHub round trips from delivering d
// to the release creation, with 20 ms added to every request.
func roundTrips(tb testing.TB, w *world, b *bot, m merged, d delivery) int {
	tb.Helper()
	w.gh.SetLatency(20 * time.Millisecond)
	defer w.gh.SetLatency(0)
	w.gh.ResetRequests()
	b.sendAll(d)
	b.waitRun(m.sha)
	n, err := criticalPath(w.gh.Requests(), releasesAPI)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestCriticalPathRoundTrips: with the installation token cached, a merge
// reaches its release creation in at most 3 sequential round trips; the
// independent reads run concurrently.
func TestCriticalPathRoundTrips(t *testing.T) {
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	warm := w.approvedMerge("fix: warm-up")
	b.sendAll(warm.closed, warm.push)
	b.waitRun(warm.sha)

	m := w.approvedMerge("feat: measured")
	n := roundTrips(t, w, b, m, m.closed)
	t.Logf("pull_request delivery → release: %d sequential round trips", n)
	if n > 3 {
		t.Errorf("pull_request delivery → release creation took %d sequential round trips; want at most 3", n)
	}

	p := w.approvedMerge("fix: push first")
	n = roundTrips(t, w, b, p, p.push)
	t.Logf("push delivery → release: %d sequential round trips", n)
	if n > 3 {
		t.Errorf("push delivery → release creation took %d sequential round trips; want at most 3", n)
	}
}

// BenchmarkMergeToRelease merges approved pull requests one at a time and
// reports the sequential GitHub round trips from the pull_request delivery
// to the release creation, and the API calls per merge.
func BenchmarkMergeToRelease(b *testing.B) {
	w := newWorld(b, nil)
	bt := w.start(botOptions{})
	warm := w.approvedMerge("fix: warm-up")
	bt.sendAll(warm.closed, warm.push)
	bt.waitRun(warm.sha)
	var trips, calls int
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		m := w.approvedMerge(fmt.Sprintf("fix: change %d", i))
		b.StartTimer()
		trips += roundTrips(b, w, bt, m, m.closed)
		bt.sendAll(m.push)
		bt.waitProcessed(m.closed, m.push)
		calls += len(w.gh.Requests())
	}
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/merge")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/merge")
}

// TestGHES: the same happy path against a GitHub Enterprise Server base
// URL, token requests included.
func TestGHES(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	b := w.start(botOptions{baseURL: w.gh.GHESURL()})
	m := w.approvedMerge("feat: enterprise")
	b.sendAll(m.closed, m.push)
	r := b.waitRun(m.sha)
	if r.State != store.RunReleased {
		t.Fatalf("run %s; want released", r.State)
	}
	w.assertReleased(m, "v0.1.0")
	reqs := w.gh.Requests()
	if len(reqs) == 0 {
		t.Fatal("no requests")
	}
	for _, r := range reqs {
		if !strings.HasPrefix(r.Path, "/api/v3/") {
			t.Errorf("%s %s did not use the GHES base", r.Method, r.Path)
		}
	}
	if w.gh.Count(tokenAPI) != 1 {
		t.Errorf("%d token requests; want 1 through the GHES base", w.gh.Count(tokenAPI))
	}
	// The notes of a later release link the comparison on the server's
	// own web UI, not on github.com.
	next := w.approvedMerge("fix: enterprise too")
	b.sendAll(next.push, next.closed)
	b.waitRun(next.sha)
	w.assertReleased(next, "v0.1.1")
	wantLink := w.gh.WebURL() + repo + "/compare/v0.1.0...v0.1.1"
	if body := w.releasesOf("v0.1.1")[0].Body; !strings.Contains(body, wantLink) {
		t.Errorf("release notes lack the link %s:\n%s", wantLink, body)
	}
}

// TestPreview: shipbot/preview on the pull request head forecasts the
// merge, is edited in place by label and review events, and starts anew on
// a new head.
func TestPreview(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	b := w.start(botOptions{})
	n := w.pr("feat: preview me")
	head := w.gh.PullRequest(repo, n).HeadSHA
	event := func(action string) delivery {
		return w.deliveries.New("pull_request", w.gh.PullRequestEvent(owner, name, n, action))
	}
	step := func(d delivery) githubtest.CheckRun {
		t.Helper()
		b.sendAll(d)
		b.waitProcessed(d)
		return w.onlyCheck(head, preview)
	}

	cr := step(event("opened"))
	if cr.Status != "completed" || cr.Conclusion != "neutral" || !strings.Contains(cr.Summary, "1 approval from someone other than the author is required") {
		t.Errorf("preview before review: %s/%s %q\n%s", cr.Status, cr.Conclusion, cr.Title, cr.Summary)
	}
	id := w.gh.AddReview(repo, n, "bob", "APPROVED", "")
	cr2 := step(w.deliveries.New("pull_request_review", w.gh.ReviewEvent(owner, name, n, id, "submitted")))
	if cr2.ID != cr.ID || cr2.Updates < 1 {
		t.Errorf("the review made check run %d (updates %d); want check run %d edited", cr2.ID, cr2.Updates, cr.ID)
	}
	if cr2.Conclusion != "success" || cr2.Title != "A merge would release v0.1.0" {
		t.Errorf("preview after approval: %s %q; want success %q", cr2.Conclusion, cr2.Title, "A merge would release v0.1.0")
	}
	w.gh.AddLabels(repo, n, "semver:none")
	cr3 := step(event("labeled"))
	if cr3.ID != cr.ID || cr3.Updates <= cr2.Updates {
		t.Errorf("the label made check run %d (updates %d); want check run %d edited again", cr3.ID, cr3.Updates, cr.ID)
	}
	if cr3.Conclusion != "neutral" || !strings.Contains(cr3.Summary, "semver:none") {
		t.Errorf("preview with semver:none: %s %q", cr3.Conclusion, cr3.Summary)
	}

	newHead := w.gh.PushToPullRequest(repo, n, "more", map[string]string{"more.txt": "more\n"})
	b.sendAll(event("synchronize"))
	servicetest.Eventually(t, "a preview on the new head", func() bool {
		_, ok := w.gh.CheckRun(repo, newHead, preview)
		return ok
	})
	fresh := w.onlyCheck(newHead, preview)
	if fresh.ID == cr.ID {
		t.Error("the new head reuses the old head's check run")
	}
	w.onlyCheck(head, preview)
	if tags := w.gh.Tags(repo); len(tags) != 0 {
		t.Errorf("a preview tagged %+v", tags)
	}
}

// TestMergeWaitsForItsOtherDelivery: a merge known from one delivery waits
// briefly for the other, which carries what would otherwise cost a call
// (the pull request for a push, the parent commit for a pull_request), and
// a merge whose other delivery never comes is released after the wait.
func TestMergeWaitsForItsOtherDelivery(t *testing.T) {
	t.Parallel()
	const prForCommit = "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"
	const commit = "GET /repos/{owner}/{repo}/commits/{ref}"
	for _, tc := range []struct {
		name      string
		pushFirst bool
	}{{"pull_request first", false}, {"push first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			b := w.start(botOptions{pairWait: time.Minute})
			// An earlier merge the bot knows, so history needs no look.
			m0 := w.approvedMerge("fix: zero")
			b.sendAll(m0.closed, m0.push)
			b.waitRun(m0.sha)
			m := w.approvedMerge("fix: one")
			first, second := m.closed, m.push
			if tc.pushFirst {
				first, second = second, first
			}
			w.gh.ResetRequests()
			b.sendAll(first)
			b.waitProcessed(first)
			time.Sleep(200 * time.Millisecond) // the other delivery is a moment late
			if r, err := b.st.RunBySHA(context.Background(), repo, m.sha); err != nil || r.State != store.RunPending {
				t.Fatalf("run before its other delivery: %+v, %v; want it pending", r, err)
			}
			b.sendAll(second)
			r := b.waitRun(m.sha)
			if r.State != store.RunReleased || r.Tag != "v0.1.1" {
				t.Fatalf("run = %s %s; want released v0.1.1", r.State, r.Tag)
			}
			if n := w.gh.Count(prForCommit) + w.gh.Count(commit); n != 0 {
				t.Errorf("%d reads of what the other delivery carried; want none", n)
			}
		})
	}
	t.Run("the other delivery never comes", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, nil)
		b := w.start(botOptions{pairWait: 300 * time.Millisecond})
		m := w.approvedMerge("fix: lonely")
		b.sendAll(m.push)
		if r := b.waitRun(m.sha); r.State != store.RunReleased {
			t.Fatalf("run = %s; want released after the wait", r.State)
		}
	})
}
