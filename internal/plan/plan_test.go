package plan

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/gate"
)

const (
	repo     = "acme/api"
	branch   = "main"
	author   = "alice"
	headSHA  = "1111111111111111111111111111111111111111"
	mergeSHA = "2222222222222222222222222222222222222222"
	oldSHA   = "3333333333333333333333333333333333333333"
	otherSHA = "4444444444444444444444444444444444444444"
)

// baseConfig has one stage with the default skip label and one with a
// custom one, and the default gate: 1 approval, protected branch, checks.
const baseConfig = `version: 1
stages:
  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
    skip_label: hold-prod
`

// snapshot builds the facts of an approved, green, merged PR #7 by alice on
// a protected main that requires "ci", with no tags; opts change it.
func snapshot(opts ...func(*facts.Snapshot)) facts.Snapshot {
	s := facts.Snapshot{
		Config:      []byte(baseConfig),
		ConfigFound: true,
		HasPR:       true,
		PR: facts.PR{
			Number: 7, Title: "fix: handle nil", Author: author, HeadSHA: headSHA,
			BaseRef: branch, Merged: true, MergeSHA: mergeSHA,
		},
		Reviews: []gate.Review{approval("bob", headSHA)},
		Protection: gate.Protection{
			Known: true, Protected: true, Sources: []string{gate.SourceBranchProtection},
			RequiredChecks: []string{"ci"},
		},
		Checks: []gate.Check{check("ci", gate.CheckSuccess)},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

var nextReviewID int64

func review(user, state, commit string) gate.Review {
	nextReviewID++
	return gate.Review{User: user, State: state, CommitID: commit, ID: nextReviewID}
}

func approval(user, commit string) gate.Review { return review(user, gate.StateApproved, commit) }

func check(name, state string) gate.Check {
	return gate.Check{Name: name, Source: gate.SourceCheckRun, State: state}
}

func withConfig(yaml string) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) { s.Config = []byte(yaml) }
}

func title(t string) func(*facts.Snapshot) { return func(s *facts.Snapshot) { s.PR.Title = t } }

func body(b string) func(*facts.Snapshot) { return func(s *facts.Snapshot) { s.PR.Body = b } }

func labels(ls ...string) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) { s.PR.Labels = ls }
}

func reviews(rs ...gate.Review) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) { s.Reviews = rs }
}

func checks(cs ...gate.Check) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) { s.Checks = cs }
}

func protection(edit func(*gate.Protection)) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) { edit(&s.Protection) }
}

// tags takes "name" (on an unrelated commit) or "name@sha".
func tags(ts ...string) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) {
		s.Tags = nil
		for _, t := range ts {
			name, sha, ok := strings.Cut(t, "@")
			if !ok {
				sha = otherSHA
			}
			s.Tags = append(s.Tags, facts.Tag{Name: name, SHA: sha})
		}
	}
}

func noPR(s *facts.Snapshot) {
	s.HasPR, s.PR, s.Reviews, s.Checks = false, facts.PR{}, nil, nil
}

func unmerged(s *facts.Snapshot) { s.PR.Merged, s.PR.MergeSHA = false, "" }

