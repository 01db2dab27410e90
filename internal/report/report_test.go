package report_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
	"github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

type rig struct {
	gh     *githubtest.Server
	client *gh.Client
	store  *store.SQLite
	pr     int
	sha    string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := githubtest.New(githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	t.Cleanup(srv.Close)
	srv.AddRepo("acme/api", githubtest.RepoSpec{})
	pr := srv.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: "feat: x", Author: "alice"})
	apps, err := ghclient.NewApps(ghclient.Options{BaseURL: srv.URL(), AppID: srv.AppID(), PrivateKey: srv.PrivateKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	client, err := apps.Installation(srv.InstallationID())
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	t.Cleanup(func() {
		if v := srv.SchemaViolations(); len(v) > 0 {
			t.Errorf("responses off GitHub's schema: %v", v)
		}
	})
	return &rig{gh: srv, client: client, store: st, pr: pr, sha: srv.PullRequest("acme/api", pr).HeadSHA}
}

func TestStickyCommentIsEditedNeverDuplicated(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := &report.Comments{Store: r.store}
	// Racing first writes must still make one comment.
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Upsert(ctx, r.client, "acme/api", r.pr, strings.Repeat("x", i+1), false); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := c.Upsert(ctx, r.client, "acme/api", r.pr, "final", false); err != nil {
		t.Fatal(err)
	}
	comments := r.gh.Comments("acme/api", r.pr)
	if len(comments) != 1 {
		t.Fatalf("%d comments; want exactly 1", len(comments))
	}
	if got := comments[0]; !strings.HasPrefix(got.Body, report.Marker) || !strings.HasSuffix(got.Body, "final") || got.Edits != 5 {
		t.Fatalf("comment = %q after %d edits; want the marker, the last body, 5 edits", got.Body, got.Edits)
	}
}

func TestStickyCommentFoundByMarkerWhenTheDatabaseForgot(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := (&report.Comments{Store: r.store}).Upsert(ctx, r.client, "acme/api", r.pr, "one", false); err != nil {
		t.Fatal(err)
	}
	// A person quoting the marker is not the bot's comment.
	r.gh.AddComment("acme/api", r.pr, "mallory", report.Marker+"\nfake")
	fresh := openStore(t)
	if err := (&report.Comments{Store: fresh}).Upsert(ctx, r.client, "acme/api", r.pr, "two", false); err != nil {
		t.Fatal(err)
	}
	var bots int
	for _, c := range r.gh.Comments("acme/api", r.pr) {
		if c.User != "mallory" {
			bots++
			if !strings.HasSuffix(c.Body, "two") {
				t.Errorf("bot comment = %q; want it edited to two", c.Body)
			}
		}
	}
	if bots != 1 {
		t.Fatalf("%d bot comments; want 1", bots)
	}
}

// openStore opens a copy of a database migrated once per process.
func openStore(t *testing.T) *store.SQLite {
	st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { st.Close() })
	return st
}

func TestCheckRunEditedInPlace(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := &report.Checks{Store: r.store}
	for _, title := range []string{"first", "second", "third"} {
		if _, err := c.Upsert(ctx, r.client, "acme/api", r.sha, report.CheckOutput{
			Name: report.PreviewCheck, Status: report.StatusCompleted, Conclusion: report.Neutral, Title: title, Summary: "s",
		}); err != nil {
			t.Fatal(err)
		}
	}
	runs := r.gh.CheckRuns("acme/api", r.sha)
	if len(runs) != 1 || runs[0].Title != "third" || runs[0].Updates != 2 {
		t.Fatalf("check runs = %+v; want one, edited twice, titled third", runs)
	}
}

func TestCheckTextIsClippedToGitHubsLimit(t *testing.T) {
	r := newRig(t)
	c := &report.Checks{Store: r.store}
	long := strings.Repeat("é", 40000) // 80000 bytes
	if _, err := c.Upsert(context.Background(), r.client, "acme/api", r.sha, report.CheckOutput{
		Name: report.RolloutCheck, Status: report.StatusInProgress, Title: "t", Summary: long,
	}); err != nil {
		t.Fatal(err)
	}
	cr, _ := r.gh.CheckRun("acme/api", r.sha, report.RolloutCheck)
	if len(cr.Summary) > 65535 || !strings.HasSuffix(cr.Summary, "(truncated)") {
		t.Fatalf("summary of %d bytes; want at most 65535 ending in (truncated)", len(cr.Summary))
	}
}

// A comment body at the check-run limit still fits GitHub's comment limit
// once the marker is added: the whole body is what is cut, never the marker.
func TestStickyCommentIsClippedToGitHubsLimit(t *testing.T) {
	r := newRig(t)
	long := strings.Repeat("x", 65530) + strings.Repeat("배", 100)
	if err := (&report.Comments{Store: r.store}).Upsert(context.Background(), r.client, "acme/api", r.pr, long, true); err != nil {
		t.Fatal(err)
	}
	cs := r.gh.Comments("acme/api", r.pr)
	if len(cs) != 1 {
		t.Fatalf("%d comments; want 1", len(cs))
	}
	body := cs[0].Body
	if len(body) > 65536 || !utf8.ValidString(body) || !strings.HasPrefix(body, report.Marker) || !strings.HasSuffix(body, "(truncated)") {
		t.Fatalf("comment of %d bytes; want at most 65536, starting with the marker, ending in (truncated)", len(body))
	}
}

// A pull request merged without a single comment has no sticky comment to
// look for: the first write posts at once, saving the lookup's call.
func TestStickyCommentSkipsTheLookupOnACommentlessPR(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.gh.ResetRequests()
	if err := (&report.Comments{Store: r.store}).Upsert(ctx, r.client, "acme/api", r.pr, "one", true); err != nil {
		t.Fatal(err)
	}
	if n := r.gh.Count("GET /repos/{owner}/{repo}/issues/{issue_number}/comments"); n != 0 {
		t.Errorf("%d comment lookups; want none", n)
	}
	if n := len(r.gh.Comments("acme/api", r.pr)); n != 1 {
		t.Errorf("%d comments; want 1", n)
	}
}

// A creation cut short by a crash (the intent saved, the id not) is looked
// up before anything is posted, even on a PR that had no comments when it
// was merged: the comment may exist.
func TestStickyCommentAfterACrashBetweenCreateAndSave(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := (&report.Comments{Store: r.store}).Upsert(ctx, r.client, "acme/api", r.pr, "one", true); err != nil {
		t.Fatal(err)
	}
	// The crash: the database still says "creating".
	if err := r.store.SaveCommentID(ctx, "acme/api", r.pr, 0); err != nil {
		t.Fatal(err)
	}
	if err := (&report.Comments{Store: r.store}).Upsert(ctx, r.client, "acme/api", r.pr, "two", true); err != nil {
		t.Fatal(err)
	}
	cs := r.gh.Comments("acme/api", r.pr)
	if len(cs) != 1 || !strings.HasSuffix(cs[0].Body, "two") {
		t.Fatalf("comments = %+v; want the one comment, edited to two", cs)
	}
}
