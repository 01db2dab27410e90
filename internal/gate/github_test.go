package gate

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-github/v60/github"
)

func ts(min int) *github.Timestamp { return &github.Timestamp{Time: at(min)} }

func TestReviewsFrom(t *testing.T) {
	in := []*github.PullRequestReview{
		{ID: github.Int64(5), User: &github.User{Login: github.String("bob")}, State: github.String("APPROVED"), CommitID: github.String(head), SubmittedAt: ts(3), AuthorAssociation: github.String("MEMBER")},
		nil,
		{ID: github.Int64(6), User: &github.User{Login: github.String("carol")}, State: github.String("commented")},
		{ID: github.Int64(7), State: github.String("APPROVED")}, // deleted user
	}
	want := []Review{
		{User: "bob", State: StateApproved, CommitID: head, SubmittedAt: at(3), ID: 5, Association: "MEMBER"},
		{User: "carol", State: StateCommented, ID: 6},
		{State: StateApproved, ID: 7},
	}
	if diff := cmp.Diff(want, ReviewsFrom(in)); diff != "" {
		t.Errorf("ReviewsFrom mismatch (-want +got):\n%s", diff)
	}
}

func TestChecksFrom(t *testing.T) {
	status := func(id int64, ctx, state string, min int) *github.RepoStatus {
		return &github.RepoStatus{ID: github.Int64(id), Context: github.String(ctx), State: github.String(state), Description: github.String(state + " desc"), CreatedAt: ts(min)}
	}
	run := func(id int64, name, status, conclusion string, started *github.Timestamp) *github.CheckRun {
		r := &github.CheckRun{ID: github.Int64(id), Name: github.String(name), Status: github.String(status), StartedAt: started}
		if conclusion != "" {
			r.Conclusion = github.String(conclusion)
		}
		return r
	}

	tests := []struct {
		name     string
		statuses []*github.RepoStatus
		runs     []*github.CheckRun
		want     []Check
	}{
		{
			name: "status states",
			statuses: []*github.RepoStatus{
				status(1, "a", "success", 1), status(2, "b", "pending", 1),
				status(3, "c", "error", 1), status(4, "d", "failure", 1),
			},
			want: []Check{
				{Name: "a", Source: SourceStatus, State: CheckSuccess, Detail: "success desc", At: at(1), ID: 1},
				{Name: "b", Source: SourceStatus, State: CheckPending, Detail: "pending desc", At: at(1), ID: 2},
				{Name: "c", Source: SourceStatus, State: CheckFailure, Detail: "error desc", At: at(1), ID: 3},
				{Name: "d", Source: SourceStatus, State: CheckFailure, Detail: "failure desc", At: at(1), ID: 4},
			},
		},
		{
			name: "newest status per context wins, whatever the list order",
			statuses: []*github.RepoStatus{
				status(1, "ci", "pending", 1), status(3, "ci", "success", 3), status(2, "ci", "failure", 2),
			},
			want: []Check{{Name: "ci", Source: SourceStatus, State: CheckSuccess, Detail: "success desc", At: at(3), ID: 3}},
		},
		{
			name: "check run states",
			runs: []*github.CheckRun{
				run(1, "queued", "queued", "", nil),
				run(2, "running", "in_progress", "", ts(1)),
				run(3, "ok", "completed", "success", ts(1)),
				run(4, "neutral", "completed", "neutral", ts(1)),
				run(5, "skipped", "completed", "skipped", ts(1)),
				run(6, "bad", "completed", "failure", ts(1)),
				run(7, "cancelled", "completed", "cancelled", ts(1)),
				run(8, "slow", "completed", "timed_out", ts(1)),
				run(9, "needs", "completed", "action_required", ts(1)),
			},
			want: []Check{
				{Name: "bad", Source: SourceCheckRun, State: CheckFailure, Detail: "failure", At: at(1), ID: 6},
				{Name: "cancelled", Source: SourceCheckRun, State: CheckFailure, Detail: "cancelled", At: at(1), ID: 7},
				{Name: "needs", Source: SourceCheckRun, State: CheckFailure, Detail: "action_required", At: at(1), ID: 9},
				{Name: "neutral", Source: SourceCheckRun, State: CheckSuccess, Detail: "neutral", At: at(1), ID: 4},
				{Name: "ok", Source: SourceCheckRun, State: CheckSuccess, Detail: "success", At: at(1), ID: 3},
				{Name: "queued", Source: SourceCheckRun, State: CheckPending, Detail: "queued", ID: 1},
				{Name: "running", Source: SourceCheckRun, State: CheckPending, Detail: "in_progress", At: at(1), ID: 2},
				{Name: "skipped", Source: SourceCheckRun, State: CheckSuccess, Detail: "skipped", At: at(1), ID: 5},
				{Name: "slow", Source: SourceCheckRun, State: CheckFailure, Detail: "timed_out", At: at(1), ID: 8},
			},
		},
		{
			name: "latest check run per name by start time",
			runs: []*github.CheckRun{run(9, "test", "completed", "failure", ts(1)), run(4, "test", "completed", "success", ts(2))},
			want: []Check{{Name: "test", Source: SourceCheckRun, State: CheckSuccess, Detail: "success", At: at(2), ID: 4}},
		},
		{
			name: "a queued re-run without a start time supersedes by id",
			runs: []*github.CheckRun{run(1, "test", "completed", "failure", ts(1)), run(2, "test", "queued", "", nil)},
			want: []Check{{Name: "test", Source: SourceCheckRun, State: CheckPending, Detail: "queued", ID: 2}},
		},
		{
			name:     "same name from both sources is kept twice",
			statuses: []*github.RepoStatus{status(1, "ci/test", "success", 1)},
			runs:     []*github.CheckRun{run(1, "ci/test", "completed", "success", ts(1))},
			want: []Check{
				{Name: "ci/test", Source: SourceCheckRun, State: CheckSuccess, Detail: "success", At: at(1), ID: 1},
				{Name: "ci/test", Source: SourceStatus, State: CheckSuccess, Detail: "success desc", At: at(1), ID: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ChecksFrom(tt.statuses, tt.runs), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ChecksFrom mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func prRule(count int, dismiss bool) *github.RepositoryRule {
	return github.NewPullRequestRule(&github.PullRequestRuleParameters{RequiredApprovingReviewCount: count, DismissStaleReviewsOnPush: dismiss})
}

func checksRule(names ...string) *github.RepositoryRule {
	p := &github.RequiredStatusChecksRuleParameters{}
	for _, n := range names {
		p.RequiredStatusChecks = append(p.RequiredStatusChecks, github.RuleRequiredStatusChecks{Context: n})
	}
	return github.NewRequiredStatusChecksRule(p)
}

func TestProtectionFrom(t *testing.T) {
	classic := &github.Protection{
		RequiredPullRequestReviews: &github.PullRequestReviewsEnforcement{RequiredApprovingReviewCount: 2, DismissStaleReviews: true},
		RequiredStatusChecks: &github.RequiredStatusChecks{
			Contexts: &[]string{"ci/test"},
			Checks:   &[]*github.RequiredStatusCheck{{Context: "ci/test"}, {Context: "build"}},
		},
	}
	tests := []struct {
		name      string
		classic   *github.Protection
		state     ProtectionRead
		rules     []*github.RepositoryRule
		rulesRead bool
		want      Protection
	}{
		{
			name: "classic only", classic: classic, state: ProtectionOK, rulesRead: true,
			want: Protection{Known: true, Protected: true, Sources: []string{SourceBranchProtection}, RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"build", "ci/test"}},
		},
		{
			name: "classic protection without review or check requirements", classic: &github.Protection{}, state: ProtectionOK, rulesRead: true,
			want: Protection{Known: true, Protected: true, Sources: []string{SourceBranchProtection}},
		},
		{
			name: "ruleset only", state: ProtectionNotFound, rulesRead: true,
			rules: []*github.RepositoryRule{prRule(1, true), checksRule("ci/test"), github.NewNonFastForwardRule()},
			want:  Protection{Known: true, Protected: true, Sources: []string{SourceRuleset}, RequiredApprovals: 1, DismissStale: true, RequiredChecks: []string{"ci/test"}},
		},
		{
			name: "classic and rulesets combine: max, or, union", classic: &github.Protection{
				RequiredPullRequestReviews: &github.PullRequestReviewsEnforcement{RequiredApprovingReviewCount: 1},
				RequiredStatusChecks:       &github.RequiredStatusChecks{Checks: &[]*github.RequiredStatusCheck{{Context: "build"}}},
			}, state: ProtectionOK, rulesRead: true,
			rules: []*github.RepositoryRule{prRule(3, false), prRule(2, true), checksRule("lint", "build")},
			want:  Protection{Known: true, Protected: true, Sources: []string{SourceBranchProtection, SourceRuleset}, RequiredApprovals: 3, DismissStale: true, RequiredChecks: []string{"build", "lint"}},
		},
		{
			name: "classic 403 but a ruleset protects", state: ProtectionForbidden, rulesRead: true,
			rules: []*github.RepositoryRule{prRule(1, false)},
			want:  Protection{Known: true, Protected: true, Sources: []string{SourceRuleset}, RequiredApprovals: 1, Warnings: []string{warnClassicForbidden}},
		},
		{
			name: "classic 403 and no rules: unknown", state: ProtectionForbidden, rulesRead: true,
			want: Protection{Warnings: []string{warnClassicForbidden}},
		},
		{
			name: "not protected anywhere", state: ProtectionNotFound, rulesRead: true,
			want: Protection{Known: true},
		},
		{
			name: "creation rule alone does not protect updates", state: ProtectionNotFound, rulesRead: true,
			rules: []*github.RepositoryRule{github.NewCreationRule()},
			want:  Protection{Known: true},
		},
		{
			name: "classic 404 but rulesets unreadable: unknown", state: ProtectionNotFound,
			want: Protection{Warnings: []string{warnRulesUnread}},
		},
		{
			name: "classic unread (zero value) and rulesets unreadable", state: ProtectionUnread,
			want: Protection{Warnings: []string{warnClassicUnread, warnRulesUnread}},
		},
		{
			name: "classic protected, rulesets unreadable: known, with a warning", classic: classic, state: ProtectionOK,
			want: Protection{Known: true, Protected: true, Sources: []string{SourceBranchProtection}, RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"build", "ci/test"}, Warnings: []string{warnRulesUnread}},
		},
		{
			name: "pull_request rule without parameters", state: ProtectionNotFound, rulesRead: true,
			rules: []*github.RepositoryRule{{Type: "pull_request"}},
			want:  Protection{Known: true, Protected: true, Sources: []string{SourceRuleset}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ProtectionFrom(tt.classic, tt.state, tt.rules, tt.rulesRead)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ProtectionFrom mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProtectionFromBadParameters(t *testing.T) {
	bad := json.RawMessage(`{"required_approving_review_count":"two"}`)
	got := ProtectionFrom(nil, ProtectionNotFound, []*github.RepositoryRule{{Type: "pull_request", Parameters: &bad}}, true)
	if !got.Protected || len(got.Warnings) != 1 {
		t.Errorf("want protected with one warning, got %+v", got)
	}
}

// The shapes GitHub documents for GET /repos/{owner}/{repo}/rules/branches/{branch},
// including a rule type go-github v60 cannot decode.
const rulesBody = `[
  {"type":"deletion","ruleset_source_type":"Repository","ruleset_source":"acme/api","ruleset_id":1},
  {"type":"pull_request","parameters":{"required_approving_review_count":2,"dismiss_stale_reviews_on_push":true,"require_code_owner_review":false,"require_last_push_approval":false,"required_review_thread_resolution":false}},
  {"type":"required_status_checks","parameters":{"strict_required_status_checks_policy":false,"required_status_checks":[{"context":"ci/test","integration_id":15368},{"context":"lint"}]}},
  {"type":"merge_queue","parameters":{"merge_method":"SQUASH"}}
]`

func TestDecodeRules(t *testing.T) {
	// Documents why DecodeRules exists; if go-github ever decodes this, the
	// shell may go back to GetRulesForBranch.
	var viaGoGithub []*github.RepositoryRule
	if err := json.Unmarshal([]byte(rulesBody), &viaGoGithub); err == nil {
		t.Log("go-github now decodes unknown rule types; DecodeRules may be unnecessary")
	}

	rules, err := DecodeRules([]byte(rulesBody))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 || rules[0].Parameters != nil || rules[3].Type != "merge_queue" {
		t.Fatalf("DecodeRules = %+v", rules)
	}
	got := ProtectionFrom(nil, ProtectionForbidden, rules, true)
	want := Protection{
		Known: true, Protected: true, Sources: []string{SourceRuleset},
		RequiredApprovals: 2, DismissStale: true, RequiredChecks: []string{"ci/test", "lint"},
		Warnings: []string{warnClassicForbidden},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ProtectionFrom(DecodeRules) mismatch (-want +got):\n%s", diff)
	}

	if _, err := DecodeRules([]byte(`{"message":"Not Found"}`)); err == nil {
		t.Error("DecodeRules accepted an error body")
	}
}

// End to end through the mappers: the protection scenarios the gate must get
// right when the facts come from GitHub.
func TestDecideWithMappedProtection(t *testing.T) {
	policy := Policy{Approvals: 1, RequireProtectedBranch: true, RequireChecks: true}
	approved := []Review{review("bob", StateApproved, 1)}
	tests := []struct {
		name    string
		prot    Protection
		checks  []Check
		allowed bool
		reasons []string
	}{
		{
			name:    "ruleset-only protection, green check",
			prot:    ProtectionFrom(nil, ProtectionNotFound, []*github.RepositoryRule{prRule(1, false), checksRule("ci/test")}, true),
			checks:  ChecksFrom(nil, []*github.CheckRun{{ID: github.Int64(1), Name: github.String("ci/test"), Status: github.String("completed"), Conclusion: github.String("success")}}),
			allowed: true,
		},
		{
			name:    "classic 403 + ruleset present",
			prot:    ProtectionFrom(nil, ProtectionForbidden, []*github.RepositoryRule{prRule(1, false)}, true),
			allowed: true,
		},
		{
			name:    "ruleset requires 2",
			prot:    ProtectionFrom(nil, ProtectionNotFound, []*github.RepositoryRule{prRule(2, false)}, true),
			reasons: []string{"2 approvals from people other than the author are required; found 1"},
		},
		{
			name: "classic 403 and nothing else",
			prot: ProtectionFrom(nil, ProtectionForbidden, nil, true),
			reasons: []string{
				"could not verify that branch main is protected (see notes for what could not be read)",
				"could not determine which checks branch main requires (see notes for what could not be read)",
			},
		},
		{
			name:    "unprotected branch",
			prot:    ProtectionFrom(nil, ProtectionNotFound, nil, true),
			reasons: []string{"branch main is not protected (neither branch protection nor a ruleset applies) and the config requires it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(policy, facts(func(f *Facts) { f.Reviews, f.Protection, f.Checks = approved, tt.prot, tt.checks }))
			if d.Allowed != tt.allowed {
				t.Errorf("Allowed = %v, want %v (reasons %q)", d.Allowed, tt.allowed, d.Reasons)
			}
			if diff := cmp.Diff(tt.reasons, d.Reasons, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Reasons mismatch (-want +got):\n%s", diff)
			}
			n := min(len(tt.prot.Warnings), len(d.Notes))
			if diff := cmp.Diff(tt.prot.Warnings, d.Notes[:n], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("protection warnings not passed on as notes (-want +got):\n%s", diff)
			}
		})
	}
}