// want is what a case checks; zero fields are not checked except as noted.
type want struct {
	kind    Kind
	tag     string // also checks Version; "" means no version
	prevTag string
	reused  bool
	// reasons are substrings that must each appear in some gate reason;
	// for Refused there must be exactly len(reasons) reasons.
	reasons []string
	// problems are regexps that must each match a problem, in order; for
	// Invalid there must be exactly len(problems) problems.
	problems []string
	skipped  []string // names of the stages marked Skipped
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name    string
		snap    facts.Snapshot
		preview bool
		sha     string // defaults to mergeSHA, or headSHA for a preview
		want    want
	}{
		// Configuration.
		{
			name: "no config: not opted in",
			snap: snapshot(func(s *facts.Snapshot) { s.Config, s.ConfigFound = nil, false }),
			want: want{kind: NoConfig},
		},
		{
			name: "empty config found is invalid, not missing",
			snap: snapshot(withConfig("")),
			want: want{kind: Invalid, problems: []string{`^\.github/shipbot\.yml:1:1: file is empty$`}},
		},
		{
			name: "unknown key: file:line:col",
			snap: snapshot(withConfig("version: 1\nstages:\n  - name: qa\n    targte: spinnaker-qa\n")),
			want: want{kind: Invalid, problems: []string{
				`^\.github/shipbot\.yml:3:5: stages\[0\]\.target: required`,
				`^\.github/shipbot\.yml:4:5: .*targte`,
			}},
		},
		{
			name: "every problem reported, in file order",
			snap: snapshot(withConfig("version: 2\ngate:\n  approvals: 11\nstages:\n  - name: QA\n    target: x\n")),
			want: want{kind: Invalid, problems: []string{
				`^\.github/shipbot\.yml:1:10: .*unsupported version 2`,
				`^\.github/shipbot\.yml:3:14: .*approvals.*between 0 and 10`,
				`^\.github/shipbot\.yml:5:11: .*name.*"QA"`,
			}},
		},
		{
			name: "YAML syntax error names the line",
			snap: snapshot(withConfig("version: 1\nstages:\n  - name: qa\n   target: [x\n")),
			want: want{kind: Invalid, problems: []string{`^\.github/shipbot\.yml:\d+(:\d+)?: invalid YAML: `}},
		},
		{
			name: "invalid config wins over a refusing gate",
			snap: snapshot(withConfig("version: 1\nbogus: true\n"), reviews()),
			want: want{kind: Invalid, problems: []string{`^\.github/shipbot\.yml:2:1: `}},
		},

		// The gate.
		{
			name: "no approval",
			snap: snapshot(reviews()),
			want: want{kind: Refused, reasons: []string{"1 approval from someone other than the author is required; found 0"}},
		},
		{
			name: "self-approval only",
			snap: snapshot(reviews(approval(author, headSHA))),
			want: want{kind: Refused, reasons: []string{"required; found 0"}},
		},
		{
			name: "commented review is not an approval",
			snap: snapshot(reviews(review("bob", gate.StateCommented, headSHA))),
			want: want{kind: Refused, reasons: []string{"required; found 0"}},
		},
		{
			name: "changes requested blocks despite an approval",
			snap: snapshot(reviews(approval("bob", headSHA), review("carol", gate.StateChangesRequested, headSHA))),
			want: want{kind: Refused, reasons: []string{"@carol requested changes"}},
		},
		{
			name: "stale approval when the branch dismisses stale reviews",
			snap: snapshot(reviews(approval("bob", oldSHA)), protection(func(p *gate.Protection) { p.DismissStale = true })),
			want: want{kind: Refused, reasons: []string{"required; found 0"}},
		},
		{
			name: "stale approval counts when stale reviews are not dismissed",
			snap: snapshot(reviews(approval("bob", oldSHA))),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "protection demands more approvals than the config",
			snap: snapshot(protection(func(p *gate.Protection) { p.RequiredApprovals = 2 })),
			want: want{kind: Refused, reasons: []string{"2 approvals from people other than the author are required; found 1"}},
		},
		{
			name: "required check missing",
			snap: snapshot(checks(check("lint", gate.CheckSuccess))),
			want: want{kind: Refused, reasons: []string{`required check "ci" has not reported on 1111111`}},
		},
		{
			name: "required check pending",
			snap: snapshot(checks(check("ci", gate.CheckPending))),
			want: want{kind: Refused, reasons: []string{`required check "ci" is still pending`}},
		},
		{
			name: "required check failing",
			snap: snapshot(checks(check("ci", gate.CheckFailure))),
			want: want{kind: Refused, reasons: []string{`required check "ci" failed`}},
		},
		{
			name: "failing check that is not required does not block",
			snap: snapshot(checks(check("ci", gate.CheckSuccess), check("flaky", gate.CheckFailure))),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "require_checks: false ignores failing checks",
			snap: snapshot(withConfig("version: 1\ngate:\n  require_checks: false\n"), checks(check("ci", gate.CheckFailure))),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "unprotected branch",
			snap: snapshot(protection(func(p *gate.Protection) { *p = gate.Protection{Known: true} })),
			want: want{kind: Refused, reasons: []string{
				"branch main is not protected",
				// and so no required checks are known
			}},
		},
		{
			name: "unprotected branch allowed when the config does not require protection",
			snap: snapshot(
				withConfig("version: 1\ngate:\n  require_protected_branch: false\n  require_checks: false\n"),
				protection(func(p *gate.Protection) { *p = gate.Protection{Known: true} })),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "direct push without a pull request",
			snap: snapshot(noPR),
			want: want{kind: Refused, reasons: []string{"commit 2222222 reached main without a reviewed pull request"}},
		},
		{
			name: "merge of a PR that is not merged",
			snap: snapshot(unmerged),
			want: want{kind: Refused, reasons: []string{"pull request #7 is not merged"}},
		},

		// Versions.
		{
			name: "first release is exactly initial",
			snap: snapshot(title("feat!: everything")),
			want: want{kind: Release, tag: "v0.1.0", prevTag: ""},
		},
		{
			name: "first release with a custom prefix and initial",
			snap: snapshot(withConfig("version: 1\nrelease:\n  tag_prefix: api-\n  initial: 1.0.0\n"), tags("v3.0.0")),
			want: want{kind: Release, tag: "api-1.0.0"},
		},
		{
			name: "feat is minor",
			snap: snapshot(title("feat(api): widgets"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.3.0", prevTag: "v1.2.3"},
		},
		{
			name: "fix is patch",
			snap: snapshot(title("fix: nil deref"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name: "non-conventional title is patch",
			snap: snapshot(title("Update README"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name: "bang is major",
			snap: snapshot(title("feat!: drop v1"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v2.0.0", prevTag: "v1.2.3"},
		},
		{
			name: "BREAKING CHANGE footer is major",
			snap: snapshot(title("fix: strict parsing"), body("Stricter.\n\nBREAKING CHANGE: rejects commas\n"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v2.0.0", prevTag: "v1.2.3"},
		},
		{
			name: "breaking change below 1.0 is minor",
			snap: snapshot(title("feat!: drop v1"), tags("v0.4.2")),
			want: want{kind: Release, tag: "v0.5.0", prevTag: "v0.4.2"},
		},
		{
			name: "semver:major label leaves 0.x",
			snap: snapshot(title("fix: x"), labels("semver:major"), tags("v0.4.2")),
			want: want{kind: Release, tag: "v1.0.0", prevTag: "v0.4.2"},
		},
		{
			name: "semver:major overrides a fix title",
			snap: snapshot(title("fix: x"), labels("semver:major"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v2.0.0", prevTag: "v1.2.3"},
		},
		{
			name: "semver:minor overrides a fix title",
			snap: snapshot(title("fix: x"), labels("bug", "semver:minor"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.3.0", prevTag: "v1.2.3"},
		},
		{
			name: "semver:patch overrides a breaking title",
			snap: snapshot(title("feat!: x"), labels("semver:patch"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name: "bump: patch ignores the title",
			snap: snapshot(withConfig("version: 1\nrelease:\n  bump: patch\n"), title("feat!: x"), tags("v1.2.3")),
			want: want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name: "semver:none merges without a release",
			snap: snapshot(title("feat: x"), labels("semver:none"), tags("v1.2.3")),
			want: want{kind: NoRelease},
		},
		{
			name: "semver:none on the first release",
			snap: snapshot(labels("semver:none")),
			want: want{kind: NoRelease},
		},
		{
			name: "conflicting labels are invalid",
			snap: snapshot(labels("semver:minor", "semver:patch"), tags("v1.2.3")),
			want: want{kind: Invalid, problems: []string{`conflicting labels semver:minor, semver:patch`}},
		},
		{
			name: "misspelt semver label is invalid",
			snap: snapshot(labels("semver:majro")),
			want: want{kind: Invalid, problems: []string{`unknown label "semver:majro"`}},
		},
		{
			name: "a refused gate is reported before bad labels",
			snap: snapshot(labels("semver:minor", "semver:patch"), reviews()),
			want: want{kind: Refused, reasons: []string{"required; found 0"}},
		},

		// Tags.
		{
			name: "only <prefix>X.Y.Z tags count",
			snap: snapshot(tags("v1.2.3", "9.9.9", "release-5.0.0", "v7", "v8.1", "vnext", "v6.0.0-rc.1", "v6.0.0+build.5", "V6.0.0", "v06.0.0")),
			want: want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name: "only pre-release tags: first release",
			snap: snapshot(tags("v1.0.0-rc.1", "v1.0.0-beta")),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "highest, not latest (tags in any order)",
			snap: snapshot(tags("v1.1.5", "v1.4.0", "v1.3.9", "v1.10.0-rc.1")),
			want: want{kind: Release, tag: "v1.4.1", prevTag: "v1.4.0"},
		},
		{
			name: "numeric, not lexical, order",
			snap: snapshot(title("feat: x"), tags("v1.9.0", "v1.10.0", "v1.2.0")),
			want: want{kind: Release, tag: "v1.11.0", prevTag: "v1.10.0"},
		},
		{
			name: "prefix from the config; foreign prefixes ignored",
			snap: snapshot(withConfig("version: 1\nrelease:\n  tag_prefix: api/\n"), tags("v9.0.0", "api/1.2.3", "web/4.0.0")),
			want: want{kind: Release, tag: "api/1.2.4", prevTag: "api/1.2.3"},
		},
		{
			name: "empty prefix",
			snap: snapshot(withConfig("version: 1\nrelease:\n  tag_prefix: \"\"\n"), tags("v9.0.0", "1.2.3")),
			want: want{kind: Release, tag: "1.2.4", prevTag: "1.2.3"},
		},

		// A tag already on the merge commit.
		{
			name: "tag on the SHA is reused, with the highest release below it as PrevTag",
			snap: snapshot(title("feat: x"), tags("v1.3.0", "v1.5.0", "v1.4.0@"+mergeSHA, "v1.3.1", "v1.3.2-rc.1", "v2.0.0-rc.1@"+mergeSHA)),
			want: want{kind: Release, tag: "v1.4.0", prevTag: "v1.3.1", reused: true},
		},
		{
			name: "reused first release has no PrevTag",
			snap: snapshot(tags("v0.1.0@"+mergeSHA, "v0.2.0")),
			want: want{kind: Release, tag: "v0.1.0", prevTag: "", reused: true},
		},
		{
			name: "two release tags on the SHA: the highest",
			snap: snapshot(tags("v1.0.0", "v1.0.1@"+mergeSHA, "v1.1.0@"+mergeSHA)),
			want: want{kind: Release, tag: "v1.1.0", prevTag: "v1.0.1", reused: true},
		},
		{
			name: "reuse wins over semver:none and over bad labels",
			snap: snapshot(labels("semver:none", "semver:major"), tags("v1.0.0", "v1.0.1@"+mergeSHA)),
			want: want{kind: Release, tag: "v1.0.1", prevTag: "v1.0.0", reused: true},
		},
		{
			name: "a pre-release or foreign tag on the SHA is not reused",
			snap: snapshot(tags("v1.0.0", "v1.1.0-rc.1@"+mergeSHA, "deploy-ok@"+mergeSHA)),
			want: want{kind: Release, tag: "v1.0.1", prevTag: "v1.0.0"},
		},
		{
			name: "a tag on the PR head is not a tag on the merge commit",
			snap: snapshot(tags("v1.0.0@" + headSHA)),
			want: want{kind: Release, tag: "v1.0.1", prevTag: "v1.0.0"},
		},
		{
			name: "a tag on the SHA does not open the gate (direct push tagged by hand)",
			snap: snapshot(noPR, tags("v1.0.0", "v9.9.9@"+mergeSHA)),
			want: want{kind: Refused, reasons: []string{"reached main without a reviewed pull request"}},
		},
		{
			name: "a tag on the SHA does not bypass a failing required check",
			snap: snapshot(checks(check("ci", gate.CheckFailure)), tags("v1.0.1@"+mergeSHA)),
			want: want{kind: Refused, reasons: []string{`required check "ci" failed`}},
		},

		// Preview: the PR head, as if merged now.
		{
			name:    "preview of an approved PR forecasts the release",
			snap:    snapshot(unmerged, title("feat: x"), tags("v1.2.3")),
			preview: true,
			want:    want{kind: Release, tag: "v1.3.0", prevTag: "v1.2.3"},
		},
		{
			name:    "preview forecasts a refusal for the gate's own reasons, not for being unmerged",
			snap:    snapshot(unmerged, reviews()),
			preview: true,
			want:    want{kind: Refused, reasons: []string{"required; found 0"}},
		},
		{
			name:    "preview never reuses a tag on the head",
			snap:    snapshot(unmerged, tags("v1.2.3@"+headSHA)),
			preview: true,
			want:    want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name:    "preview never reuses, even when the SHA is the merge commit",
			snap:    snapshot(tags("v1.2.3@" + mergeSHA)),
			preview: true,
			sha:     mergeSHA,
			want:    want{kind: Release, tag: "v1.2.4", prevTag: "v1.2.3"},
		},
		{
			name:    "preview without a PR is still refused",
			snap:    snapshot(noPR),
			preview: true,
			want:    want{kind: Refused, reasons: []string{"without a reviewed pull request"}},
		},

		// Stages.
		{
			name: "default skip label",
			snap: snapshot(labels("no-deploy-to-qa")),
			want: want{kind: Release, tag: "v0.1.0", skipped: []string{"qa"}},
		},
		{
			name: "custom skip label",
			snap: snapshot(labels("hold-prod")),
			want: want{kind: Release, tag: "v0.1.0", skipped: []string{"prod"}},
		},
		{
			name: "the default label does not skip a stage with a custom one",
			snap: snapshot(labels("no-deploy-to-prod")),
			want: want{kind: Release, tag: "v0.1.0"},
		},
		{
			name: "both skipped",
			snap: snapshot(labels("hold-prod", "semver:minor", "no-deploy-to-qa"), tags("v1.0.0")),
			want: want{kind: Release, tag: "v1.1.0", prevTag: "v1.0.0", skipped: []string{"qa", "prod"}},
		},
		{
			name: "skips are shown on a refusal too",
			snap: snapshot(labels("no-deploy-to-qa"), reviews()),
			want: want{kind: Refused, reasons: []string{"required; found 0"}, skipped: []string{"qa"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sha := tt.sha
			if sha == "" {
				sha = mergeSHA
				if tt.preview {
					sha = headSHA
				}
			}
			got := Evaluate(Input{Repo: repo, Branch: branch, SHA: sha, Preview: tt.preview, Snapshot: tt.snap})
			checkOutcome(t, got, tt.want)
		})
	}
}

func checkOutcome(t *testing.T, got Outcome, w want) {
	t.Helper()
	if got.Kind != w.kind {
		t.Fatalf("Kind = %q, want %q\noutcome: %s\nreasons: %q\nproblems: %q", got.Kind, w.kind, got, got.Gate.Reasons, got.Problems)
	}

	// Version and tag.
	switch {
	case w.tag == "" && (got.Version != nil || got.Tag != ""):
		t.Errorf("Version, Tag = %v, %q; want none", got.Version, got.Tag)
	case w.tag != "" && got.Tag != w.tag:
		t.Errorf("Tag = %q, want %q", got.Tag, w.tag)
	case w.tag != "" && (got.Version == nil || !strings.HasSuffix(w.tag, got.Version.String())):
		t.Errorf("Version = %v, want the version of %q", got.Version, w.tag)
	}
	if got.PrevTag != w.prevTag {
		t.Errorf("PrevTag = %q, want %q", got.PrevTag, w.prevTag)
	}
	if got.Reused != w.reused {
		t.Errorf("Reused = %v, want %v", got.Reused, w.reused)
	}

	// The gate.
	switch got.Kind {
	case Release:
		if !got.Gate.Allowed {
			t.Errorf("Kind Release but Gate.Allowed is false (reasons %q)", got.Gate.Reasons)
		}
		if !got.Reused && got.Choice.Reason == "" {
			t.Error("Choice.Reason is empty for a new release")
		}
	case Refused:
		if got.Gate.Allowed {
			t.Error("Kind Refused but Gate.Allowed is true")
		}
		if len(got.Gate.Reasons) != len(w.reasons) {
			t.Errorf("Gate.Reasons = %q, want %d reason(s)", got.Gate.Reasons, len(w.reasons))
		}
	}
	for _, r := range w.reasons {
		if !slices.ContainsFunc(got.Gate.Reasons, func(g string) bool { return strings.Contains(g, r) }) {
			t.Errorf("Gate.Reasons = %q, want one containing %q", got.Gate.Reasons, r)
		}
	}

	// Problems.
	if got.Kind == Invalid && len(got.Problems) != len(w.problems) {
		t.Errorf("Problems = %q, want %d", got.Problems, len(w.problems))
	}
	if got.Kind != Invalid && len(got.Problems) > 0 {
		t.Errorf("Problems = %q on a %s outcome", got.Problems, got.Kind)
	}
	for i, p := range w.problems {
		if i >= len(got.Problems) {
			break
		}
		if !regexp.MustCompile(p).MatchString(got.Problems[i]) {
			t.Errorf("Problems[%d] = %q, want a match for %s", i, got.Problems[i], p)
		}
	}

	// Stages: known whenever the config parsed.
	var skipped []string
	for _, st := range got.Stages {
		if st.Skipped {
			skipped = append(skipped, st.Name)
		}
	}
	if !slices.Equal(skipped, w.skipped) {
		t.Errorf("skipped stages = %q, want %q", skipped, w.skipped)
	}
}

func TestEvaluateStages(t *testing.T) {
	got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snapshot(labels("hold-prod"))})
	want := []Stage{
		{Name: "qa", Target: "spinnaker-qa", SkipLabel: "no-deploy-to-qa"},
		{Name: "prod", Target: "spinnaker-prod", SkipLabel: "hold-prod", Skipped: true},
	}
	if !slices.Equal(got.Stages, want) {
		t.Errorf("Stages = %+v\nwant %+v", got.Stages, want)
	}
	if name := got.Config.Pipelines[0].Name; name != "api" {
		t.Errorf("Config.Pipelines[0].Name = %q, want the repository name %q", name, "api")
	}

	none := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snapshot(withConfig("version: 1\n"))})
	if none.Kind != Release || len(none.Stages) != 0 {
		t.Errorf("config without stages: Kind %s, Stages %+v; want a release with no stages", none.Kind, none.Stages)
	}
}

// TestEvaluatePreviewMatchesMerge pins the promise of the package comment:
// what the preview forecasts for an approved PR is what its merge does.
func TestEvaluatePreviewMatchesMerge(t *testing.T) {
	opts := []func(*facts.Snapshot){title("feat: x"), labels("no-deploy-to-qa"), tags("v2.3.4", "v2.4.0-rc.1")}
	preview := Evaluate(Input{Repo: repo, Branch: branch, SHA: headSHA, Preview: true,
		Snapshot: snapshot(append(opts, unmerged)...)})
	merge := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snapshot(opts...)})
	if preview.Kind != Release || merge.Kind != Release {
		t.Fatalf("Kind preview %s, merge %s; want release both", preview.Kind, merge.Kind)
	}
	if preview.Tag != merge.Tag || preview.PrevTag != merge.PrevTag || !slices.Equal(preview.Stages, merge.Stages) {
		t.Errorf("preview %s (prev %q, stages %+v) != merge %s (prev %q, stages %+v)",
			preview.Tag, preview.PrevTag, preview.Stages, merge.Tag, merge.PrevTag, merge.Stages)
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		snap facts.Snapshot
		sha  string
		want string
	}{
		{snapshot(title("feat: x"), tags("v1.0.0")), mergeSHA, `release v1.1.0 (title "feat: x" is a feature: minor)`},
		{snapshot(tags("v1.0.0@" + mergeSHA)), mergeSHA, "release v1.0.0 (already tagged)"},
		{snapshot(reviews()), mergeSHA, "refused: [1 approval from someone other than the author is required; found 0]"},
		{snapshot(withConfig("version: 1\nx: 1\n")), mergeSHA, "invalid: [.github/shipbot.yml:2:1: "},
		{snapshot(labels("semver:none")), mergeSHA, "no-release"},
		{snapshot(func(s *facts.Snapshot) { s.ConfigFound = false }), mergeSHA, "no-config"},
	}
	for _, tt := range tests {
		got := Evaluate(Input{Repo: repo, Branch: branch, SHA: tt.sha, Snapshot: tt.snap}).String()
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("String() = %q, want prefix %q", got, tt.want)
		}
	}
}

func TestSkipLabelsIgnoreCase(t *testing.T) {
	cfg := "version: 1\nstages:\n  - name: prod\n    target: t\n"
	var s facts.Snapshot
	s.ConfigFound, s.Config = true, []byte(cfg)
	s.PR.Labels = []string{"No-Deploy-To-Prod"}
	out := Evaluate(Input{Repo: "acme/api", Branch: "main", SHA: "abc", Preview: true, Snapshot: s})
	if len(out.Stages) != 1 || !out.Stages[0].Skipped {
		t.Fatalf("stages = %+v; GitHub label names are case-insensitive, so prod is skipped", out.Stages)
	}
}

// A stage that needs approval says so, with the command that gives it,
// in the preview, the merge verdict and bot plan alike.
func TestEvaluateStageNeedingApproval(t *testing.T) {
	cfg := "version: 1\nstages:\n  - {name: qa, target: spinnaker-qa}\n  - {name: prod, target: spinnaker-prod, approval: true}\n"
	got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snapshot(withConfig(cfg))})
	if len(got.Stages) != 2 || got.Stages[0].Approve != "" || got.Stages[1].Approve != "prod" {
		t.Fatalf("Stages = %+v; want prod to need approval", got.Stages)
	}
	if s := got.Stages[1].State("would deploy"); s != "would deploy once approved (/shipbot approve prod)" {
		t.Errorf("State = %q", s)
	}
	skipped := got.Stages[1]
	skipped.Skipped = true
	if s := skipped.State("would deploy"); s != "skipped (label no-deploy-to-prod)" {
		t.Errorf("a skipped stage that needs approval reads %q; the skip wins", s)
	}
}
