package report_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/gate"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/release"
	"github.com/shipbot/shipbot/internal/report"
)

// multiRepo is a `pipelines:` configuration: api and web.
var multiRepo = config.Repo{Version: 1, Multi: true, Pipelines: []config.Pipeline{
	{Name: "api", Paths: []string{"services/api/**", "libs/go/**"}, Ignore: []string{"**/*.md"}},
	{Name: "web", Paths: []string{"services/web/**"}},
}}

// twoPipelines is a merge that releases both: api a new minor version with
// prod skipped by its pipeline's label, web its tag already on the commit.
func twoPipelines() plan.Outcome {
	return plan.Outcome{
		Kind: plan.Release, Config: multiRepo, Files: 2, Gate: gate.Decision{Allowed: true},
		Pipelines: []plan.PipelinePlan{
			{
				Name: "api", Version: semver.MustParse("1.3.0"), Tag: "api/v1.3.0", PrevTag: "api/v1.2.3",
				Choice: release.Choice{Bump: release.Minor, Reason: `title "feat: search" is a feature: minor`},
				Stages: []plan.Stage{
					{Name: "qa", Target: "spinnaker-api-qa", SkipLabel: "no-deploy-to-qa"},
					{Name: "prod", Target: "spinnaker-api-prod", SkipLabel: "no-deploy-to-api/prod", Skipped: true},
				},
			},
			{
				Name: "web", Version: semver.MustParse("0.1.0"), Tag: "web/v0.1.0", Reused: true,
				Stages: []plan.Stage{{Name: "prod", Target: "web-deploy", SkipLabel: "no-deploy-to-prod"}},
			},
		},
	}
}

