package gate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	head  = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	stale = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func review(user, state string, min int) Review {
	return Review{User: user, State: state, CommitID: head, SubmittedAt: at(min), ID: int64(min + 1)}
}

func green(name, source string) Check {
	return Check{Name: name, Source: source, State: CheckSuccess, At: at(0), ID: 1}
}

var protected = Protection{Known: true, Protected: true, Sources: []string{SourceBranchProtection}}

// facts is a merged PR by alice onto a protected main with no reviews yet.
func facts(mod func(*Facts)) Facts {
	f := Facts{
		Repo: "acme/api", HasPR: true, PRNumber: 7, Author: "alice",
		HeadSHA: head, BaseRef: "main", Merged: true, Protection: protected,
	}
	if mod != nil {
		mod(&f)
	}
	return f
}

func withReviews(rs ...Review) func(*Facts) { return func(f *Facts) { f.Reviews = rs } }

func TestDecide(t *testing.T) {
	one := Policy{Approvals: 1, RequireProtectedBranch: true}
	checks := Policy{Approvals: 1, RequireProtectedBranch: true, RequireChecks: true}
	requiring := func(names ...string) func(*Facts) {
		return func(f *Facts) {
			f.Reviews = []Review{review("bob", StateApproved, 1)}
			f.Protection.RequiredChecks = names
		}
	}

	tests := []struct {
		name   string
		policy Policy
		facts  Facts
		want   Decision
	}{
		{
			name:   "one approval from another person",
			policy: one,
			facts:  facts(withReviews(review("bob", StateApproved, 1))),
			want:   Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "self-approval only",
			policy: one,
			facts:  facts(withReviews(review("Alice", StateApproved, 1))),
			want: Decision{
				Reasons:           []string{"1 approval from someone other than the author is required; found 0"},
				RequiredApprovals: 1,
				Notes:             []string{"@alice's own approval does not count"},
			},
		},
		{
			name:   "author's change request does not block",
			policy: one,
			facts:  facts(withReviews(review("bob", StateApproved, 1), review("ALICE", StateChangesRequested, 2))),
			want:   Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "approve then changes requested by the same reviewer",
			policy: one,
			facts:  facts(withReviews(review("bob", StateApproved, 1), review("bob", StateChangesRequested, 2))),
			want: Decision{
				Reasons: []string{
					"1 approval from someone other than the author is required; found 0",
					"@bob requested changes",
				},
				RequiredApprovals: 1,
			},
		},
		{
			name:   "changes requested then approve",
			policy: one,
			facts:  facts(withReviews(review("bob", StateChangesRequested, 1), review("bob", StateApproved, 2))),
			want:   Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "reviews out of order are ordered by submission time",
			policy: one,
			facts:  facts(withReviews(review("bob", StateApproved, 2), review("bob", StateChangesRequested, 1))),
			want:   Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "same submission time: the higher review id is later",
			policy: one,
			facts: facts(withReviews(
				Review{User: "bob", State: StateApproved, CommitID: head, SubmittedAt: at(1), ID: 20},
				Review{User: "bob", State: StateChangesRequested, CommitID: head, SubmittedAt: at(1), ID: 10},
			)),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "dismissed approval",
			policy: one,
			facts:  facts(withReviews(review("bob", StateDismissed, 1))),
			want: Decision{
				Reasons:           []string{"1 approval from someone other than the author is required; found 0"},
				RequiredApprovals: 1,
			},
		},
		{
			name:   "approval dismissed by a later review state",
			policy: one,
			facts:  facts(withReviews(review("bob", StateApproved, 1), review("bob", StateDismissed, 2))),
			want: Decision{
				Reasons:           []string{"1 approval from someone other than the author is required; found 0"},
				RequiredApprovals: 1,
			},
		},
		{
			name:   "COMMENTED and PENDING after APPROVED keep the approval",
			policy: one,
			facts: facts(withReviews(
				review("bob", StateApproved, 1),
				review("bob", StateCommented, 2),
				Review{User: "bob", State: StatePending, ID: 99},
			)),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "COMMENTED after CHANGES_REQUESTED keeps the change request",
			policy: one,
			facts: facts(withReviews(
				review("carol", StateApproved, 1),
				review("bob", StateChangesRequested, 2),
				review("bob", StateCommented, 3),
			)),
			want: Decision{
				Reasons:   []string{"@bob requested changes"},
				Approvers: []string{"carol"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "logins compare case-insensitively",
			policy: one,
			facts:  facts(withReviews(review("Bob", StateApproved, 1), review("bob", StateCommented, 2), review("BOB", StateApproved, 3))),
			want:   Decision{Allowed: true, Approvers: []string{"BOB"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "approval by a non-collaborator does not count",
			policy: one,
			facts: facts(withReviews(
				Review{User: "drive-by", State: StateApproved, CommitID: head, SubmittedAt: at(1), ID: 1, Association: "CONTRIBUTOR"},
				Review{User: "stranger", State: StateChangesRequested, CommitID: head, SubmittedAt: at(2), ID: 2, Association: "NONE"},
			)),
			want: Decision{
				Reasons:           []string{"1 approval from someone other than the author is required; found 0"},
				RequiredApprovals: 1,
				Notes: []string{
					"@drive-by's review does not count: they are not a collaborator (CONTRIBUTOR)",
					"@stranger's review does not count: they are not a collaborator (NONE)",
				},
			},
		},
		{
			name:   "owner, member and collaborator approvals count; unknown association is trusted",
			policy: Policy{Approvals: 4},
			facts: facts(withReviews(
				Review{User: "o", State: StateApproved, CommitID: head, ID: 1, Association: "OWNER"},
				Review{User: "m", State: StateApproved, CommitID: head, ID: 2, Association: "MEMBER"},
				Review{User: "c", State: StateApproved, CommitID: head, ID: 3, Association: "collaborator"},
				Review{User: "u", State: StateApproved, CommitID: head, ID: 4},
			)),
			want: Decision{Allowed: true, Approvers: []string{"c", "m", "o", "u"}, Approvals: 4, RequiredApprovals: 4},
		},
		{
			name:   "stale approval with dismiss-stale is ignored",
			policy: one,
			facts: facts(func(f *Facts) {
				f.Protection.DismissStale = true
				f.Reviews = []Review{{User: "bob", State: StateApproved, CommitID: stale, SubmittedAt: at(1), ID: 1}}
			}),
			want: Decision{
				Reasons:           []string{"1 approval from someone other than the author is required; found 0"},
				RequiredApprovals: 1,
				Notes:             []string{"@bob's approval of 2222222 is ignored: the branch dismisses stale approvals and the head is now 1111111"},
			},
		},
		{
			name:   "stale approval without dismiss-stale counts, with a note",
			policy: one,
			facts: facts(withReviews(
				Review{User: "bob", State: StateApproved, CommitID: stale, SubmittedAt: at(1), ID: 1},
			)),
			want: Decision{
				Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
				Notes: []string{"@bob approved 2222222, not the head 1111111; it counts because the branch does not dismiss stale approvals"},
			},
		},
		{
			name:   "protection requiring 2 beats config 1",
			policy: one,
			facts: facts(func(f *Facts) {
				f.Protection.RequiredApprovals = 2
				f.Reviews = []Review{review("bob", StateApproved, 1)}
			}),
			want: Decision{
				Reasons:   []string{"2 approvals from people other than the author are required; found 1"},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 2,
			},
		},
		{
			name:   "protection requiring 2, two approvals",
			policy: one,
			facts: facts(func(f *Facts) {
				f.Protection.RequiredApprovals = 2
				f.Reviews = []Review{review("carol", StateApproved, 2), review("bob", StateApproved, 1)}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob", "carol"}, Approvals: 2, RequiredApprovals: 2},
		},
		{
			name:   "config requiring 0 and no protection requirement",
			policy: Policy{},
			facts:  facts(nil),
			want:   Decision{Allowed: true},
		},
		{
			name:   "unprotected branch",
			policy: one,
			facts: facts(func(f *Facts) {
				f.Protection = Protection{Known: true}
				f.Reviews = []Review{review("bob", StateApproved, 1)}
			}),
			want: Decision{
				Reasons:   []string{"branch main is not protected (neither branch protection nor a ruleset applies) and the config requires it"},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "unprotected branch allowed when the config does not require protection",
			policy: Policy{Approvals: 1},
			facts: facts(func(f *Facts) {
				f.Protection = Protection{Known: true}
				f.Reviews = []Review{review("bob", StateApproved, 1)}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "protection unreadable and no ruleset",
			policy: one,
			facts: facts(func(f *Facts) {
				f.BaseRef = "refs/heads/main"
				f.Protection = ProtectionFrom(nil, ProtectionForbidden, nil, true)
				f.Reviews = []Review{review("bob", StateApproved, 1)}
			}),
			want: Decision{
				Reasons:   []string{"could not verify that branch main is protected (see notes for what could not be read)"},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
				Notes: []string{warnClassicForbidden},
			},
		},
		{
			name:   "no PR: direct push or admin bypass",
			policy: one,
			facts: facts(func(f *Facts) {
				f.HasPR, f.PRNumber, f.Author, f.Merged = false, 0, "", false
			}),
			want: Decision{Reasons: []string{"commit 1111111 reached main without a reviewed pull request"}},
		},
		{
			name:   "no PR onto an unprotected branch reports both",
			policy: one,
			facts: facts(func(f *Facts) {
				f.HasPR, f.PRNumber, f.Author, f.Merged = false, 0, "", false
				f.Protection = Protection{Known: true}
			}),
			want: Decision{Reasons: []string{
				"commit 1111111 reached main without a reviewed pull request",
				"branch main is not protected (neither branch protection nor a ruleset applies) and the config requires it",
			}},
		},
		{
			name:   "commit of an unmerged PR pushed past it",
			policy: one,
			facts: facts(func(f *Facts) {
				f.Merged = false
				f.Reviews = []Review{review("bob", StateApproved, 1)}
			}),
			want: Decision{Reasons: []string{"commit 1111111 reached main but pull request #7 is not merged"}},
		},
		{
			name:   "required check green via check run",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{green("ci/test", SourceCheckRun)}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "required check green via commit status",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{green("ci/test", SourceStatus)}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "required check missing",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{green("ci/lint", SourceStatus)}
			}),
			want: Decision{
				Reasons:   []string{`required check "ci/test" has not reported on 1111111`},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "required check pending",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{{Name: "ci/test", Source: SourceCheckRun, State: CheckPending, Detail: "in_progress"}}
			}),
			want: Decision{
				Reasons:   []string{`required check "ci/test" is still pending on 1111111 (in_progress)`},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "required check failing",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{{Name: "ci/test", Source: SourceStatus, State: CheckFailure}}
			}),
			want: Decision{
				Reasons:   []string{`required check "ci/test" failed on 1111111`},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "a later green re-run replaces the failure",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{
					{Name: "ci/test", Source: SourceCheckRun, State: CheckSuccess, At: at(5), ID: 2},
					{Name: "ci/test", Source: SourceCheckRun, State: CheckFailure, At: at(1), ID: 1},
				}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "a green status does not hide a failing check run of the same name",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{
					green("ci/test", SourceStatus),
					{Name: "ci/test", Source: SourceCheckRun, State: CheckFailure, Detail: "timed_out"},
				}
			}),
			want: Decision{
				Reasons:   []string{`required check "ci/test" failed on 1111111 (timed_out)`},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
			},
		},
		{
			name:   "a failing check that is not required does not block",
			policy: checks,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{
					green("ci/test", SourceCheckRun),
					{Name: "coverage", Source: SourceStatus, State: CheckFailure},
				}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "failing required check ignored when the config does not require checks",
			policy: one,
			facts: facts(func(f *Facts) {
				requiring("ci/test")(f)
				f.Checks = []Check{{Name: "ci/test", Source: SourceStatus, State: CheckFailure}}
			}),
			want: Decision{Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1},
		},
		{
			name:   "no required checks: note, not a refusal",
			policy: checks,
			facts:  facts(requiring()),
			want: Decision{
				Allowed: true, Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
				Notes: []string{"branch main requires no status checks, so require_checks has nothing to enforce"},
			},
		},
		{
			name:   "required checks unknowable fails closed",
			policy: Policy{Approvals: 1, RequireChecks: true},
			facts: facts(func(f *Facts) {
				requiring()(f)
				f.Protection = ProtectionFrom(nil, ProtectionUnread, nil, false)
			}),
			want: Decision{
				Reasons:   []string{"could not determine which checks branch main requires (see notes for what could not be read)"},
				Approvers: []string{"bob"}, Approvals: 1, RequiredApprovals: 1,
				Notes: []string{warnClassicUnread, warnRulesUnread},
			},
		},
		{
			name:   "multiple reasons at once, in a fixed order",
			policy: checks,
			facts: facts(func(f *Facts) {
				f.Protection = Protection{Known: true, RequiredApprovals: 2, RequiredChecks: []string{"lint", "build", "test"}}
				f.Reviews = []Review{
					review("alice", StateApproved, 1),
					review("zed", StateChangesRequested, 2),
					review("bob", StateChangesRequested, 3),
					review("carol", StateApproved, 4),
				}
				f.Checks = []Check{
					{Name: "test", Source: SourceCheckRun, State: CheckFailure, Detail: "failure"},
					{Name: "build", Source: SourceStatus, State: CheckPending},
				}
			}),
			want: Decision{
				Reasons: []string{
					"branch main is not protected (neither branch protection nor a ruleset applies) and the config requires it",
					"2 approvals from people other than the author are required; found 1",
					"@bob requested changes",
					"@zed requested changes",
					`required check "build" is still pending on 1111111`,
					`required check "lint" has not reported on 1111111`,
					`required check "test" failed on 1111111 (failure)`,
				},
				Approvers: []string{"carol"}, Approvals: 1, RequiredApprovals: 2,
				Notes: []string{"@alice's own approval does not count"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.policy, tt.facts)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
			if got.Allowed == (len(got.Reasons) > 0) {
				t.Errorf("Allowed = %v with %d reasons", got.Allowed, len(got.Reasons))
			}
		})
	}
}

func TestForecast(t *testing.T) {
	f := facts(func(f *Facts) {
		f.Merged = false
		f.Reviews = []Review{review("bob", StateApproved, 1)}
	})
	if d := Decide(Policy{Approvals: 1}, f); d.Allowed {
		t.Fatalf("Decide allowed an unmerged PR: %+v", d)
	}
	if d := Forecast(Policy{Approvals: 1}, f); !d.Allowed {
		t.Errorf("Forecast refused an approved open PR: %v", d.Reasons)
	}
	noPR := facts(func(f *Facts) { f.HasPR, f.Merged = false, false })
	if d := Forecast(Policy{}, noPR); d.Allowed {
		t.Errorf("Forecast allowed a PR-less push")
	}
}
