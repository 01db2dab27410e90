package githubtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

// mustPanic runs f and insists that it panics with a message containing
// want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil {
			t.Errorf("did not panic; want a panic mentioning %q", want)
		} else if !strings.Contains(fmt.Sprint(p), want) {
			t.Errorf("panic %q; want one mentioning %q", p, want)
		}
	}()
	f()
}

// validHook checks a payload against GitHub's webhook schema and returns
// it decoded the way go-github decodes a delivery.
func validHook(t *testing.T, event string, body []byte) any {
	t.Helper()
	if err := schemacheck.ValidateWebhook(event, body); err != nil {
		t.Errorf("%v", err)
	}
	return parse(t, event, body)
}

// queueRepo is a repository with three open pull requests against main:
// #1 and #2 fixes (#2 with two commits), #3 a feature.
func queueRepo(t *testing.T) (*Server, string) {
	t.Helper()
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	base := s.AddRepo(testRepo, RepoSpec{Files: map[string]string{"README.md": "# api\n"}})
	s.OpenPullRequest(testRepo, PullRequestSpec{Title: "fix: one", Author: "alice", Files: map[string]string{"one.txt": "1\n"}})
	two := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "fix: two", Author: "bob", Files: map[string]string{"two.txt": "2\n"}})
	s.PushToPullRequest(testRepo, two, "fix: two, again", map[string]string{"two.txt": "2 again\n"})
	s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: three", Author: "carol", Files: map[string]string{"three.txt": "3\n"}})
	return s, base
}

