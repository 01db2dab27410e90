package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/facts"
)

// multiConfig is the `pipelines:` form: api (conventional bumps, two
// stages, Markdown ignored) and web (patch bumps, one stage).
const multiConfig = `version: 1
pipelines:
  - name: api
    paths: ["services/api/**", "libs/go/**"]
    ignore: ["**/*.md"]
    stages:
      - {name: qa, target: spinnaker-api-qa}
      - {name: prod, target: spinnaker-api-prod}
  - name: web
    paths: ["services/web/**"]
    release: {bump: patch}
    stages:
      - {name: prod, target: web-deploy}
`

// changed sets the pull request's files, as GitHub listed them all.
func changed(files ...string) func(*facts.Snapshot) {
	return func(s *facts.Snapshot) {
		s.Config = []byte(multiConfig)
		s.Files, s.FilesComplete = files, true
		s.PR.ChangedFiles = len(files)
	}
}

// pipe is what a case checks of one PipelinePlan.
type pipe struct {
	name, tag, prevTag string
	reused             bool
	skipped            []string // "stage" or "stage by label"
}

func TestEvaluatePipelines(t *testing.T) {
	tests := []struct {
		name    string
		snap    facts.Snapshot
		preview bool
		kind    Kind
		pipes   []pipe
		notes   []string // substrings, one per note
		files   int
	}{
		{
			name: "one service touched: only its pipeline, first release",
			snap: snapshot(changed("services/api/main.go", "README.md"), tags("v9.0.0", "web/v2.0.0")),
			kind: Release, files: 2,
			pipes: []pipe{{name: "api", tag: "api/v0.1.0"}},
		},
		{
			name: "one service touched: its own version line",
			snap: snapshot(changed("libs/go/x/y.go"), title("feat: widgets"), tags("v9.0.0", "api/v1.2.3", "api/v1.10.0-rc.1", "web/v4.0.0")),
			kind: Release, files: 1,
			pipes: []pipe{{name: "api", tag: "api/v1.3.0", prevTag: "api/v1.2.3"}},
		},
		{
			name: "two touched: both, each its own bump rule",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), title("feat: widgets"), tags("api/v1.2.3", "web/v2.0.0")),
			kind: Release, files: 2,
			pipes: []pipe{{name: "api", tag: "api/v1.3.0", prevTag: "api/v1.2.3"}, {name: "web", tag: "web/v2.0.1", prevTag: "web/v2.0.0"}},
		},
		{
			name: "semver labels apply to every pipeline",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), title("fix: x"), labels("semver:major"), tags("api/v1.2.3", "web/v2.0.0")),
			kind: Release, files: 2,
			pipes: []pipe{{name: "api", tag: "api/v2.0.0", prevTag: "api/v1.2.3"}, {name: "web", tag: "web/v3.0.0", prevTag: "web/v2.0.0"}},
		},
		{
			name: "only ignored and unmatched files: no pipeline",
			snap: snapshot(changed("services/api/README.md", "docs/x.md", ".github/workflows/ci.yml")),
			kind: NoPipeline, files: 3,
		},
		{
			name: "no files at all: no pipeline (every pipeline has paths)",
			snap: snapshot(changed()),
			kind: NoPipeline,
		},
		{
			name: "incomplete list: every pipeline runs, and says why",
			snap: snapshot(changed("docs/x.md"), func(s *facts.Snapshot) { s.FilesComplete, s.PR.ChangedFiles = false, 3500 }),
			kind: Release, files: 1,
			pipes: []pipe{{name: "api", tag: "api/v0.1.0"}, {name: "web", tag: "web/v0.1.0"}},
			notes: []string{"GitHub lists at most 3,000 files of a pull request and this one changes 3,500"},
		},
		{
			name: "a plain skip label skips the stage in every pipeline having it",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), labels("no-deploy-to-prod")),
			kind: Release, files: 2,
			pipes: []pipe{
				{name: "api", tag: "api/v0.1.0", skipped: []string{"prod by no-deploy-to-prod"}},
				{name: "web", tag: "web/v0.1.0", skipped: []string{"prod by no-deploy-to-prod"}},
			},
		},
		{
			name: "a pipeline's skip label skips it there only",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), labels("No-Deploy-To-Api/Prod", "no-deploy-to-web/qa")),
			kind: Release, files: 2,
			pipes: []pipe{
				{name: "api", tag: "api/v0.1.0", skipped: []string{"prod by no-deploy-to-api/prod"}},
				{name: "web", tag: "web/v0.1.0"},
			},
		},
		{
			name: "a tag on the merge commit is reused for its pipeline; the other cuts a new one",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), title("feat: x"),
				tags("api/v1.2.2", "api/v1.2.3@"+mergeSHA, "web/v2.0.0", "v7.0.0@"+mergeSHA)),
			kind: Release, files: 2,
			pipes: []pipe{
				{name: "api", tag: "api/v1.2.3", prevTag: "api/v1.2.2", reused: true},
				{name: "web", tag: "web/v2.0.1", prevTag: "web/v2.0.0"},
			},
		},
		{
			name: "reused while semver:none holds for the other: only the reused one runs",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), labels("semver:none"),
				tags("api/v1.2.3@"+mergeSHA, "web/v2.0.0")),
			kind: Release, files: 2,
			pipes: []pipe{{name: "api", tag: "api/v1.2.3", reused: true}},
		},
		{
			name:    "preview never reuses",
			snap:    snapshot(unmerged, changed("services/api/main.go"), tags("api/v1.2.3@"+headSHA)),
			preview: true,
			kind:    Release, files: 1,
			pipes: []pipe{{name: "api", tag: "api/v1.2.4", prevTag: "api/v1.2.3"}},
		},
		{
			name: "semver:none: no release, pipelines listed without versions",
			snap: snapshot(changed("services/web/app.ts", "services/api/main.go"), labels("semver:none")),
			kind: NoRelease, files: 2,
			pipes: []pipe{{name: "api"}, {name: "web"}},
		},
		{
			name: "refused: the gate first, pipelines listed with their stages",
			snap: snapshot(changed("services/api/main.go"), reviews(), labels("no-deploy-to-qa")),
			kind: Refused, files: 1,
			pipes: []pipe{{name: "api", skipped: []string{"qa by no-deploy-to-qa"}}},
		},
		{
			name: "refused before no pipeline",
			snap: snapshot(changed("docs/x.md"), reviews()),
			kind: Refused, files: 1,
		},
		{
			name:  "no pull request: every pipeline, refused",
			snap:  snapshot(changed(), noPR),
			kind:  Refused,
			pipes: []pipe{{name: "api"}, {name: "web"}},
			notes: []string{"Without a pull request the changed files are unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sha := mergeSHA
			if tt.preview {
				sha = headSHA
			}
			got := Evaluate(Input{Repo: repo, Branch: branch, SHA: sha, Preview: tt.preview, Snapshot: tt.snap})
			if got.Kind != tt.kind {
				t.Fatalf("Kind = %s, want %s (%s; reasons %q, problems %q)", got.Kind, tt.kind, got, got.Gate.Reasons, got.Problems)
			}
			if !got.Config.Multi {
				t.Fatal("Config.Multi is false")
			}
			var pipes []pipe
			for _, p := range got.Pipelines {
				q := pipe{name: p.Name, tag: p.Tag, prevTag: p.PrevTag, reused: p.Reused}
				if (p.Version == nil) != (p.Tag == "") || (p.Version != nil && !strings.HasSuffix(p.Tag, p.Version.String())) {
					t.Errorf("%s: Version %v does not match Tag %q", p.Name, p.Version, p.Tag)
				}
				if p.Version != nil && !p.Reused && p.Choice.Reason == "" {
					t.Errorf("%s: new release without a Choice.Reason", p.Name)
				}
				for _, s := range p.Stages {
					if s.Skipped {
						q.skipped = append(q.skipped, s.Name+" by "+s.SkipLabel)
					}
				}
				pipes = append(pipes, q)
			}
			if diff := cmp.Diff(tt.pipes, pipes, cmp.AllowUnexported(pipe{})); diff != "" {
				t.Errorf("Pipelines mismatch (-want +got):\n%s", diff)
			}
			if len(got.Notes) != len(tt.notes) {
				t.Errorf("Notes = %q, want %d", got.Notes, len(tt.notes))
			}
			for i, n := range tt.notes {
				if i < len(got.Notes) && !strings.Contains(got.Notes[i], n) {
					t.Errorf("Notes[%d] = %q, want it to contain %q", i, got.Notes[i], n)
				}
			}
			if got.Files != tt.files {
				t.Errorf("Files = %d, want %d", got.Files, tt.files)
			}
			// The top-level fields are the single form's.
			if got.Version != nil || got.Tag != "" || got.PrevTag != "" || got.Reused || got.Stages != nil || got.Choice.Reason != "" {
				t.Errorf("top-level fields set in the pipelines form: %v %q %q %v %v %q", got.Version, got.Tag, got.PrevTag, got.Reused, got.Stages, got.Choice.Reason)
			}
		})
	}
}

