package githubtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

const routePullFiles = "GET /repos/{owner}/{repo}/pulls/{pull_number}/files"

func TestPullRequestFiles(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	s.AddRepo(testRepo, RepoSpec{Files: map[string]string{
		"README.md":    "# api\n",
		"main.go":      "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
		"old/name.go":  "package old\n",
		"docs/gone.md": "one\ntwo\n",
	}})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{
		Title: "refactor", Author: "alice",
		Files: map[string]string{
			"main.go":   "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n",
			"added.txt": "a\nb\nc",
		},
		Remove: []string{"docs/gone.md"},
		Rename: map[string]string{"old/name.go": "new/name.go"},
	})
	p := s.PullRequest(testRepo, pr)
	fork := s.BranchSHA(testRepo, "main")
	gh := ghClient(t, s)

	files, resp, err := gh.PullRequests.ListFiles(ctx, "acme", "api", pr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.NextPage != 0 {
		t.Errorf("one page of files has a next page %d", resp.NextPage)
	}
	web, api := s.WebURL()+"acme/api/", s.URL()+"repos/acme/api/"
	want := []*github.CommitFile{
		{
			Filename: github.String("added.txt"), Status: github.String("added"), SHA: github.String(blobSHA("a\nb\nc")),
			Additions: github.Int(3), Deletions: github.Int(0), Changes: github.Int(3),
			BlobURL:     github.String(web + "blob/" + p.HeadSHA + "/added.txt"),
			RawURL:      github.String(web + "raw/" + p.HeadSHA + "/added.txt"),
			ContentsURL: github.String(api + "contents/added.txt?ref=" + p.HeadSHA),
			Patch:       github.String("@@ -0,0 +1,3 @@\n+a\n+b\n+c\n\\ No newline at end of file"),
		},
		{
			Filename: github.String("docs/gone.md"), Status: github.String("removed"), SHA: github.String(blobSHA("one\ntwo\n")),
			Additions: github.Int(0), Deletions: github.Int(2), Changes: github.Int(2),
			BlobURL:     github.String(web + "blob/" + fork + "/docs/gone.md"),
			RawURL:      github.String(web + "raw/" + fork + "/docs/gone.md"),
			ContentsURL: github.String(api + "contents/docs/gone.md?ref=" + fork),
			Patch:       github.String("@@ -1,2 +0,0 @@\n-one\n-two"),
		},
		{
			Filename: github.String("main.go"), Status: github.String("modified"),
			SHA:       github.String(blobSHA("package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n")),
			Additions: github.Int(1), Deletions: github.Int(1), Changes: github.Int(2),
			BlobURL:     github.String(web + "blob/" + p.HeadSHA + "/main.go"),
			RawURL:      github.String(web + "raw/" + p.HeadSHA + "/main.go"),
			ContentsURL: github.String(api + "contents/main.go?ref=" + p.HeadSHA),
			Patch:       github.String("@@ -3,5 +3,5 @@\n import \"fmt\"\n \n func main() {\n-\tfmt.Println(\"hi\")\n+\tfmt.Println(\"hello\")\n }"),
		},
		{
			Filename: github.String("new/name.go"), PreviousFilename: github.String("old/name.go"), Status: github.String("renamed"),
			SHA: github.String(blobSHA("package old\n")), Additions: github.Int(0), Deletions: github.Int(0), Changes: github.Int(0),
			BlobURL:     github.String(web + "blob/" + p.HeadSHA + "/new/name.go"),
			RawURL:      github.String(web + "raw/" + p.HeadSHA + "/new/name.go"),
			ContentsURL: github.String(api + "contents/new/name.go?ref=" + p.HeadSHA),
		},
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	full, _, err := gh.PullRequests.Get(ctx, "acme", "api", pr)
	if err != nil {
		t.Fatal(err)
	}
	if full.GetChangedFiles() != 4 || full.GetAdditions() != 4 || full.GetDeletions() != 3 {
		t.Errorf("PR changed_files %d additions %d deletions %d; want 4, 4, 3", full.GetChangedFiles(), full.GetAdditions(), full.GetDeletions())
	}

	// A merge carries the removal and the rename to the base branch.
	merge := s.Merge(testRepo, pr, "alice")
	for path, want := range map[string]bool{"docs/gone.md": false, "old/name.go": false, "new/name.go": true, "added.txt": true} {
		if _, ok := s.FileAt(testRepo, merge, path); ok != want {
			t.Errorf("merge commit has %s: %v, want %v", path, ok, want)
		}
	}
	// A merged pull request still lists what it changed.
	if after, _, err := gh.PullRequests.ListFiles(ctx, "acme", "api", pr, nil); err != nil || !cmp.Equal(after, files) {
		t.Errorf("files after the merge differ: %v", cmp.Diff(files, after))
	}

	// The commit endpoint lists a commit's files the same way.
	cm, _, err := gh.Repositories.GetCommit(ctx, "acme", "api", p.HeadSHA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files, cm.Files); diff != "" {
		t.Errorf("head commit's files differ from the PR's (-pr +commit):\n%s", diff)
	}

	c := tokenClient(t, s)
	c.call("GET", "repos/acme/api/pulls/99/files", nil, 404)
	if got := s.Count(routePullFiles); got != 3 {
		t.Errorf("Count(%s) = %d, want 3", routePullFiles, got)
	}
	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}

func TestPullRequestFilesPagination(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	s.AddRepo(testRepo, RepoSpec{})
	many := map[string]string{}
	for i := range 3500 {
		many[fmt.Sprintf("gen/f%04d.txt", i)] = fmt.Sprintf("%d\n", i)
	}
	big := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "generate", Files: many})
	c := tokenClient(t, s)
	page := func(query string) ([]any, string) {
		t.Helper()
		status, h, body := c.do("GET", fmt.Sprintf("repos/acme/api/pulls/%d/files%s", big, query), nil)
		if status != 200 {
			t.Fatalf("files%s = %d: %s", query, status, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return arr(t, v), h.Get("Link")
	}
	name := func(v any) string { return obj(t, v)["filename"].(string) }

	// Default 30 a page; the cap of 3,000 makes 100 pages.
	got, link := page("")
	if len(got) != 30 || name(got[0]) != "gen/f0000.txt" || name(got[29]) != "gen/f0029.txt" {
		t.Errorf("first default page: %d files", len(got))
	}
	for _, want := range []string{`page=2>; rel="next"`, `page=100>; rel="last"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	// per_page is capped at 100.
	if got, link := page("?per_page=500"); len(got) != 100 || !strings.Contains(link, `page=30&per_page=100>; rel="last"`) {
		t.Errorf("per_page=500: %d files, Link %q", len(got), link)
	}
	// The last listed page ends at file 3,000 with no next; past it, empty.
	got, link = page("?per_page=100&page=30")
	if len(got) != 100 || name(got[99]) != "gen/f2999.txt" || strings.Contains(link, `rel="next"`) {
		t.Errorf("page 30: %d files, last %q, Link %q", len(got), name(got[len(got)-1]), link)
	}
	if got, _ := page("?per_page=100&page=31"); len(got) != 0 {
		t.Errorf("page 31: %d files, want none", len(got))
	}
	// changed_files is the true count, past the cap.
	pr := obj(t, c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d", big), nil, 200))
	if n := pr["changed_files"]; n != float64(3500) {
		t.Errorf("changed_files = %v, want 3500", n)
	}
	// go-github, following NextPage, collects 3,000 in 30 calls.
	s.ResetRequests()
	gh := ghClient(t, s)
	opts := &github.ListOptions{PerPage: 100}
	var all []*github.CommitFile
	for {
		fs, resp, err := gh.PullRequests.ListFiles(ctx, "acme", "api", big, opts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, fs...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(all) != maxPullFiles || s.Count(routePullFiles) != 30 {
		t.Errorf("collected %d files in %d calls; want 3000 in 30", len(all), s.Count(routePullFiles))
	}
	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}

func TestUnifiedPatch(t *testing.T) {
	for _, tc := range []struct {
		old, new, patch string
		add, del        int
	}{
		{"", "a\n", "@@ -0,0 +1 @@\n+a", 1, 0},
		{"a\n", "", "@@ -1 +0,0 @@\n-a", 0, 1},
		{"a\n", "a\n", "", 0, 0},
		{"a\nb", "a\nb\n", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b", 1, 1},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nX\n6\n7\n8\n9\n", "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+X\n 6\n 7\n 8", 1, 1},
		{"1\n2\n", "1\n2\n3\n", "@@ -1,2 +1,3 @@\n 1\n 2\n+3", 1, 0},
		{"x\n1\n", "1\n", "@@ -1,2 +1 @@\n-x\n 1", 0, 1},
	} {
		patch, add, del := unifiedPatch(tc.old, tc.new)
		if patch != tc.patch || add != tc.add || del != tc.del {
			t.Errorf("unifiedPatch(%q, %q) = %q, +%d -%d; want %q, +%d -%d", tc.old, tc.new, patch, add, del, tc.patch, tc.add, tc.del)
		}
	}
}

func TestDiffTreesRenames(t *testing.T) {
	a := map[string]string{"a": "same\n", "b": "same\n", "empty": "", "keep": "k\n"}
	b := map[string]string{"c": "same\n", "empty2": "", "keep": "k\n"}
	var got []string
	for _, d := range diffTrees(a, b) {
		got = append(got, d.status+" "+d.path+" "+d.previous)
	}
	// One of two identical files is renamed (the first in path order), the
	// other removed; an empty file is never taken for a rename.
	want := []string{"removed b ", "renamed c a", "removed empty ", "added empty2 "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffTrees (-want +got):\n%s", diff)
	}
}
