package facts

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

var ctx = context.Background()

const routeFiles = "GET /repos/{owner}/{repo}/pulls/{pull_number}/files"

// filesWorld is a repository on the fake with one open pull request that
// adds n generated files, and a reader for it.
func filesWorld(t *testing.T, n int) (*githubtest.Server, *GitHub, PR, []string) {
	t.Helper()
	srv := githubtest.New(githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		for _, v := range srv.SchemaViolations() {
			t.Errorf("schema: %v", v)
		}
	})
	srv.AddStaticToken(staticToken)
	srv.AddRepo(testRepo, githubtest.RepoSpec{})
	files := map[string]string{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("gen/f%04d.go", i)
		files[name] = fmt.Sprintf("package gen // %d\n", i)
		names = append(names, name)
	}
	number := srv.OpenPullRequest(testRepo, githubtest.PullRequestSpec{Title: "generate", Author: "alice", Files: files})
	g, err := NewGitHub(newClient(t, srv, nil), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := g.PullRequest(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetRequests()
	// A fresh reader, so the pull request read above is not in its cache.
	g, err = NewGitHub(newClient(t, srv, nil), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	return srv, g, pr, names
}

func TestFiles250CostsThreeCalls(t *testing.T) {
	srv, g, pr, want := filesWorld(t, 250)
	if pr.ChangedFiles != 250 {
		t.Fatalf("PR.ChangedFiles = %d, want 250", pr.ChangedFiles)
	}
	got, complete, err := g.Files(ctx, pr.Number, pr.ChangedFiles)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" || !complete {
		t.Errorf("Files: complete %v, names (-want +got):\n%s", complete, diff)
	}
	if n, all := srv.Count(routeFiles), srv.Count("*"); n != 3 || all != 3 {
		t.Errorf("Files cost %d calls (%d in all), want 3", n, all)
	}
	for _, r := range srv.Requests() {
		if r.Query.Get("per_page") != "100" {
			t.Errorf("request %s?%s: want per_page=100", r.Path, r.Query.Encode())
		}
	}
	// Asked again, or without the count (short of the cap, the list is
	// whole by itself), it costs nothing more.
	if again, complete, err := g.Files(ctx, pr.Number, 0); err != nil || !complete || !slices.Equal(again, got) {
		t.Errorf("Files again = %d names, complete %v, %v", len(again), complete, err)
	}
	if n := srv.Count("*"); n != 3 {
		t.Errorf("asking again cost %d calls in all, want still 3", n)
	}
}

func TestFiles3500CostsThirtyCallsAndIsIncomplete(t *testing.T) {
	srv, g, pr, want := filesWorld(t, 3500)
	if pr.ChangedFiles != 3500 {
		t.Fatalf("PR.ChangedFiles = %d, want 3500", pr.ChangedFiles)
	}
	got, complete, err := g.Files(ctx, pr.Number, pr.ChangedFiles)
	if err != nil {
		t.Fatal(err)
	}
	if complete {
		t.Error("3,500 files read as complete")
	}
	if diff := cmp.Diff(want[:3000], got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if n, all := srv.Count(routeFiles), srv.Count("*"); n != 30 || all != 30 {
		t.Errorf("Files cost %d calls (%d in all), want 30", n, all)
	}

	// Without the count, a list at the cap needs the pull request's
	// changed_files: one more call, once.
	srv.ResetRequests()
	g2, err := NewGitHub(newClient(t, srv, nil), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, complete, err := g2.Files(ctx, pr.Number, 0); err != nil || complete {
			t.Errorf("Files without the count: complete %v, %v; want incomplete", complete, err)
		}
	}
	if n, all := srv.Count(routeFiles), srv.Count("*"); n != 30 || all != 31 {
		t.Errorf("Files without the count cost %d list calls, %d in all; want 30 and 31", n, all)
	}
}

// linkPast is a transport that makes the files list's page 30 point on to
// a page 31, as a GitHub that counted the files it leaves out in its Link
// header would: the reader stops at GitHub's cap all the same.
func linkPast(base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if err == nil && strings.HasSuffix(req.URL.Path, "/files") && req.URL.Query().Get("page") == "30" {
			next := *req.URL
			q := next.Query()
			q.Set("page", "31")
			next.RawQuery = q.Encode()
			resp.Header.Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`, next.String(), next.String()))
		}
		return resp, err
	})
}

func TestFilesStopAtGitHubsCap(t *testing.T) {
	srv, _, pr, want := filesWorld(t, 3500)
	g, err := NewGitHub(newClient(t, srv, linkPast), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	got, complete, err := g.Files(ctx, pr.Number, pr.ChangedFiles)
	if err != nil || complete {
		t.Fatalf("Files: complete %v, %v; want incomplete", complete, err)
	}
	if diff := cmp.Diff(want[:3000], got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if n := srv.Count(routeFiles); n != 30 {
		t.Errorf("Files cost %d calls; want 30: no page past the 3,000 files GitHub lists", n)
	}
}

func TestFiles3000IsComplete(t *testing.T) {
	srv, g, pr, _ := filesWorld(t, 3000)
	got, complete, err := g.Files(ctx, pr.Number, pr.ChangedFiles)
	if err != nil || !complete || len(got) != 3000 {
		t.Errorf("Files = %d names, complete %v, %v; want 3000, complete", len(got), complete, err)
	}
	if n := srv.Count("*"); n != 30 {
		t.Errorf("Files cost %d calls, want 30", n)
	}
}

func TestFilesRenameListsBothNames(t *testing.T) {
	srv := githubtest.New()
	t.Cleanup(srv.Close)
	srv.AddStaticToken(staticToken)
	srv.AddRepo(testRepo, githubtest.RepoSpec{Files: map[string]string{
		"old/name.go": "package old\n", "gone.go": "package gone\n", "kept.go": "package kept\n", "edit.go": "package edit\n",
	}})
	number := srv.OpenPullRequest(testRepo, githubtest.PullRequestSpec{
		Title: "move", Author: "alice",
		Files:  map[string]string{"edit.go": "package edit // changed\n", "add.go": "package add\n"},
		Remove: []string{"gone.go"},
		Rename: map[string]string{"old/name.go": "new/name.go"},
	})
	g, err := NewGitHub(newClient(t, srv, nil), testRepo)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := g.PullRequest(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	// A rename is one changed file, and one entry of the list.
	if pr.ChangedFiles != 4 {
		t.Errorf("PR.ChangedFiles = %d, want 4", pr.ChangedFiles)
	}
	got, complete, err := g.Files(ctx, number, pr.ChangedFiles)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"add.go", "edit.go", "gone.go", "new/name.go", "old/name.go"}
	if diff := cmp.Diff(want, got); diff != "" || !complete {
		t.Errorf("Files: complete %v, names (-want +got):\n%s", complete, diff)
	}
}

func TestFilesErrors(t *testing.T) {
	srv, g, pr, _ := filesWorld(t, 150)
	srv.FailNext(routeFiles, http.StatusBadGateway, 1)
	if files, _, err := g.Files(ctx, pr.Number, pr.ChangedFiles); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("files of #%d", pr.Number)) || files != nil {
		t.Errorf("Files with a failing page = %v, %v; want an error naming the pull request", files, err)
	}
	if _, _, err := g.Files(ctx, 99, 0); err == nil {
		t.Error("Files of a missing pull request succeeded")
	}
}

func TestPRChangedFilesFromEvent(t *testing.T) {
	w := newWorld(t)
	p, _, err := w.client.PullRequests.Get(ctx, "acme", "api", w.pr)
	if err != nil {
		t.Fatal(err)
	}
	if got := PRFromEvent(p).ChangedFiles; got != 1 {
		t.Errorf("PRFromEvent(...).ChangedFiles = %d, want 1", got)
	}
	// List answers leave it out: unknown, 0.
	prs, _, err := w.client.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "api", w.merge, nil)
	if err != nil || len(prs) != 1 {
		t.Fatalf("PRs of the merge: %v %v", prs, err)
	}
	if got := PRFromEvent(prs[0]).ChangedFiles; got != 0 {
		t.Errorf("ChangedFiles from a list = %d, want 0", got)
	}
}
