package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

func TestCompareCommits(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	base := s.AddRepo(testRepo, RepoSpec{})
	s.AddBranch(testRepo, "feature/long", base)
	var want []string
	for i := range 260 {
		want = append(want, s.AddCommit(testRepo, "feature/long", fmt.Sprintf("step %d", i), map[string]string{fmt.Sprintf("f%03d.txt", i): "x\n"}))
	}
	head := want[len(want)-1]
	gh := ghClient(t, s)

	// Without paging parameters: the newest 250, oldest first, and the
	// files.
	cmp, resp, err := gh.Repositories.CompareCommits(ctx, "acme", "api", "main", "feature/long", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.GetTotalCommits() != 260 || len(cmp.Commits) != 250 || cmp.Commits[249].GetSHA() != head || cmp.Commits[0].GetSHA() != want[10] ||
		cmp.GetStatus() != "ahead" || cmp.GetAheadBy() != 260 || cmp.GetBehindBy() != 0 || resp.NextPage != 0 ||
		cmp.GetBaseCommit().GetSHA() != base || cmp.GetMergeBaseCommit().GetSHA() != base || len(cmp.Files) != 260 {
		t.Errorf("compare: total %d listed %d status %s base %s files %d next %d", cmp.GetTotalCommits(), len(cmp.Commits), cmp.GetStatus(),
			cmp.GetBaseCommit().GetSHA(), len(cmp.Files), resp.NextPage)
	}
	if cmp.Commits[0].Files != nil {
		t.Errorf("listed commits carry no files")
	}

	// Paged: GitHub's pages, with Link headers, files on the first only.
	var got []string
	opts := &github.ListOptions{PerPage: 100}
	pages := 0
	for {
		cmp, resp, err := gh.Repositories.CompareCommits(ctx, "acme", "api", base, head, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if (pages == 1) != (len(cmp.Files) > 0) {
			t.Errorf("page %d has %d files", pages, len(cmp.Files))
		}
		for _, c := range cmp.Commits {
			got = append(got, c.GetSHA())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("paged compare: %d pages, %d commits (want 3 pages of all 260 in order)", pages, len(got))
	}

	// Behind, diverged, identical.
	s.AddCommit(testRepo, "main", "on main", map[string]string{"main.txt": "m\n"})
	for _, tc := range []struct {
		basehead          string
		status            string
		ahead, behind     int
		mergeBase, listed string
	}{
		{"feature/long...main", "diverged", 1, 260, base, s.BranchSHA(testRepo, "main")},
		{head + "..." + want[0], "behind", 0, 259, want[0], ""},
		{"main...main", "identical", 0, 0, s.BranchSHA(testRepo, "main"), ""},
		{"acme:" + base + "...acme:" + want[0], "ahead", 1, 0, base, want[0]},
	} {
		c := tokenClient(t, s)
		m := obj(t, c.call("GET", "repos/acme/api/compare/"+tc.basehead, nil, 200))
		commits := arr(t, m["commits"])
		if m["status"] != tc.status || int(m["ahead_by"].(float64)) != tc.ahead || int(m["behind_by"].(float64)) != tc.behind ||
			obj(t, m["merge_base_commit"])["sha"] != tc.mergeBase || len(commits) != tc.ahead ||
			(tc.listed != "" && obj(t, commits[len(commits)-1])["sha"] != tc.listed) {
			t.Errorf("compare %s: status %v ahead %v behind %v", tc.basehead, m["status"], m["ahead_by"], m["behind_by"])
		}
	}
	c := tokenClient(t, s)
	for _, bad := range []string{"main...nope", "nope...main", "main..main", "other:main...main"} {
		if st, _, _ := c.do("GET", "repos/acme/api/compare/"+bad, nil); st != http.StatusNotFound {
			t.Errorf("compare %s = %d, want 404", bad, st)
		}
	}
	// A branch name with a slash, escaped as go-github sends it.
	if st, _, body := c.do("GET", "repos/acme/api/compare/main...feature%2Flong?per_page=1", nil); st != 200 || !strings.Contains(string(body), `"ahead_by":260`) {
		t.Errorf("escaped branch name: %d %.200s", st, body)
	}
	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}