func TestMergeQueueGroup(t *testing.T) {
	s, base := queueRepo(t)
	g := s.EnqueueMergeGroup(testRepo, "main", 1, 2, 3)

	if want := "refs/heads/gh-readonly-queue/main/pr-3-" + base; g.HeadRef != want || g.Base != "main" || g.BaseSHA != base {
		t.Errorf("group %+v; want head_ref %s on %s", g, want, base)
	}
	if len(g.Merges) != 3 || g.HeadSHA != g.Merges[2] || !slices.Equal(g.PRs, []int{1, 2, 3}) {
		t.Fatalf("group merges %v head %s prs %v", g.Merges, g.HeadSHA, g.PRs)
	}
	if got := s.BranchSHA(testRepo, strings.TrimPrefix(g.HeadRef, "refs/heads/")); got != g.HeadSHA {
		t.Errorf("temporary branch at %s, want %s", got, g.HeadSHA)
	}
	if s.BranchSHA(testRepo, "main") != base {
		t.Errorf("main moved before the group landed")
	}
	gh := ghClient(t, s)
	parent := base
	for i, n := range g.PRs {
		cm, _, err := gh.Repositories.GetCommit(ctx, "acme", "api", g.Merges[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		pr := s.PullRequest(testRepo, n)
		if len(cm.Parents) != 2 || cm.Parents[0].GetSHA() != parent || cm.Parents[1].GetSHA() != pr.HeadSHA ||
			!strings.HasPrefix(cm.GetCommit().GetMessage(), fmt.Sprintf("Merge pull request #%d from acme/%s", n, pr.Head)) ||
			cm.GetAuthor().GetLogin() != MergeQueueBot || pr.State != "open" {
			t.Errorf("merge of #%d: parents %v message %q author %s; PR %s", n, cm.Parents, cm.GetCommit().GetMessage(), cm.GetAuthor().GetLogin(), pr.State)
		}
		parent = g.Merges[i]
	}
	for path, want := range map[string]string{"README.md": "# api\n", "one.txt": "1\n", "two.txt": "2 again\n", "three.txt": "3\n"} {
		if got, ok := s.FileAt(testRepo, g.HeadSHA, path); !ok || got != want {
			t.Errorf("group head %s = %q, want %q", path, got, want)
		}
	}

	ev := validHook(t, "merge_group", s.MergeGroupEvent("acme", "api", g, "checks_requested")).(*github.MergeGroupEvent)
	mg := ev.GetMergeGroup()
	if ev.GetAction() != "checks_requested" || mg.GetHeadSHA() != g.HeadSHA || mg.GetHeadRef() != g.HeadRef ||
		mg.GetBaseSHA() != base || mg.GetBaseRef() != "refs/heads/main" ||
		!strings.HasPrefix(mg.GetHeadCommit().GetMessage(), "Merge pull request #3 ") ||
		ev.GetRepo().GetFullName() != testRepo || ev.GetInstallation().GetID() != s.InstallationID() ||
		ev.GetSender().GetLogin() != MergeQueueBot || ev.GetSender().GetType() != "Bot" || ev.GetOrg() != nil {
		t.Errorf("merge_group event %+v sender %s", mg, ev.GetSender().GetLogin())
	}
	var raw struct {
		MergeGroup struct {
			HeadCommit struct {
				ID     string `json:"id"`
				TreeID string `json:"tree_id"`
			} `json:"head_commit"`
		} `json:"merge_group"`
	}
	if err := json.Unmarshal(s.MergeGroupEvent("acme", "api", g, "checks_requested"), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.MergeGroup.HeadCommit.ID != g.HeadSHA || raw.MergeGroup.HeadCommit.TreeID == "" {
		t.Errorf("merge_group.head_commit %+v", raw.MergeGroup.HeadCommit)
	}
	mustPanic(t, "still queued", func() { s.MergeGroupEvent("acme", "api", g, "destroyed") })

	// Creating the temporary branch is a push of the group's merge
	// commits: the pull requests' own commits are on their branches.
	created := validHook(t, "push", s.PushEvent("acme", "api", g.HeadRef, zeroSHA, g.HeadSHA)).(*github.PushEvent)
	var ids []string
	for _, c := range created.Commits {
		ids = append(ids, c.GetID())
	}
	if !created.GetCreated() || !slices.Equal(ids, g.Merges) || created.GetPusher().GetName() != "github-merge-queue" {
		t.Errorf("temporary branch push: created %v commits %v pusher %s", created.GetCreated(), ids, created.GetPusher().GetName())
	}

	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}

func TestMergeQueueLand(t *testing.T) {
	s, base := queueRepo(t)
	heads := map[int]string{}
	for _, n := range []int{1, 2, 3} {
		heads[n] = s.PullRequest(testRepo, n).HeadSHA
	}
	g := s.EnqueueMergeGroup(testRepo, "main", 1, 2, 3)
	before, after, merges := s.LandMergeGroup(testRepo, g, MergeQueueBot)
	if before != base || after != g.HeadSHA || !slices.Equal(merges, g.Merges) {
		t.Fatalf("LandMergeGroup = %s, %s, %v; want %s, %s, %v", before, after, merges, base, g.HeadSHA, g.Merges)
	}
	if s.BranchSHA(testRepo, "main") != after {
		t.Errorf("main not fast-forwarded to the group's head")
	}
	if _, ok := s.Ref(testRepo, g.HeadRef); ok {
		t.Errorf("temporary branch %s still exists", g.HeadRef)
	}

	// Each pull request: merged by the queue's bot, with its own merge.
	for i, n := range g.PRs {
		pr := s.PullRequest(testRepo, n)
		if !pr.Merged || pr.State != "closed" || pr.MergeCommitSHA != merges[i] || pr.MergedBy != MergeQueueBot || pr.HeadSHA != heads[n] {
			t.Errorf("#%d after landing: %+v", n, pr)
		}
		ev := validHook(t, "pull_request", s.PullRequestEvent("acme", "api", n, "closed")).(*github.PullRequestEvent)
		p := ev.GetPullRequest()
		if !p.GetMerged() || p.GetMergeCommitSHA() != merges[i] || p.GetMergedBy().GetLogin() != MergeQueueBot ||
			p.GetMergedBy().GetType() != "Bot" || ev.GetSender().GetLogin() != MergeQueueBot || p.GetBase().GetRef() != "main" {
			t.Errorf("closed event of #%d: merged %v sha %s by %s (%s)", n, p.GetMerged(), p.GetMergeCommitSHA(), p.GetMergedBy().GetLogin(), p.GetMergedBy().GetType())
		}
	}

	// One push spans the whole group: every commit of before...after,
	// oldest first, each pull request's commits before its merge.
	push := validHook(t, "push", s.PushEvent("acme", "api", "refs/heads/main", before, after)).(*github.PushEvent)
	var got []string
	for _, c := range push.Commits {
		got = append(got, c.GetID())
		if c.GetDistinct() {
			t.Errorf("commit %s is distinct: every one was pushed to another branch first", c.GetID())
		}
	}
	two := s.PullRequest(testRepo, 2).HeadSHA
	gh := ghClient(t, s)
	twoFirst, _, err := gh.Repositories.GetCommit(ctx, "acme", "api", two, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{heads[1], merges[0], twoFirst.Parents[0].GetSHA(), two, merges[1], heads[3], merges[2]}
	if !slices.Equal(got, want) {
		t.Errorf("push commits\n got %v\nwant %v", got, want)
	}
	if push.GetHeadCommit().GetID() != after || push.GetBefore() != before || push.GetAfter() != after ||
		push.GetForced() || push.GetCreated() || push.GetPusher().GetName() != "github-merge-queue" ||
		push.GetSender().GetLogin() != MergeQueueBot {
		t.Errorf("push head %s forced %v created %v pusher %s sender %s", push.GetHeadCommit().GetID(), push.GetForced(),
			push.GetCreated(), push.GetPusher().GetName(), push.GetSender().GetLogin())
	}

	// A client listing the push's commits through the compare, a page
	// at a time, finds the three first-parent merges, and each merge's
	// pull request through the commit's pulls.
	var listed []*github.RepositoryCommit
	opts := &github.ListOptions{PerPage: 3}
	for {
		cmp, resp, err := gh.Repositories.CompareCommits(ctx, "acme", "api", before, after, opts)
		if err != nil {
			t.Fatal(err)
		}
		if cmp.GetTotalCommits() != len(want) || cmp.GetStatus() != "ahead" || cmp.GetAheadBy() != len(want) {
			t.Errorf("compare: total %d status %s ahead %d", cmp.GetTotalCommits(), cmp.GetStatus(), cmp.GetAheadBy())
		}
		listed = append(listed, cmp.Commits...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	first := map[string]string{}
	for _, c := range listed {
		first[c.GetSHA()] = c.Parents[0].GetSHA()
	}
	var chain []string
	for sha := after; sha != before; sha = first[sha] {
		chain = append([]string{sha}, chain...)
	}
	if !slices.Equal(chain, merges) {
		t.Errorf("first-parent chain from the compare %v, want %v", chain, merges)
	}
	for i, m := range merges {
		prs, _, err := gh.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "api", m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(prs) != 1 || prs[0].GetNumber() != g.PRs[i] || prs[0].GetMergeCommitSHA() != m {
			t.Errorf("pulls of merge %s: %v, want #%d", m, prs, g.PRs[i])
		}
	}

	// destroyed says merged; go-github has no field for the reason.
	destroyed := s.MergeGroupEvent("acme", "api", g, "destroyed")
	ev := validHook(t, "merge_group", destroyed).(*github.MergeGroupEvent)
	var reason struct{ Reason string }
	if err := json.Unmarshal(destroyed, &reason); err != nil {
		t.Fatal(err)
	}
	if ev.GetAction() != "destroyed" || reason.Reason != "merged" || ev.GetMergeGroup().GetHeadSHA() != g.HeadSHA {
		t.Errorf("destroyed: action %s reason %q", ev.GetAction(), reason.Reason)
	}
	mustPanic(t, "destroyed (merged)", func() { s.LandMergeGroup(testRepo, g, "") })
	mustPanic(t, "destroyed (merged)", func() { s.MergeGroupEvent("acme", "api", g, "checks_requested") })
	mustPanic(t, "want open", func() { s.EnqueueMergeGroup(testRepo, "main", 1) })

	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}

func TestMergeQueueDequeue(t *testing.T) {
	s, base := queueRepo(t)
	g := s.EnqueueMergeGroup(testRepo, "main", 1, 2)
	mustPanic(t, "queued already", func() { s.EnqueueMergeGroup(testRepo, "main", 2) })
	mustPanic(t, "want dequeued or invalidated", func() { s.DequeueMergeGroup(testRepo, g, "merged") })
	s.DequeueMergeGroup(testRepo, g, "dequeued")
	var reason struct{ Reason string }
	if err := json.Unmarshal(s.MergeGroupEvent("acme", "api", g, "destroyed"), &reason); err != nil || reason.Reason != "dequeued" {
		t.Errorf("destroyed reason %q (%v), want dequeued", reason.Reason, err)
	}
	if _, ok := s.Ref(testRepo, g.HeadRef); ok || s.PullRequest(testRepo, 1).State != "open" || s.BranchSHA(testRepo, "main") != base {
		t.Errorf("a dequeued group must leave its branch deleted, its pull requests open and main alone")
	}

	// The pull requests can be queued again; a group whose base moved
	// cannot land.
	g2 := s.EnqueueMergeGroup(testRepo, "main", 2)
	if g2.HeadRef != "refs/heads/gh-readonly-queue/main/pr-2-"+base {
		t.Errorf("second group %s", g2.HeadRef)
	}
	s.Merge(testRepo, 3, "carol")
	mustPanic(t, "moved", func() { s.LandMergeGroup(testRepo, g2, "") })
	s.DequeueMergeGroup(testRepo, g2, "invalidated")
	if err := json.Unmarshal(s.MergeGroupEvent("acme", "api", g2, "destroyed"), &reason); err != nil || reason.Reason != "invalidated" {
		t.Errorf("destroyed reason %q (%v), want invalidated", reason.Reason, err)
	}
	g3 := s.EnqueueMergeGroup(testRepo, "main", 2, 1)
	if g3.BaseSHA != s.BranchSHA(testRepo, "main") || !strings.Contains(g3.HeadRef, "/pr-1-") {
		t.Errorf("third group %+v", g3)
	}
	before, after, _ := s.LandMergeGroup(testRepo, g3, "")
	if s.PullRequest(testRepo, 2).MergedBy != MergeQueueBot || before == after {
		t.Errorf("landing with the default bot: %+v", s.PullRequest(testRepo, 2))
	}
}
