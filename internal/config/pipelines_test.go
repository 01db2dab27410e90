package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-cmp/cmp"
)

// designMonorepo is the `pipelines:` example from design.md, verbatim.
const designMonorepo = `version: 1
gate: {approvals: 1, require_protected_branch: true, require_checks: true}   # shared by every pipeline
pipelines:
  - name: api
    paths: ["services/api/**", "libs/go/**"]     # globs (` + "`**`" + ` crosses directories); omitted: every merge
    ignore: ["**/*.md"]                            # optional: files that never start this pipeline
    concurrency: queue
    release: {tag_prefix: "api/v", initial: 0.1.0, bump: conventional}
    stages:
      - {name: qa, target: spinnaker-api-qa}
      - {name: prod, target: spinnaker-api-prod}
  - name: web
    paths: ["services/web/**"]
    stages:
      - {name: prod, target: web-deploy}
`

func stageAt(name, target string, line int) Stage {
	return Stage{Name: name, Target: target, Timeout: DefaultStageTimeout, SkipLabel: DefaultSkipLabel(name), Line: line}
}

func TestParseRepoDesignMonorepo(t *testing.T) {
	got, err := ParseRepo(RepoFile, []byte(designMonorepo), "ignored")
	if err != nil {
		t.Fatalf("ParseRepo: %v", err)
	}
	want := Repo{
		Version: 1,
		Gate:    Gate{Approvals: 1, RequireProtectedBranch: true, RequireChecks: true},
		Multi:   true,
		Pipelines: []Pipeline{
			{
				Name: "api", Paths: []string{"services/api/**", "libs/go/**"}, Ignore: []string{"**/*.md"},
				Concurrency: ConcurrencyQueue,
				Release:     Release{TagPrefix: "api/v", Initial: semver.MustParse("0.1.0"), Bump: BumpConventional},
				Stages:      []Stage{stageAt("qa", "spinnaker-api-qa", 10), stageAt("prod", "spinnaker-api-prod", 11)},
				Line:        4,
			},
			{
				Name: "web", Paths: []string{"services/web/**"},
				Concurrency: ConcurrencyQueue,
				Release:     Release{TagPrefix: "web/v", Initial: semver.MustParse("0.1.0"), Bump: BumpConventional},
				Stages:      []Stage{stageAt("prod", "web-deploy", 15)},
				Line:        12,
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseRepo mismatch (-want +got):\n%s", diff)
	}
	web, ok := got.Pipeline("web")
	if !ok || web.Line != 12 {
		t.Fatalf("Pipeline(web) = %+v, %v", web, ok)
	}
	if s, ok := web.Stage("prod"); !ok || s.Target != "web-deploy" {
		t.Errorf("web.Stage(prod) = %+v, %v", s, ok)
	}
	if _, ok := web.Stage("qa"); ok {
		t.Error("web.Stage(qa) found; qa is api's")
	}
}

func TestParseRepoMultiDefaults(t *testing.T) {
	yml := `version: 1
pipelines:
  - name: everything
  - name: docs
    ignore: []
    concurrency: latest
    release: {tag_prefix: "", bump: patch}
    stages: []
`
	got, err := ParseRepo("f.yml", []byte(yml), "repo")
	if err != nil {
		t.Fatalf("ParseRepo: %v", err)
	}
	want := Repo{
		Version: 1, Multi: true, Gate: defaultGate(),
		Pipelines: []Pipeline{
			{Name: "everything", Concurrency: ConcurrencyQueue, Line: 3,
				Release: Release{TagPrefix: "everything/v", Initial: semver.MustParse(DefaultInitial), Bump: BumpConventional}},
			{Name: "docs", Ignore: []string{}, Concurrency: ConcurrencyLatest, Stages: []Stage{}, Line: 4,
				Release: Release{TagPrefix: "", Initial: semver.MustParse(DefaultInitial), Bump: BumpPatch}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRepoNewShapesErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // full error lines, in order
	}{
		// Waves.
		{"target and targets", "version: 1\nstages:\n  - {name: qa, target: t, targets: [a]}\n", []string{
			`f.yml:3:27: stages[0].targets: a stage has either target (one) or targets (a wave), not both`}},
		{"empty wave", "version: 1\nstages:\n  - {name: qa, targets: []}\n", []string{
			`f.yml:3:25: stages[0].targets: must list at least one target`}},
		{"wave duplicates and blanks", "version: 1\nstages:\n  - name: qa\n    targets: [a, b, a, '', [x]]\n", []string{
			`f.yml:4:21: stages[0].targets[2]: duplicate target "a" (first at line 4)`,
			`f.yml:4:24: stages[0].targets[3]: target name must not be empty`,
			`f.yml:4:28: stages[0].targets[4]: must be a string, got a list`,
		}},
		{"wave not a list", "version: 1\nstages:\n  - {name: qa, targets: a}\n", []string{
			`f.yml:3:25: stages[0].targets: must be a list, got a string`}},
		{"wave too wide", "version: 1\nstages:\n  - name: qa\n    targets: [" + seq("t", MaxWaveTargets+1) + "]\n", []string{
			`f.yml:4:14: stages[0].targets: 21 targets; at most 20 are allowed in one stage`}},
		// Approvals.
		{"approvers without approval", "version: 1\nstages:\n  - {name: qa, target: t, approvers: [alice]}\n", []string{
			`f.yml:3:27: stages[0].approvers: approvers needs approval: true`}},
		{"approvers with approval false", "version: 1\nstages:\n  - name: qa\n    target: t\n    approval: false\n    approvers: [alice]\n", []string{
			`f.yml:6:5: stages[0].approvers: approvers needs approval: true`}},
		{"approval not a bool", "version: 1\nstages:\n  - {name: qa, target: t, approval: yes}\n", []string{
			`f.yml:3:37: stages[0].approval: must be true or false, got a string`}},
		{"bad approvers", "version: 1\nstages:\n  - name: qa\n    target: t\n    approval: true\n    approvers:\n" +
			"      - alice\n      - -bob\n      - a--b\n      - carol-\n      - " + strings.Repeat("x", 40) + "\n      - acme/team\n      - \"@acme\"\n      - \"@acme/\"\n      - \"@-acme/t\"\n      - \"@acme/re lease\"\n      - ALICE\n      - \"@acme/ok\"\n", []string{
			`f.yml:8:9: stages[0].approvers[1]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "-bob"`,
			`f.yml:9:9: stages[0].approvers[2]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "a--b"`,
			`f.yml:10:9: stages[0].approvers[3]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "carol-"`,
			`f.yml:11:9: stages[0].approvers[4]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "` + strings.Repeat("x", 40) + `"`,
			`f.yml:12:9: stages[0].approvers[5]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "acme/team"`,
			`f.yml:13:9: stages[0].approvers[6]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "@acme"`,
			`f.yml:14:9: stages[0].approvers[7]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "@acme/"`,
			`f.yml:15:9: stages[0].approvers[8]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "@-acme/t"`,
			`f.yml:16:9: stages[0].approvers[9]: must be a GitHub login (letters, digits and single hyphens, at most 39 characters) or a team as @org/team-slug, got "@acme/re lease"`,
			`f.yml:17:9: stages[0].approvers[10]: duplicate approver "ALICE" (first at line 7)`,
		}},
		{"empty approvers", "version: 1\nstages:\n  - {name: qa, target: t, approval: true, approvers: []}\n", []string{
			`f.yml:3:54: stages[0].approvers: must list at least one user or team; leave approvers out to let anyone with maintain approve`}},
		// The pipelines: form.
		{"both forms", "version: 1\npipeline: api\nconcurrency: latest\nrelease: {bump: patch}\nstages: []\npipelines:\n  - name: api\n", []string{
			"f.yml:2:1: pipeline: belongs to the single-pipeline form, but this file uses `pipelines:` (line 6); a file has one form or the other: set it in each pipeline instead",
			"f.yml:3:1: concurrency: belongs to the single-pipeline form, but this file uses `pipelines:` (line 6); a file has one form or the other: set it in each pipeline instead",
			"f.yml:4:1: release: belongs to the single-pipeline form, but this file uses `pipelines:` (line 6); a file has one form or the other: set it in each pipeline instead",
			"f.yml:5:1: stages: belongs to the single-pipeline form, but this file uses `pipelines:` (line 6); a file has one form or the other: set it in each pipeline instead",
		}},
		{"no pipelines", "version: 1\npipelines: []\n", []string{`f.yml:2:12: pipelines: must list at least one pipeline`}},
		{"pipelines not a list", "version: 1\npipelines: {api: {}}\n", []string{`f.yml:2:12: pipelines: must be a list, got a mapping`}},
		{"pipeline not a mapping", "version: 1\npipelines: [api]\n", []string{`f.yml:2:13: pipelines[0]: must be a mapping, got a string`}},
		{"pipeline without name", "version: 1\npipelines:\n  - paths: [a]\n", []string{`f.yml:3:5: pipelines[0].name: required`}},
		{"pipeline names", "version: 1\npipelines:\n  - name: a/b\n  - name: a b\n  - name: ok\n  - name: ok\n  - name: ''\n", []string{
			`f.yml:3:11: pipelines[0].name: must not contain /, which separates a pipeline from its stage (as in api/prod), got "a/b"`,
			`f.yml:4:11: pipelines[1].name: must be 1 to 100 characters without spaces, got "a b"`,
			`f.yml:6:11: pipelines[3].name: duplicate pipeline name "ok" (first at line 5)`,
			`f.yml:7:11: pipelines[4].name: must be 1 to 100 characters without spaces, got ""`,
		}},
		{"name makes a bad tag prefix", "version: 1\npipelines:\n  - name: a..b\n  - {name: c:d, release: {tag_prefix: cd-}}\n", []string{
			`f.yml:3:11: pipelines[0].name: makes the default tag prefix "a..b/v", which must be valid in a git tag name (no ~ ^ : ? * [ \ .. @{ //); rename the pipeline or set release.tag_prefix`}},
		{"shared tag prefix", "version: 1\npipelines:\n  - {name: a, release: {tag_prefix: v}}\n  - {name: b, release: {tag_prefix: v}}\n  - {name: c, release: {tag_prefix: b/v}}\n  - name: b/v\n", []string{
			`f.yml:4:37: pipelines[1].release.tag_prefix: tag prefix "v" is also pipeline a's (line 3); each pipeline needs its own version sequence`,
			`f.yml:6:11: pipelines[3].name: must not contain /, which separates a pipeline from its stage (as in api/prod), got "b/v"`,
		}},
		{"default prefix collides", "version: 1\npipelines:\n  - {name: a, release: {tag_prefix: b/v}}\n  - name: b\n", []string{
			`f.yml:4:11: pipelines[1].release.tag_prefix: tag prefix "b/v" is also pipeline a's (line 3); each pipeline needs its own version sequence`}},
		{"pipeline errors use their path", "version: 1\npipelines:\n  - name: api\n    concurrency: fast\n    release: {bump: minor, initial: v1}\n    stages:\n      - {name: QA, target: t}\n      - {name: qa}\n    env: prod\n", []string{
			`f.yml:4:18: pipelines[0].concurrency: must be "queue" or "latest", got "fast"`,
			`f.yml:5:21: pipelines[0].release.bump: must be "conventional" or "patch", got "minor"`,
			`f.yml:5:37: pipelines[0].release.initial: must be a version like 0.1.0 without the tag prefix, got "v1"`,
			`f.yml:7:16: pipelines[0].stages[0].name: must match ^[a-z0-9][a-z0-9_-]*$ (lower case letters, digits, _ and -), got "QA"`,
			`f.yml:8:9: pipelines[0].stages[1].target: required (or targets: [a, b] for a wave)`,
			`f.yml:9:5: pipelines[0]: unknown key "env" (known keys: name, paths, ignore, concurrency, release, stages)`,
		}},
		{"paths and ignore", "version: 1\npipelines:\n  - name: api\n    paths: [\"/services/**\", \"./x\", \"a/[\", \"{a,b\", \"a/**\", \"a/**\", \"\", 3, [x]]\n    ignore: [\"b}\", \"**/*.md\"]\n", []string{
			`f.yml:4:13: pipelines[0].paths[0]: patterns are relative to the repository root, without a leading / or ./, got "/services/**"`,
			`f.yml:4:29: pipelines[0].paths[1]: patterns are relative to the repository root, without a leading / or ./, got "./x"`,
			`f.yml:4:36: pipelines[0].paths[2]: invalid glob "a/[": an unclosed [ or {, an empty [], or a trailing \`,
			`f.yml:4:43: pipelines[0].paths[3]: invalid glob "{a,b": an unclosed [ or {, an empty [], or a trailing \`,
			`f.yml:4:59: pipelines[0].paths[5]: duplicate pattern "a/**" (first at line 4)`,
			`f.yml:4:67: pipelines[0].paths[6]: pattern must not be empty`,
			`f.yml:4:74: pipelines[0].paths[8]: must be a string, got a list`,
			`f.yml:5:14: pipelines[0].ignore[0]: invalid glob "b}": an unclosed [ or {, an empty [], or a trailing \`,
		}},
		{"empty paths", "version: 1\npipelines:\n  - {name: api, paths: []}\n", []string{
			`f.yml:3:24: pipelines[0].paths: must list at least one pattern; leave paths out to run the pipeline on every merge`}},
		{"paths not a list", "version: 1\npipelines:\n  - {name: api, paths: 'services/**'}\n", []string{
			`f.yml:3:24: pipelines[0].paths: must be a list, got a string`}},
		{"costly glob", "version: 1\npipelines:\n  - name: api\n    paths: [\"" + strings.Repeat("{a,b}", 7) + "\"]\n", []string{
			`f.yml:4:13: pipelines[0].paths[0]: the {a,b} groups of "` + strings.Repeat("{a,b}", 7) + `" make more than 64 patterns; use fewer groups or list patterns separately`}},
		{"long glob", "version: 1\npipelines:\n  - name: api\n    paths: [" + strings.Repeat("a", 257) + "]\n", []string{
			`f.yml:4:13: pipelines[0].paths[0]: pattern is 257 characters; at most 256 are allowed`}},
		{"too many globs", "version: 1\npipelines:\n  - name: api\n    paths: [" + seq("p", MaxGlobs+1) + "]\n", []string{
			`f.yml:4:12: pipelines[0].paths: 31 patterns; at most 30 are allowed`}},
		{"paths in the single form", "version: 1\npaths: [a]\n", []string{
			`f.yml:2:1: unknown key "paths" (known keys: version, pipeline, concurrency, release, gate, stages, pipelines)`}},
		{"too many pipelines", "version: 1\npipelines:\n" + strings.Repeat("  - {}\n", MaxPipelines+1), append([]string{
			`f.yml:3:3: pipelines: 21 pipelines; at most 20 are allowed`}, requiredNames(MaxPipelines+1)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRepo("f.yml", []byte(tt.yaml), "api")
			if err == nil {
				t.Fatalf("ParseRepo succeeded: %+v", r)
			}
			if diff := cmp.Diff(Repo{}, r); diff != "" {
				t.Errorf("ParseRepo returned a non-zero Repo with an error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// seq is "p0, p1, …" with n items.
func seq(prefix string, n int) string {
	xs := make([]string, n)
	for i := range xs {
		xs[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return strings.Join(xs, ", ")
}

func requiredNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f.yml:%d:5: pipelines[%d].name: required", i+3, i)
	}
	return out
}

func TestParseRepoMultiTooManyStages(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\npipelines:\n")
	for p := range 3 {
		fmt.Fprintf(&b, "  - name: p%d\n    stages:\n", p)
		for i := range 17 {
			fmt.Fprintf(&b, "      - {name: s%d, target: t}\n", i)
		}
	}
	_, err := ParseRepo("f.yml", []byte(b.String()), "api")
	if err == nil || err.Error() != "f.yml:3:3: pipelines: 51 stages in all; at most 50 are allowed" {
		t.Errorf("err = %v", err)
	}
}

func TestStageTargets(t *testing.T) {
	one := Stage{Name: "qa", Target: "t"}
	if one.Wave() || !slices.Equal(one.TargetNames(), []string{"t"}) {
		t.Errorf("single: Wave %v, TargetNames %q", one.Wave(), one.TargetNames())
	}
	wave := Stage{Name: "prod", Targets: []string{"eu", "us"}}
	if !wave.Wave() || !slices.Equal(wave.TargetNames(), []string{"eu", "us"}) {
		t.Errorf("wave: Wave %v, TargetNames %q", wave.Wave(), wave.TargetNames())
	}
	if !(Stage{Targets: []string{"eu"}}).Wave() {
		t.Error("a wave of one target is still a wave")
	}
}

func TestAffects(t *testing.T) {
	api := Pipeline{Name: "api", Paths: []string{"services/api/**", "libs/go/**"}, Ignore: []string{"**/*.md"}}
	tests := []struct {
		name  string
		p     Pipeline
		files []string
		want  bool
	}{
		{"** crosses directories", api, []string{"services/api/x/y.go"}, true},
		{"directly under", api, []string{"services/api/main.go"}, true},
		{"second pattern", api, []string{"libs/go/util/strings.go"}, true},
		{"elsewhere", api, []string{"services/web/app.ts", "README"}, false},
		{"a prefix is not a directory", api, []string{"services/api2/main.go"}, false},
		{"ignored markdown under paths", api, []string{"services/api/README.md"}, false},
		{"ignored at any depth", api, []string{"services/api/docs/a/b/c.md"}, false},
		{"one file matched, another matched and ignored", api, []string{"services/api/README.md", "services/api/x.go"}, true},
		{"no files", api, nil, false},
		{"case matters", api, []string{"Services/API/x.go"}, false},
		{"no paths: every merge", Pipeline{}, []string{"anything/at/all.txt"}, true},
		{"no paths: even with no files", Pipeline{}, nil, true},
		{"no paths, ignore: all ignored", Pipeline{Ignore: []string{"**/*.md"}}, []string{"README.md", "docs/x.md"}, false},
		{"no paths, ignore: one not ignored", Pipeline{Ignore: []string{"**/*.md"}}, []string{"README.md", "main.go"}, true},
		{"no paths, ignore, no files", Pipeline{Ignore: []string{"**/*.md"}}, []string{}, true},
		{"empty ignore", Pipeline{Paths: []string{"a/*"}, Ignore: []string{}}, []string{"a/b"}, true},
		{"* stays in a directory", Pipeline{Paths: []string{"a/*"}}, []string{"a/b/c"}, false},
		{"alternatives", Pipeline{Paths: []string{"{api,web}/**/*.go"}}, []string{"web/x.go"}, true},
		{"class", Pipeline{Paths: []string{"v[0-9]/**"}}, []string{"v2/x"}, true},
		{"invalid pattern matches nothing", Pipeline{Paths: []string{"a/["}}, []string{"a/["}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Affects(tt.files); got != tt.want {
			t.Errorf("%s: Affects(%q) = %v, want %v", tt.name, tt.files, got, tt.want)
		}
	}
}

func TestAffected(t *testing.T) {
	r, err := ParseRepo(RepoFile, []byte(designMonorepo), "repo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		files    []string
		complete bool
		want     []string
	}{
		{"api only", []string{"services/api/main.go"}, true, []string{"api"}},
		{"both, in file order", []string{"services/web/a.ts", "libs/go/x.go"}, true, []string{"api", "web"}},
		{"docs only", []string{"services/api/README.md"}, true, nil},
		{"md is ignored by api only", []string{"services/web/README.md"}, true, []string{"web"}},
		{"nothing", []string{"README"}, true, nil},
		{"incomplete list: every pipeline", []string{"README"}, false, []string{"api", "web"}},
		{"incomplete empty list: every pipeline", nil, false, []string{"api", "web"}},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range r.Affected(tt.files, tt.complete) {
			got = append(got, p.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Affected = %q, want %q", tt.name, got, tt.want)
		}
	}

	single, err := ParseRepo(RepoFile, []byte(designExample), "repo")
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range [][]string{nil, {"README.md"}, {"a/b/c.go"}} {
		if got := single.Affected(files, true); len(got) != 1 || got[0].Name != "api" {
			t.Errorf("single form: Affected(%q) = %+v; every merge runs its pipeline", files, got)
		}
	}
}

func TestNaming(t *testing.T) {
	api := Pipeline{Name: "api"}
	prod := Stage{Name: "prod", SkipLabel: "no-deploy-to-prod"}
	hold := Stage{Name: "prod", SkipLabel: "hold-prod"}
	wave := Stage{Name: "prod", Targets: []string{"eu", "us"}, SkipLabel: "no-deploy-to-prod"}
	single, multi := Repo{}, Repo{Multi: true}
	tests := []struct {
		name      string
		r         Repo
		s         Stage
		labels    []string
		ref, envt string
	}{
		{"single", single, prod, []string{"no-deploy-to-prod"}, "prod", "prod"},
		{"single, skip_label", single, hold, []string{"hold-prod"}, "prod", "prod"},
		{"single wave", single, wave, []string{"no-deploy-to-prod"}, "prod", "prod/eu"},
		{"multi", multi, prod, []string{"no-deploy-to-prod", "no-deploy-to-api/prod"}, "api/prod", "api/prod"},
		{"multi, skip_label", multi, hold, []string{"hold-prod", "no-deploy-to-api/prod"}, "api/prod", "api/prod"},
		{"multi, skip_label is the qualified one", multi, Stage{Name: "prod", SkipLabel: "no-deploy-to-api/prod"}, []string{"no-deploy-to-api/prod"}, "api/prod", "api/prod"},
		{"multi wave", multi, wave, []string{"no-deploy-to-prod", "no-deploy-to-api/prod"}, "api/prod", "api/prod/eu"},
		{"hand-built stage", single, Stage{Name: "qa"}, []string{"no-deploy-to-qa"}, "qa", "qa"},
	}
	for _, tt := range tests {
		if got := tt.r.SkipLabels(api, tt.s); !slices.Equal(got, tt.labels) {
			t.Errorf("%s: SkipLabels = %q, want %q", tt.name, got, tt.labels)
		}
		if got := tt.r.StageRef(api, tt.s); got != tt.ref {
			t.Errorf("%s: StageRef = %q, want %q", tt.name, got, tt.ref)
		}
		if got := tt.r.EnvironmentName(api, tt.s, "eu"); got != tt.envt {
			t.Errorf("%s: EnvironmentName = %q, want %q", tt.name, got, tt.envt)
		}
	}
	if got := MultiTagPrefix("api"); got != "api/v" {
		t.Errorf("MultiTagPrefix = %q", got)
	}
}

func TestExpansions(t *testing.T) {
	tests := []struct {
		pattern string
		want    int
	}{
		{"a/**", 1},
		{"{a,b}", 2},
		{"{a,b}/{c,d,e}", 6},
		{"{a,{b,c}}", 3},
		{"{a,b{c,d}}", 3},
		{"{,}", 2},
		{`\{a,b}`, 1},
		{"[{,}]x", 1},
		{"[\\]{]{a,b}", 2},
		{strings.Repeat("{a,b}", 10), maxGlobExpansions + 1},
		{strings.Repeat("{,}", 80), maxGlobExpansions + 1},
	}
	for _, tt := range tests {
		if got := expansions(tt.pattern); got != tt.want {
			t.Errorf("expansions(%q) = %d, want %d", tt.pattern, got, tt.want)
		}
	}
}

func TestValidateTargetsWavesAndPipelines(t *testing.T) {
	yml := `version: 1
pipelines:
  - name: api
    stages:
      - {name: qa, target: spinnaker-qa}
      - name: prod
        targets: [spinnaker-qa, eu, us]
        alarms: [prod-high-severity, nope]
  - name: web
    stages:
      - {name: prod, targets: [web]}
`
	repo, err := ParseRepo(RepoFile, []byte(yml), "api")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTargets("t.yml", []byte(designTargets), env("SPINNAKER_QA_KEY", "k", "QA_HMAC", "h"), KindsForTest)
	if err != nil {
		t.Fatal(err)
	}
	ts.Targets["eu"] = Target{Name: "eu", Repos: []string{"acme/api"}}
	ts.Targets["web"] = Target{Name: "web", Repos: []string{"acme/web"}}
	got := repo.ValidateTargets(ts, "acme/api")
	want := []string{
		`.github/shipbot.yml:6: pipelines[0].stages[1].targets[2]: unknown target "us"`,
		`.github/shipbot.yml:6: pipelines[0].stages[1].alarms[1]: unknown alarm "nope"`,
		`.github/shipbot.yml:11: pipelines[1].stages[0].targets[0]: target "web" does not allow repository acme/api`,
	}
	if diff := cmp.Diff(want, errStrings(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestReadmeRepoExamples keeps README's complete repository configurations
// (its yaml blocks that start with `version: 1`) valid.
func TestReadmeRepoExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(version: 1\n.*?)```").FindAllSubmatch(readme, -1)
	multi := 0
	for _, b := range blocks {
		r, err := ParseRepo(RepoFile, b[1], "api")
		if err != nil {
			t.Errorf("README example does not parse: %v\n%s", err, b[1])
			continue
		}
		if r.Multi {
			multi++
		}
	}
	if len(blocks) < 2 || multi == 0 {
		t.Errorf("README has %d complete examples, %d of the pipelines: form; want the single-pipeline and the pipelines: form", len(blocks), multi)
	}
}