func TestMultiRendered(t *testing.T) {
	o := twoPipelines()
	urls := []string{"https://github.com/acme/mono/releases/tag/api/v1.3.0", "https://github.com/acme/mono/releases/tag/web/v0.1.0"}
	incomplete := twoPipelines()
	incomplete.Notes = []string{"GitHub lists at most 3,000 files of a pull request and this one changes 3,500, so which pipelines it touches cannot be told: every pipeline runs."}
	none := plan.Outcome{Kind: plan.NoPipeline, Config: multiRepo, Files: 3, Gate: gate.Decision{Allowed: true}}
	noRelease := plan.Outcome{Kind: plan.NoRelease, Config: multiRepo, Pipelines: []plan.PipelinePlan{{Name: "api"}, {Name: "web"}}}
	refused := plan.Outcome{Kind: plan.Refused, Config: multiRepo, Gate: gate.Decision{Reasons: []string{"no approval"}}, Pipelines: twoPipelines().Pipelines}
	for i := range refused.Pipelines {
		p := &refused.Pipelines[i]
		p.Version, p.Tag, p.PrevTag, p.Reused, p.Choice = nil, "", "", false, release.Choice{}
	}
	for _, tc := range []struct {
		name                      string
		got                       report.CheckOutput
		status, conclusion, title string
		has, hasNot               []string
	}{
		{"merge released", report.MergeOutcome(o, urls...), "in_progress", "", "Released api/v1.3.0, web/v0.1.0", []string{
			"Released 2 pipelines:\n\n#### api\n\nReleased [api/v1.3.0](https://github.com/acme/mono/releases/tag/api/v1.3.0) (title \"feat: search\" is a feature: minor).\n\n",
			"| qa | spinnaker-api-qa | queued |\n| prod | spinnaker-api-prod | skipped (label no-deploy-to-api/prod) |\n",
			"#### web\n\nReleased [web/v0.1.0](https://github.com/acme/mono/releases/tag/web/v0.1.0) (already tagged on this commit).\n\n| stage |",
			"| prod | web-deploy | queued |",
		}, []string{"Notes:"}},
		{"merge released, one URL", report.MergeOutcome(o, urls[0]), "in_progress", "", "Released api/v1.3.0, web/v0.1.0", []string{
			"[api/v1.3.0](https://github.com/acme/mono/releases/tag/api/v1.3.0)", "Released web/v0.1.0 (already",
		}, nil},
		{"merge incomplete", report.MergeOutcome(incomplete), "in_progress", "", "Released api/v1.3.0, web/v0.1.0", []string{
			"Notes:\n\n- GitHub lists at most 3,000 files of a pull request and this one changes 3,500",
		}, nil},
		{"merge no pipeline", report.MergeOutcome(none), "completed", "neutral", "Nothing released: no pipeline affected", []string{
			"none of the 3 files this pull request changes starts a pipeline",
			"| pipeline | paths | ignore |\n|---|---|---|\n| api | services/api/\\*\\*, libs/go/\\*\\* | \\*\\*/\\*.md |\n| web | services/web/\\*\\* |  |\n",
		}, nil},
		{"merge semver:none", report.MergeOutcome(noRelease), "completed", "neutral", "No release (semver:none)", []string{"(it touches api, web)"}, nil},
		{"merge refused", report.MergeOutcome(refused), "completed", "action_required", "Refused by the merge gate: nothing released", []string{"- no approval"}, nil},
		{"preview released", report.PreviewOutcome(o), "completed", "success", "A merge would release api/v1.3.0, web/v0.1.0", []string{
			"A merge now would run 2 pipelines:\n\n#### api\n\nA merge now would release **api/v1.3.0** (title",
			"| prod | spinnaker-api-prod | skipped (label no-deploy-to-api/prod) |",
			"#### web\n\n", "| prod | web-deploy | would deploy |",
		}, nil},
		{"preview incomplete", report.PreviewOutcome(incomplete), "completed", "success", "A merge would release api/v1.3.0, web/v0.1.0", []string{"every pipeline runs"}, nil},
		{"preview no pipeline", report.PreviewOutcome(none), "completed", "neutral", "A merge would release nothing: no pipeline affected", []string{
			"A merge would release and deploy nothing: none of the 3 files", "| web | services/web/\\*\\* |  |",
		}, nil},
		{"preview refused", report.PreviewOutcome(refused), "completed", "neutral", "A merge now would not deploy", []string{
			"- no approval", "Once the gate passes, a merge would run 2 pipelines:", "#### api", "| qa | spinnaker-api-qa | would deploy |",
		}, nil},
		{"preview semver:none", report.PreviewOutcome(noRelease), "completed", "neutral", "semver:none: no release", []string{"(it touches api, web)"}, nil},
		{"invalid as in the single form", report.MergeOutcome(plan.Outcome{Kind: plan.Invalid, Config: multiRepo, Problems: []string{"conflicting labels"}}),
			"completed", "failure", "Invalid configuration: nothing released", []string{"- conflicting labels"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.got
			if g.Status != tc.status || g.Conclusion != tc.conclusion || g.Title != tc.title {
				t.Errorf("status/conclusion/title = %s/%s/%q; want %s/%s/%q", g.Status, g.Conclusion, g.Title, tc.status, tc.conclusion, tc.title)
			}
			for _, s := range tc.has {
				if !strings.Contains(g.Summary, s) {
					t.Errorf("summary lacks %q:\n%s", s, g.Summary)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(g.Summary, s) {
					t.Errorf("summary has %q:\n%s", s, g.Summary)
				}
			}
		})
	}
}

func TestMultiReleasedWithoutStagesSucceeds(t *testing.T) {
	o := twoPipelines()
	for i := range o.Pipelines {
		o.Pipelines[i].Stages = nil
	}
	if c := report.MergeOutcome(o); c.Status != "completed" || c.Conclusion != "success" || strings.Count(c.Summary, "the release is the whole rollout") != 2 {
		t.Errorf("%s/%s:\n%s", c.Status, c.Conclusion, c.Summary)
	}
}

func TestMultiMergeComment(t *testing.T) {
	c := report.MergeComment(twoPipelines(), "https://x/api", "https://x/web")
	for _, want := range []string{
		"### shipbot\n\nReleased 2 pipelines:\n\n#### api\n\nReleased **[api/v1.3.0](https://x/api)** (title",
		"Labels: no-deploy-to-api/prod skips prod.",
		"#### web\n\nReleased **[web/v0.1.0](https://x/web)** (already tagged on this commit).",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	none := report.MergeComment(plan.Outcome{Kind: plan.NoPipeline, Config: multiRepo, Files: 1})
	if !strings.Contains(none, "**Nothing released**: none of the 1 file this pull request changes starts a pipeline") || !strings.Contains(none, "| api |") {
		t.Errorf("no-pipeline comment:\n%s", none)
	}
	refused := report.MergeComment(plan.Outcome{Kind: plan.Refused, Config: multiRepo, Gate: gate.Decision{Reasons: []string{"no approval"}}, Notes: []string{"every pipeline runs"}})
	if !strings.Contains(refused, "**Not deployed**") || !strings.Contains(refused, "- every pipeline runs") {
		t.Errorf("refusal comment:\n%s", refused)
	}
}

// Pipeline names, paths and stage names come from the repository's file:
// escaped like any text from outside.
func TestMultiOutsideTextIsEscaped(t *testing.T) {
	name := "@acme-security<!--x-->![p](evil)"
	o := twoPipelines()
	o.Pipelines[0].Name = name
	o.Pipelines[0].Stages[0].Name = "qa|<img>"
	o.Config.Pipelines = slices.Clone(o.Config.Pipelines)
	o.Config.Pipelines[0].Name = name
	o.Config.Pipelines[0].Paths = []string{"<!--|@acme-x"}
	none := plan.Outcome{Kind: plan.NoPipeline, Config: o.Config, Files: 1}
	for what, md := range map[string]string{
		"rollout":             report.MergeOutcome(o, "https://x/a", "https://x/b").Summary,
		"preview":             report.PreviewOutcome(o).Summary,
		"comment":             report.MergeComment(o, "https://x/a", "https://x/b"),
		"rollout no pipe":     report.MergeOutcome(none).Summary,
		"preview no pipe":     report.PreviewOutcome(none).Summary,
		"comment no pipe":     report.MergeComment(none),
		"preview semver:none": report.PreviewOutcome(plan.Outcome{Kind: plan.NoRelease, Config: o.Config, Pipelines: o.Pipelines}).Summary,
	} {
		columns := 3
		checkHostile(t, what, md, columns, name)
		if strings.Contains(md, "@acme-") || strings.Contains(md, "![") {
			t.Errorf("%s: unescaped:\n%s", what, md)
		}
	}
}
