package githubtest

import (
	"fmt"
	"slices"
)

// MergeQueueBot is the login GitHub's merge queue acts as: it authors the
// group's merge commits, pushes the base branch and is the merged_by of
// the pull requests it lands.
const MergeQueueBot = "github-merge-queue[bot]"

// MergeGroup is a merge queue's group of pull requests, as
// EnqueueMergeGroup made it.
type MergeGroup struct {
	// Base is the branch the group lands on ("main"); BaseSHA its head
	// when the group was made, which the group is built on.
	Base    string
	BaseSHA string
	// HeadRef is the group's temporary branch as a full ref:
	// "refs/heads/gh-readonly-queue/<base>/pr-<last PR>-<BaseSHA>".
	HeadRef string
	// HeadSHA is the group's head commit: the last pull request's merge.
	HeadSHA string
	// PRs are the pull requests in queue order and Merges their merge
	// commits, one each, in the same order, each the first parent of the
	// next; Merges[len(Merges)-1] is HeadSHA.
	PRs    []int
	Merges []string
}

type mergeGroup struct {
	g MergeGroup
	// reason is why the group was destroyed (merged, invalidated,
	// dequeued); "" while it is queued.
	reason string
}

func (g MergeGroup) clone() MergeGroup {
	g.PRs, g.Merges = slices.Clone(g.PRs), slices.Clone(g.Merges)
	return g
}

// EnqueueMergeGroup puts pull requests prs (open, all based on base) into
// the merge queue of base as one group, as GitHub's merge queue does: it
// creates the temporary branch gh-readonly-queue/<base>/pr-<last>-<base
// sha> whose history is one merge commit per pull request, in order, on
// top of base's head, each authored by MergeQueueBot. The pull requests
// stay open until LandMergeGroup. The branch's creation is a push
// (PushEvent with before "000…"), and the group's merge_group
// checks_requested delivery is MergeGroupEvent.
func (s *Server) EnqueueMergeGroup(repo, base string, prs ...int) MergeGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	baseSHA, ok := r.refs["refs/heads/"+base]
	if !ok {
		panic(fmt.Sprintf("githubtest: EnqueueMergeGroup(%q): no branch %q", repo, base))
	}
	if len(prs) == 0 {
		panic("githubtest: EnqueueMergeGroup: no pull requests")
	}
	for _, n := range prs {
		_, p := s.mustPull(repo, n)
		if p.state != "open" || p.base != base {
			panic(fmt.Sprintf("githubtest: EnqueueMergeGroup(%q): #%d is %s against %s, want open against %s", repo, n, p.state, p.base, base))
		}
		for _, mg := range r.mergeGroups {
			if mg.reason == "" && slices.Contains(mg.g.PRs, n) {
				panic(fmt.Sprintf("githubtest: EnqueueMergeGroup(%q): #%d is queued already in %s", repo, n, mg.g.HeadRef))
			}
		}
	}
	branch := fmt.Sprintf("gh-readonly-queue/%s/pr-%d-%s", base, prs[len(prs)-1], baseSHA)
	if _, exists := r.refs["refs/heads/"+branch]; exists {
		panic(fmt.Sprintf("githubtest: EnqueueMergeGroup(%q): branch %s exists", repo, branch))
	}
	g := MergeGroup{Base: base, BaseSHA: baseSHA, HeadRef: "refs/heads/" + branch, PRs: slices.Clone(prs)}
	prev := baseSHA
	for _, n := range prs {
		p := r.pulls[n]
		changed, removed := p.changes(r)
		prev = s.addCommitLocked(r, branch, p.mergeMessage(r), MergeQueueBot, []string{prev, p.headSHA(r)}, changed, removed)
		g.Merges = append(g.Merges, prev)
	}
	g.HeadSHA = prev
	r.mergeGroups[g.HeadSHA] = &mergeGroup{g: g.clone()}
	return g
}

