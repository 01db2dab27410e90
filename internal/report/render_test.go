package report_test

import (
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/shipbot/shipbot/internal/gate"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/release"
	"github.com/shipbot/shipbot/internal/report"
)

func TestRenderedVerdicts(t *testing.T) {
	released := plan.Outcome{
		Kind: plan.Release, Version: semver.MustParse("1.5.0"), Tag: "v1.5.0",
		Choice: release.Choice{Bump: release.Minor, Reason: "feat in the title"},
		Stages: []plan.Stage{{Name: "qa", Target: "spin-qa", SkipLabel: "no-deploy-to-qa"}, {Name: "prod", Target: "spin-prod", SkipLabel: "no-deploy-to-prod", Skipped: true}},
	}
	refused := plan.Outcome{Kind: plan.Refused, Gate: gate.Decision{Reasons: []string{"1 approval from someone other than the author is required; found 0"}, Notes: []string{"ignored a stale approval"}}}
	invalid := plan.Outcome{Kind: plan.Invalid, Problems: []string{".github/shipbot.yml:4:11: stages[0].bake: invalid duration"}}
	// A wave that needs approval: its targets, and the command that lets
	// the version in.
	gated := released
	gated.Stages = []plan.Stage{{Name: "prod", Target: "prod-eu, prod-us", SkipLabel: "no-deploy-to-prod", Approve: "prod"}}
	for _, tc := range []struct {
		name               string
		got                report.CheckOutput
		status, conclusion string
		title              string
		summaryHas, notHas []string
	}{
		{"released with stages", report.MergeOutcome(released, "https://x/releases/v1.5.0"), "in_progress", "", "Released v1.5.0",
			[]string{"[v1.5.0](https://x/releases/v1.5.0)", "feat in the title", "| qa | spin-qa | queued |", "| prod | spin-prod | skipped (label no-deploy-to-prod) |"}, nil},
		{"released, no stages", report.MergeOutcome(plan.Outcome{Kind: plan.Release, Tag: "v0.1.0"}, ""), "completed", "success", "Released v0.1.0",
			[]string{"the release is the whole rollout"}, []string{"| stage |"}},
		{"refused", report.MergeOutcome(refused, ""), "completed", "action_required", "Refused by the merge gate: nothing released",
			[]string{"- 1 approval from someone other than the author is required; found 0", "Notes:", "stale approval"}, nil},
		{"invalid", report.MergeOutcome(invalid, ""), "completed", "failure", "Invalid configuration: nothing released",
			[]string{`- .github/shipbot.yml:4:11: stages\[0\].bake: invalid duration`}, nil},
		{"not configured", report.MergeOutcome(plan.Outcome{Kind: plan.NoConfig}, ""), "completed", "neutral", "Not configured", []string{".github/shipbot.yml"}, nil},
		{"semver:none", report.MergeOutcome(plan.Outcome{Kind: plan.NoRelease}, ""), "completed", "neutral", "No release (semver:none)", nil, nil},
		{"preview release", report.PreviewOutcome(released), "completed", "success", "A merge would release v1.5.0", []string{"| qa | spin-qa | would deploy |"}, nil},
		{"preview of a wave that needs approval", report.PreviewOutcome(gated), "completed", "success", "A merge would release v1.5.0",
			[]string{"| prod | prod-eu, prod-us | would deploy once approved (/shipbot approve prod) |"}, nil},
		{"merge of a wave that needs approval", report.MergeOutcome(gated, ""), "in_progress", "", "Released v1.5.0",
			[]string{"| prod | prod-eu, prod-us | queued once approved (/shipbot approve prod) |"}, nil},
		{"preview refused is neutral", report.PreviewOutcome(refused), "completed", "neutral", "A merge now would not deploy", []string{"refused by the gate"}, nil},
		{"preview invalid", report.PreviewOutcome(invalid), "completed", "failure", "Invalid configuration", []string{"4:11"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.got
			if g.Status != tc.status || g.Conclusion != tc.conclusion || g.Title != tc.title {
				t.Errorf("status/conclusion/title = %s/%s/%q; want %s/%s/%q", g.Status, g.Conclusion, g.Title, tc.status, tc.conclusion, tc.title)
			}
			for _, s := range tc.summaryHas {
				if !strings.Contains(g.Summary, s) {
					t.Errorf("summary lacks %q:\n%s", s, g.Summary)
				}
			}
			for _, s := range tc.notHas {
				if strings.Contains(g.Summary, s) {
					t.Errorf("summary has %q:\n%s", s, g.Summary)
				}
			}
		})
	}
}

func TestMergeComment(t *testing.T) {
	c := report.MergeComment(plan.Outcome{
		Kind: plan.Release, Tag: "v2.0.0",
		Stages: []plan.Stage{{Name: "qa", Target: "t", SkipLabel: "no-deploy-to-qa", Skipped: true}},
	}, "https://x/r")
	for _, want := range []string{"Released **[v2.0.0](https://x/r)**", "Labels: no-deploy-to-qa skips qa."} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	if r := report.MergeComment(plan.Outcome{Kind: plan.Refused, Gate: gate.Decision{Reasons: []string{"no approval"}}}, ""); !strings.Contains(r, "**Not deployed**") || !strings.Contains(r, "- no approval") {
		t.Errorf("refusal comment:\n%s", r)
	}
}
