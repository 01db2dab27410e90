package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/window"
)

// designExample is the repository configuration from design.md, verbatim.
const designExample = `version: 1
pipeline: api                  # the unit of serialization; default: the repository name
concurrency: queue             # queue: every version deploys in order | latest: a waiting older run is superseded by a newer one
release:
  tag_prefix: v                # tags look like v1.4.2
  initial: 0.1.0               # first version when no semver tag exists
  bump: conventional           # conventional (PR title: feat → minor, fix → patch, "!" or BREAKING CHANGE → major) | patch
gate:
  approvals: 1                 # minimum approvals by others than the author
  require_protected_branch: true
  require_checks: true         # required status checks/check runs green on the merged head
stages:
  - name: qa
    target: spinnaker-qa       # a target defined server-side (secrets never live in the repo)
    bake: 10m                  # watch alarms this long after success before promoting
  - name: prod
    target: spinnaker-prod
    window: "Mon-Thu 10:00-16:00 Asia/Seoul"   # when a stage may start; outside it the run waits
    alarms: [prod-high-severity]               # a firing alarm blocks start and, during bake, rolls back
    bake: 1h
    rollback: true
`

func mustWindow(t *testing.T, s string) *window.Window {
	t.Helper()
	w, err := window.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return &w
}

func TestParseRepoDesignExample(t *testing.T) {
	got, err := ParseRepo(RepoFile, []byte(designExample), "ignored")
	if err != nil {
		t.Fatalf("ParseRepo: %v", err)
	}
	want := Repo{
		Version: 1,
		Gate:    Gate{Approvals: 1, RequireProtectedBranch: true, RequireChecks: true},
		Pipelines: []Pipeline{{
			Name:        "api",
			Concurrency: ConcurrencyQueue,
			Release:     Release{TagPrefix: "v", Initial: semver.MustParse("0.1.0"), Bump: BumpConventional},
			Stages: []Stage{
				{
					Name: "qa", Target: "spinnaker-qa", Bake: 10 * time.Minute, Timeout: 30 * time.Minute,
					SkipLabel: "no-deploy-to-qa", Line: 13,
				},
				{
					Name: "prod", Target: "spinnaker-prod", Bake: time.Hour, Timeout: 30 * time.Minute,
					Window: mustWindow(t, "Mon-Thu 10:00-16:00 Asia/Seoul"), Alarms: []string{"prod-high-severity"},
					Rollback: true, SkipLabel: "no-deploy-to-prod", Line: 16,
				},
			},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseRepo mismatch (-want +got):\n%s", diff)
	}
	p, ok := got.Pipeline("api")
	if !ok {
		t.Fatal("Pipeline(api) not found")
	}
	if _, ok := got.Pipeline("web"); ok {
		t.Error("Pipeline(web) found")
	}
	if s, ok := p.Stage("prod"); !ok || s.Line != 16 {
		t.Errorf("Stage(prod) = %+v, %v", s, ok)
	}
	if _, ok := p.Stage("staging"); ok {
		t.Error("Stage(staging) found")
	}
}

func TestParseRepoDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(r *Repo, p *Pipeline)
	}{
		{"minimal", "version: 1\n", func(r *Repo, p *Pipeline) {}},
		{"nulls count as absent", "version: 1\npipeline:\nstages: ~\nrelease:\ngate:\npipelines:\n", func(r *Repo, p *Pipeline) {}},
		{"empty sections", "version: 1\nrelease: {}\ngate: {}\nstages: []\n", func(r *Repo, p *Pipeline) { p.Stages = []Stage{} }},
		{"stage defaults", "version: 1\nstages:\n  - name: qa\n    target: t\n", func(r *Repo, p *Pipeline) {
			p.Stages = []Stage{{Name: "qa", Target: "t", Timeout: DefaultStageTimeout, SkipLabel: "no-deploy-to-qa", Line: 3}}
		}},
		{"everything overridden", `version: 1
pipeline: web-2
concurrency: latest
release: {tag_prefix: "", initial: 1.0.0, bump: patch}
gate: {approvals: 0, require_protected_branch: false, require_checks: false}
stages:
  - {name: wave_1, target: t, bake: 0s, timeout: 1h30m, skip_label: "skip wave 1", rollback: false, alarms: [a, b]}
`, func(r *Repo, p *Pipeline) {
			p.Name, p.Concurrency = "web-2", ConcurrencyLatest
			p.Release = Release{TagPrefix: "", Initial: semver.MustParse("1.0.0"), Bump: BumpPatch}
			r.Gate = Gate{}
			p.Stages = []Stage{{Name: "wave_1", Target: "t", Timeout: 90 * time.Minute, TimeoutSet: true,
				SkipLabel: "skip wave 1", Alarms: []string{"a", "b"}, Line: 7}}
		}},
		{"numbers as strings", "version: 1\npipeline: 2024\n", func(r *Repo, p *Pipeline) { p.Name = "2024" }},
		{"wave, approval, approvers", `version: 1
stages:
  - name: prod
    targets: [eu, us, ap]
    approval: true
    approvers: [alice, "@acme/release-managers", b-o-b, "@Acme-2/team_x"]
  - {name: canary, targets: [one], approval: true}
  - {name: post, target: t, approval: false}
`, func(r *Repo, p *Pipeline) {
			p.Stages = []Stage{
				{Name: "prod", Targets: []string{"eu", "us", "ap"}, Timeout: DefaultStageTimeout, SkipLabel: "no-deploy-to-prod",
					Approval: true, Approvers: []string{"alice", "@acme/release-managers", "b-o-b", "@Acme-2/team_x"}, Line: 3},
				{Name: "canary", Targets: []string{"one"}, Timeout: DefaultStageTimeout, SkipLabel: "no-deploy-to-canary", Approval: true, Line: 7},
				{Name: "post", Target: "t", Timeout: DefaultStageTimeout, SkipLabel: "no-deploy-to-post", Line: 8},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepo("f.yml", []byte(tt.yaml), "api")
			if err != nil {
				t.Fatalf("ParseRepo: %v", err)
			}
			want := DefaultRepo("api")
			tt.want(&want, &want.Pipelines[0])
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultRepo(t *testing.T) {
	want := Repo{
		Version: 1,
		Gate:    Gate{Approvals: 1, RequireProtectedBranch: true, RequireChecks: true},
		Pipelines: []Pipeline{{
			Name: "api", Concurrency: "queue",
			Release: Release{TagPrefix: "v", Initial: semver.MustParse("0.1.0"), Bump: "conventional"},
		}},
	}
	if diff := cmp.Diff(want, DefaultRepo("api")); diff != "" {
		t.Errorf("DefaultRepo (-want +got):\n%s", diff)
	}
	// Each call must own its Initial so that one caller cannot change another's.
	if DefaultRepo("a").Pipelines[0].Release.Initial == DefaultRepo("a").Pipelines[0].Release.Initial {
		t.Error("DefaultRepo shares its *semver.Version")
	}
}

func TestParseRepoErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // full error lines, in order
	}{
		{"empty file", "", []string{"f.yml:1:1: file is empty"}},
		{"only comments", "# nothing\n", []string{"f.yml:1:1: file is empty"}},
		{"explicit null document", "~\n", []string{"f.yml:1:1: file is empty"}},
		{"sequence root", "- a\n- b\n", []string{"f.yml:1:1: the top level must be a mapping of keys to values, got a list"}},
		{"scalar root", "hello\n", []string{"f.yml:1:1: the top level must be a mapping of keys to values, got a string"}},
		{"missing version", "pipeline: api\n", []string{"f.yml:1:1: version: required; add `version: 1`"}},
		{"version 2", "version: 2\n", []string{"f.yml:1:10: version: unsupported version 2 (this shipbot reads version 1)"}},
		{"version as string", "version: \"1\"\n", []string{"f.yml:1:10: version: must be an integer, got a string"}},
		{"unknown top-level key", "version: 1\nstage:\n  - name: qa\n", []string{
			`f.yml:2:1: unknown key "stage" (known keys: version, pipeline, concurrency, release, gate, stages, pipelines)`}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{`f.yml:2:1: version: duplicate key (first at line 1)`}},
		{"bad concurrency", "version: 1\nconcurrency: parallel\n", []string{`f.yml:2:14: concurrency: must be "queue" or "latest", got "parallel"`}},
		{"bad pipeline", "version: 1\npipeline: my api\n", []string{`f.yml:2:11: pipeline: must be 1 to 100 characters without spaces, got "my api"`}},
		{"empty pipeline", "version: 1\npipeline: ''\n", []string{`f.yml:2:11: pipeline: must be 1 to 100 characters without spaces, got ""`}},
		{"release errors", "version: 1\nrelease:\n  tag_prefix: /v\n  initial: v1.0.0\n  bump: minor\n  notes: true\n", []string{
			`f.yml:3:15: release.tag_prefix: must not start with /, got "/v"`,
			`f.yml:4:12: release.initial: must be a version like 0.1.0 without the tag prefix, got "v1.0.0"`,
			`f.yml:5:9: release.bump: must be "conventional" or "patch", got "minor"`,
			`f.yml:6:3: release: unknown key "notes" (known keys: tag_prefix, initial, bump)`,
		}},
		{"tag prefix whitespace", "version: 1\nrelease: {tag_prefix: \"my v\"}\n", []string{`f.yml:2:23: release.tag_prefix: must not contain whitespace, got "my v"`}},
		{"tag prefix git-invalid", "version: 1\nrelease: {tag_prefix: \"v..\"}\n", []string{`f.yml:2:23: release.tag_prefix: must be valid in a git tag name (no ~ ^ : ? * [ \ .. @{ //), got "v.."`}},
		{"initial pre-release", "version: 1\nrelease: {initial: 1.0.0-rc.1}\n", []string{`f.yml:2:20: release.initial: must be MAJOR.MINOR.PATCH without pre-release or build metadata, got "1.0.0-rc.1"`}},
		{"initial metadata", "version: 1\nrelease: {initial: 1.0.0+b1}\n", []string{`f.yml:2:20: release.initial: must be MAJOR.MINOR.PATCH without pre-release or build metadata, got "1.0.0+b1"`}},
		{"initial two parts", "version: 1\nrelease: {initial: 1.0}\n", []string{`f.yml:2:20: release.initial: must be a version like 0.1.0 (MAJOR.MINOR.PATCH), got "1.0"`}},
		{"release not a mapping", "version: 1\nrelease: v\n", []string{`f.yml:2:10: release: must be a mapping, got a string`}},
		{"gate errors", "version: 1\ngate:\n  approvals: 11\n  require_checks: yes\n  require_protected_branch: \"true\"\n", []string{
			`f.yml:3:14: gate.approvals: must be between 0 and 10, got 11`,
			`f.yml:4:19: gate.require_checks: must be true or false, got a string`,
			`f.yml:5:29: gate.require_protected_branch: must be true or false, got a string`,
		}},
		{"negative approvals", "version: 1\ngate: {approvals: -1}\n", []string{`f.yml:2:19: gate.approvals: must be between 0 and 10, got -1`}},
		{"approvals float", "version: 1\ngate: {approvals: 1.5}\n", []string{`f.yml:2:19: gate.approvals: must be an integer, got a number`}},
		{"stages not a list", "version: 1\nstages:\n  qa: {target: t}\n", []string{`f.yml:3:3: stages: must be a list, got a mapping`}},
		{"stage not a mapping", "version: 1\nstages:\n  - qa\n", []string{`f.yml:3:5: stages[0]: must be a mapping, got a string`}},
		{"stage required keys", "version: 1\nstages:\n  - bake: 1m\n", []string{
			`f.yml:3:5: stages[0].name: required`,
			`f.yml:3:5: stages[0].target: required (or targets: [a, b] for a wave)`,
		}},
		{"bad duration", "version: 1\nstages:\n  - name: qa\n    target: t\n  - name: prod\n    target: t\n    bake: 10 minutes\n", []string{
			`f.yml:7:11: stages[1].bake: invalid duration "10 minutes"`}},
		{"duration without unit", "version: 1\nstages:\n  - {name: qa, target: t, bake: 10}\n", []string{
			`f.yml:3:33: stages[0].bake: invalid duration "10"`}},
		{"negative bake", "version: 1\nstages:\n  - {name: qa, target: t, bake: -1m}\n", []string{
			`f.yml:3:33: stages[0].bake: must be positive, got "-1m"`}},
		{"zero timeout", "version: 1\nstages:\n  - {name: qa, target: t, timeout: 0s}\n", []string{
			`f.yml:3:36: stages[0].timeout: must be positive, got "0s"`}},
		{"bad window", "version: 1\nstages:\n  - name: prod\n    target: t\n    window: Mon-Thu 25:00-16:00 Asia/Seoul\n", []string{
			`f.yml:5:13: stages[0].window: window "Mon-Thu 25:00-16:00 Asia/Seoul": hour 25 out of range`}},
		{"window not a string", "version: 1\nstages:\n  - {name: prod, target: t, window: [Mon]}\n", []string{
			`f.yml:3:37: stages[0].window: must be a string, got a list`}},
		{"duplicate stage", "version: 1\nstages:\n  - name: qa\n    target: t\n  - name: qa\n    target: u\n", []string{
			`f.yml:5:5: stages[1].name: duplicate stage name "qa" (first at line 3)`}},
		{"bad stage name", "version: 1\nstages:\n  - {name: QA, target: t}\n  - {name: -x, target: t}\n", []string{
			`f.yml:3:12: stages[0].name: must match ^[a-z0-9][a-z0-9_-]*$ (lower case letters, digits, _ and -), got "QA"`,
			`f.yml:4:12: stages[1].name: must match ^[a-z0-9][a-z0-9_-]*$ (lower case letters, digits, _ and -), got "-x"`,
		}},
		{"name too long for label", "version: 1\nstages:\n  - {name: " + strings.Repeat("a", 38) + ", target: t}\n", []string{
			`f.yml:3:12: stages[0].name: too long: the skip label "no-deploy-to-` + strings.Repeat("a", 38) + `" exceeds GitHub's 50-character label limit; shorten the name or set skip_label`}},
		{"empty target", "version: 1\nstages:\n  - {name: qa, target: ''}\n", []string{`f.yml:3:24: stages[0].target: must not be empty`}},
		{"alarms", "version: 1\nstages:\n  - name: qa\n    target: t\n    alarms: [a, '', a, 3, [x]]\n", []string{
			`f.yml:5:17: stages[0].alarms[1]: alarm name must not be empty`,
			`f.yml:5:21: stages[0].alarms[2]: duplicate alarm "a" (first at line 5)`,
			`f.yml:5:27: stages[0].alarms[4]: must be a string, got a list`,
		}},
		{"alarms not a list", "version: 1\nstages:\n  - {name: qa, target: t, alarms: high}\n", []string{
			`f.yml:3:35: stages[0].alarms: must be a list, got a string`}},
		{"rollback not a bool", "version: 1\nstages:\n  - {name: qa, target: t, rollback: 1}\n", []string{
			`f.yml:3:37: stages[0].rollback: must be true or false, got a number`}},
		{"skip label", "version: 1\nstages:\n  - {name: qa, target: t, skip_label: ' '}\n  - {name: b, target: t, skip_label: ' x'}\n", []string{
			`f.yml:3:39: stages[0].skip_label: must not be empty`,
			`f.yml:4:38: stages[1].skip_label: must not start or end with spaces, got " x"`,
		}},
		{"unknown stage key", "version: 1\nstages:\n  - name: qa\n    target: t\n    bakee: 10m\n", []string{
			`f.yml:5:5: stages[0]: unknown key "bakee" (known keys: name, target, targets, bake, timeout, window, alarms, rollback, skip_label, approval, approvers)`}},
		{"alias", "version: 1\nstages:\n  - &s {name: qa, target: t}\n  - *s\n", []string{
			`f.yml:4:5: stages[1]: YAML aliases (*s) are not supported`}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{`f.yml:2:1: more than one YAML document; put everything in one`}},
		{"syntax error: bad indentation", "version: 1\nstages:\n  - name: qa\n    target: t\n   bake: 1m\n", []string{
			`f.yml:3: invalid YAML: did not find expected '-' indicator`}},
		{"syntax error: unclosed flow", "version: 1\nstages: [a,\n", []string{
			`f.yml:2: invalid YAML: did not find expected node content`}},
		{"syntax error: mapping in scalar", "version: 1\npipeline: a: b\n", []string{
			`f.yml:2: invalid YAML: mapping values are not allowed in this context`}},
		{"syntax error: tab", "version: 1\nstages:\n\t- name: qa\n", []string{
			`f.yml:3:1: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		// yaml.v3 reports this one at line 5 ("violates indentation").
		{"tab on line 6", "version: 1\nstages:\n  - name: qa\n    target: x\n  - name: prod\n\ttarget: y\n", []string{
			`f.yml:6:1: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		{"tab after spaces", "version: 1\nstages:\n  - name: qa\n    target: x\n  - name: prod\n  \ttarget: y\n", []string{
			`f.yml:6:3: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		{"tab after a list dash", "version: 1\nstages:\n  -\tname: qa\n    target: x\n", []string{
			`f.yml:3:4: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		{"tab in a block scalar", "version: 1\npipeline: |\n  a\n\tb\n", []string{
			`f.yml:4:1: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		{"tab on an otherwise blank line", "version: 1\ngate:\n  approvals: 1\n\t\n", []string{
			`f.yml:4:1: invalid YAML: tab character in indentation; YAML indents with spaces`}},
		{"bad character, tab elsewhere", "version: 1\n@x: 1\nstages:\n\t- a\n", []string{
			`f.yml:2: invalid YAML: found character that cannot start any token`}},
		{"huge approvals", "version: 1\ngate:\n  approvals: 99999999999999999999\n", []string{
			`f.yml:3:14: gate.approvals: out of range (must be between 0 and 10), got 99999999999999999999`}},
		{"huge negative approvals", "version: 1\ngate: {approvals: -99999999999999999999}\n", []string{
			`f.yml:2:19: gate.approvals: out of range (must be between 0 and 10), got -99999999999999999999`}},
		{"huge hex approvals", "version: 1\ngate: {approvals: 0xffffffffffffffffff}\n", []string{
			`f.yml:2:19: gate.approvals: out of range (must be between 0 and 10), got 0xffffffffffffffffff`}},
		{"huge version", "version: 99999999999999999999\n", []string{
			`f.yml:1:10: version: out of range (this shipbot reads version 1), got 99999999999999999999`}},
		{"huge bake", "version: 1\nstages:\n  - {name: qa, target: t, bake: 9999999999h}\n", []string{
			`f.yml:3:33: stages[0].bake: out of range (at most 2562047h, about 292 years), got "9999999999h"`}},
		{"huge timeout", "version: 1\nstages:\n  - {name: qa, target: t, timeout: 99999999999999999999s}\n", []string{
			`f.yml:3:36: stages[0].timeout: out of range (at most 2562047h, about 292 years), got "99999999999999999999s"`}},
		{"syntax error: unknown anchor", "version: 1\npipeline: *nope\n", []string{
			`f.yml:2:11: invalid YAML: unknown anchor "nope" referenced`}},
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
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRepoCollectsAllErrors(t *testing.T) {
	yml := `version: 1
concurrency: fast
gate:
  approvals: many
stages:
  - name: qa
    target: spinnaker-qa
    bake: 10 minutes
  - name: prod
    target: spinnaker-prod
    window: "Mon-Thu 10:00-16:00 Mars/Base"
  - name: qa
    bake: 1h
`
	_, err := ParseRepo(RepoFile, []byte(yml), "api")
	want := []string{
		`.github/shipbot.yml:2:14: concurrency: must be "queue" or "latest", got "fast"`,
		`.github/shipbot.yml:4:14: gate.approvals: must be an integer, got a string`,
		`.github/shipbot.yml:8:11: stages[0].bake: invalid duration "10 minutes"`,
		`.github/shipbot.yml:11:13: stages[1].window: window "Mon-Thu 10:00-16:00 Mars/Base": unknown time zone "Mars/Base"`,
		`.github/shipbot.yml:12:5: stages[2].target: required (or targets: [a, b] for a wave)`,
		`.github/shipbot.yml:12:5: stages[2].name: duplicate stage name "qa" (first at line 6)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 2 || first.Column != 14 || first.File != RepoFile {
		t.Errorf("errors.As(*Error) = %+v", first)
	}
}

func TestParseRepoTooManyStages(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nstages:\n")
	for i := range MaxStages + 1 {
		fmt.Fprintf(&b, "  - {name: s%d, target: t}\n", i)
	}
	_, err := ParseRepo("f.yml", []byte(b.String()), "api")
	if err == nil || err.Error() != "f.yml:3:3: stages: 51 stages; at most 50 are allowed" {
		t.Errorf("err = %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yml", Line: 12, Column: 5, Msg: "m"}, "a.yml:12:5: m"},
		{Error{File: "a.yml", Line: 12, Msg: "m"}, "a.yml:12: m"},
		{Error{File: "a.yml", Msg: "m"}, "a.yml: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if got := (ErrorList{{File: "a", Line: 1, Msg: "x"}, {File: "a", Line: 2, Msg: "y"}}).Error(); got != "a:1: x\na:2: y" {
		t.Errorf("ErrorList.Error() = %q", got)
	}
}

func TestStageHelpers(t *testing.T) {
	if got := (Stage{Name: "prod"}).SkipLabelName(); got != "no-deploy-to-prod" {
		t.Errorf("SkipLabelName default = %q", got)
	}
	if got := (Stage{Name: "prod", SkipLabel: "hold"}).SkipLabelName(); got != "hold" {
		t.Errorf("SkipLabelName override = %q", got)
	}
	tests := []struct {
		name  string
		stage Stage
		tgt   Target
		want  time.Duration
	}{
		{"default", Stage{Timeout: DefaultStageTimeout}, Target{}, 30 * time.Minute},
		{"target default wins over unset", Stage{Timeout: DefaultStageTimeout}, Target{Timeout: time.Hour}, time.Hour},
		{"stage setting wins", Stage{Timeout: 5 * time.Minute, TimeoutSet: true}, Target{Timeout: time.Hour}, 5 * time.Minute},
		{"zero stage", Stage{}, Target{}, DefaultStageTimeout},
	}
	for _, tt := range tests {
		if got := tt.stage.EffectiveTimeout(tt.tgt); got != tt.want {
			t.Errorf("%s: EffectiveTimeout = %v, want %v", tt.name, got, tt.want)
		}
	}
}