// LandMergeGroup merges group g the way GitHub's merge queue does once
// its checks pass: one fast-forward push of the base branch from the
// group's base to its head (before, after), every pull request closed as
// merged by bot (MergeQueueBot when "") with its own merge commit as
// merge_commit_sha (merges, in order), and the temporary branch deleted.
// PullRequestEvent(…, "closed") for each pull request and
// PushEvent(…, "refs/heads/"+g.Base, before, after) then say what GitHub
// would, and MergeGroupEvent(…, "destroyed") has reason "merged". It
// panics if the base branch moved since the group was made (GitHub would
// have invalidated the group: DequeueMergeGroup).
func (s *Server) LandMergeGroup(repo string, g MergeGroup, bot string) (before, after string, merges []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	mg := r.liveMergeGroup("LandMergeGroup", g)
	if bot == "" {
		bot = MergeQueueBot
	}
	baseRef := "refs/heads/" + mg.g.Base
	before = r.refs[baseRef]
	if before != mg.g.BaseSHA {
		panic(fmt.Sprintf("githubtest: LandMergeGroup(%q): %s moved from %s to %s since the group was made", repo, mg.g.Base, mg.g.BaseSHA, before))
	}
	now := s.now()
	r.refs[baseRef] = mg.g.HeadSHA
	r.pushed = now
	for i, n := range mg.g.PRs {
		merge := mg.g.Merges[i]
		r.pulls[n].markMerged(r, now, r.commits[merge].parents[0], merge, bot)
	}
	delete(r.refs, mg.g.HeadRef)
	mg.reason = "merged"
	return before, mg.g.HeadSHA, slices.Clone(mg.g.Merges)
}

// DequeueMergeGroup destroys group g without merging it, for reason
// "dequeued" (a pull request was removed from the queue, or its checks
// failed) or "invalidated" (an earlier entry left the queue): its
// temporary branch is deleted and its pull requests stay open.
func (s *Server) DequeueMergeGroup(repo string, g MergeGroup, reason string) {
	if reason != "dequeued" && reason != "invalidated" {
		panic(fmt.Sprintf("githubtest: DequeueMergeGroup: reason %q, want dequeued or invalidated", reason))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	mg := r.liveMergeGroup("DequeueMergeGroup", g)
	delete(r.refs, mg.g.HeadRef)
	mg.reason = reason
}

func (r *repository) liveMergeGroup(caller string, g MergeGroup) *mergeGroup {
	mg := r.mergeGroups[g.HeadSHA]
	if mg == nil {
		panic(fmt.Sprintf("githubtest: %s(%q): no merge group with head %s", caller, r.fullName(), g.HeadSHA))
	}
	if mg.reason != "" {
		panic(fmt.Sprintf("githubtest: %s(%q): merge group %s was destroyed (%s)", caller, r.fullName(), mg.g.HeadRef, mg.reason))
	}
	return mg
}

// MergeGroupEvent is the body of a merge_group webhook for group g:
// action "checks_requested" while the group is queued, "destroyed" once
// LandMergeGroup or DequeueMergeGroup ended it, with reason merged,
// dequeued or invalidated. The sender is MergeQueueBot.
func (s *Server) MergeGroupEvent(owner, repo string, g MergeGroup, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(owner + "/" + repo)
	mg := r.mergeGroups[g.HeadSHA]
	if mg == nil {
		panic(fmt.Sprintf("githubtest: MergeGroupEvent: no merge group with head %s in %s", g.HeadSHA, r.fullName()))
	}
	ev := example("merge_group.checks_requested")
	ev["action"] = action
	switch action {
	case "checks_requested":
		if mg.reason != "" {
			panic(fmt.Sprintf("githubtest: MergeGroupEvent(checks_requested): group %s was destroyed (%s)", mg.g.HeadRef, mg.reason))
		}
	case "destroyed":
		if mg.reason == "" {
			panic(fmt.Sprintf("githubtest: MergeGroupEvent(destroyed): group %s is still queued; land or dequeue it first", mg.g.HeadRef))
		}
		ev["reason"] = mg.reason
	default:
		panic(fmt.Sprintf("githubtest: MergeGroupEvent: action %q, want checks_requested or destroyed", action))
	}
	ev["merge_group"] = map[string]any{
		"head_sha":    mg.g.HeadSHA,
		"head_ref":    mg.g.HeadRef,
		"base_sha":    mg.g.BaseSHA,
		"base_ref":    "refs/heads/" + mg.g.Base,
		"head_commit": simpleCommitJSON(r.commits[mg.g.HeadSHA]),
	}
	return s.payload(ev, s.hookCall(), r, MergeQueueBot)
}

// simpleCommitJSON is GitHub's simple-commit, the head_commit of merge
// group and check suite payloads.
func simpleCommitJSON(cm *commit) map[string]any {
	name, email := gitUser(cm.author)
	who := map[string]any{"name": name, "email": email}
	return map[string]any{
		"id":        cm.sha,
		"tree_id":   treeSHA(cm.files),
		"message":   cm.message,
		"timestamp": timestamp(cm.time),
		"author":    who,
		"committer": who,
	}
}