func TestEvaluatePipelinesStages(t *testing.T) {
	got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA,
		Snapshot: snapshot(changed("services/api/main.go", "services/web/x"), labels("no-deploy-to-api/qa"))})
	want := []PipelinePlan{
		{Name: "api", Stages: []Stage{
			{Name: "qa", Target: "spinnaker-api-qa", SkipLabel: "no-deploy-to-api/qa", Skipped: true},
			{Name: "prod", Target: "spinnaker-api-prod", SkipLabel: "no-deploy-to-prod"},
		}},
		{Name: "web", Stages: []Stage{{Name: "prod", Target: "web-deploy", SkipLabel: "no-deploy-to-prod"}}},
	}
	for i := range got.Pipelines {
		got.Pipelines[i].Version, got.Pipelines[i].Tag, got.Pipelines[i].Choice = nil, "", want[i].Choice
	}
	if diff := cmp.Diff(want, got.Pipelines); diff != "" {
		t.Errorf("Pipelines mismatch (-want +got):\n%s", diff)
	}
}

// A bad semver label is the pull request's: one problem, not one per
// pipeline, and no pipeline named.
func TestEvaluatePipelinesBadLabels(t *testing.T) {
	got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA,
		Snapshot: snapshot(changed("services/api/main.go", "services/web/x"), labels("semver:minor", "semver:patch"))})
	if got.Kind != Invalid || len(got.Problems) != 1 || !strings.HasPrefix(got.Problems[0], "conflicting labels semver:minor, semver:patch") || got.Pipelines != nil {
		t.Errorf("Kind %s, Problems %q, Pipelines %+v; want one label problem", got.Kind, got.Problems, got.Pipelines)
	}
}

// The single-pipeline form: Pipelines holds its one pipeline, and the
// top-level fields repeat it.
func TestEvaluateSingleFormPipelines(t *testing.T) {
	for _, snap := range []facts.Snapshot{
		snapshot(title("feat: x"), tags("v1.2.3"), labels("no-deploy-to-qa")),
		snapshot(tags("v1.2.3@" + mergeSHA)),
		snapshot(reviews()),
		snapshot(labels("semver:none")),
	} {
		got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snap})
		if len(got.Pipelines) != 1 {
			t.Fatalf("%s: %d pipelines, want 1", got, len(got.Pipelines))
		}
		p := got.Pipelines[0]
		if p.Name != "api" || p.Version != got.Version || p.Tag != got.Tag || p.PrevTag != got.PrevTag || p.Reused != got.Reused ||
			p.Choice != got.Choice || !slices.Equal(p.Stages, got.Stages) || got.Stages == nil {
			t.Errorf("%s: Pipelines[0] = %+v\ntop level %v %q %q %v %+v %+v", got, p, got.Version, got.Tag, got.PrevTag, got.Reused, got.Choice, got.Stages)
		}
		if got.Files != 0 || got.Notes != nil {
			t.Errorf("%s: Files %d, Notes %q in the single form", got, got.Files, got.Notes)
		}
	}
}

func TestOutcomeStringPipelines(t *testing.T) {
	got := Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA,
		Snapshot: snapshot(changed("services/api/main.go", "services/web/x"), title("feat: x"), tags("api/v1.0.0@"+mergeSHA))}).String()
	if want := `release api/v1.0.0 (already tagged), web/v0.1.0 (bump mode "patch": patch)`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	got = Evaluate(Input{Repo: repo, Branch: branch, SHA: mergeSHA, Snapshot: snapshot(changed("docs/a.md", "b"))}).String()
	if want := "no pipeline affected (2 files changed)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
