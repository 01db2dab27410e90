package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/config"
)

func TestEveryCommandAnswersHelp(t *testing.T) {
	clearEnv(t)
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, stderr := runBot(t, args...)
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, stderr)
				}
				if !strings.HasPrefix(out, "usage: bot "+c.name) {
					t.Errorf("stdout does not start with the usage:\n%s", out)
				}
			})
		}
	}
}

func TestServeHelpListsEveryVariable(t *testing.T) {
	clearEnv(t)
	_, out, _ := runBot(t, "serve", "--help")
	for _, v := range config.EnvVars {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), v.Name+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("serve --help does not list %s:\n%s", v.Name, out)
		}
	}
	// The meanings wrap: compare with the help's words on one line.
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"(default: :8080)", "(default: shipbot.db)", "(default: https://api.github.com/)", "(required for serve)", "(default: info)", "(default: 80/m,500/h)"} {
		if !strings.Contains(flat, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownFlagIsNamed(t *testing.T) {
	clearEnv(t)
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := runBot(t, c.name, "--bogus")
			if code != 2 {
				t.Errorf("exit %d; want 2", code)
			}
			first, rest, _ := strings.Cut(stderr, "\n")
			if first != "bot "+c.name+": flag provided but not defined: -bogus" {
				t.Errorf("first line %q; want it to name the flag", first)
			}
			if !strings.Contains(rest, "usage: bot "+c.name) || out != "" {
				t.Errorf("stderr lacks the usage, or stdout is not empty:\nstdout %q\nstderr %q", out, stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, stderr := runBot(t, args...)
		if code != 0 || out != "shipbot dev\n" || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
}

func TestCheckConfigReports(t *testing.T) {
	t.Setenv("SHIPBOT_TEST_SET_KEY", "k")
	for _, tc := range []struct {
		name, yaml string
		code       int
		stdout     []string // each must appear
		stderr     []string // each must appear
		notOut     string   // must not appear on stdout
	}{
		{
			name: "tab on line 6", code: 1,
			yaml:   "version: 1\nstages:\n  - name: qa\n    target: x\n  - name: prod\n\ttarget: y\n",
			stderr: []string{"f.yml:6:1: invalid YAML: tab character in indentation; YAML indents with spaces"},
		},
		{
			name: "huge numbers", code: 1,
			yaml: "version: 1\ngate:\n  approvals: 99999999999999999999\nstages:\n  - name: qa\n    target: x\n    bake: 9999999999h\n",
			stderr: []string{
				"f.yml:3:14: gate.approvals: out of range (must be between 0 and 10), got 99999999999999999999",
				`f.yml:7:11: stages[0].bake: out of range (at most 2562047h, about 292 years), got "9999999999h"`,
			},
		},
		{
			name: "defaults filled in", code: 0,
			yaml: "version: 1\nstages:\n  - name: qa\n    target: spinnaker-qa\n",
			stdout: []string{
				"f.yml: valid",
				"pipeline: (default: the repository's name)",
				"concurrency: queue",
				"tag_prefix: \"v\"", "initial: 0.1.0", "bump: conventional",
				"approvals: 1", "require_protected_branch: true", "require_checks: true",
				"bake: 0s", "timeout: 30m", "rollback: false", "skip_label: no-deploy-to-qa",
			},
			notOut: `"repository"`,
		},
		{
			name: "pipeline set", code: 0,
			yaml:   "version: 1\npipeline: api\nconcurrency: latest\n",
			stdout: []string{"pipeline: api\n", "concurrency: latest", "stages: []"},
		},
		{
			name: "wave and approval", code: 0,
			yaml: "version: 1\nstages:\n  - name: prod\n    targets: [eu, us]\n    approval: true\n    approvers: [alice, \"@acme/release-managers\"]\n  - {name: post, target: t, approval: true}\n",
			stdout: []string{
				"  - name: prod\n    targets: [eu, us]   # a wave: all at once\n",
				"    approval: true\n    approvers: [\"alice\", \"@acme/release-managers\"]\n",
				"  - name: post\n    target: t\n",
				"    approvers: (anyone with maintain, never the PR's author)\n",
			},
		},
		{
			name: "pipelines form", code: 0,
			yaml: "version: 1\ngate: {approvals: 2}\npipelines:\n  - name: api\n    paths: [\"services/api/**\"]\n    ignore: [\"**/*.md\"]\n    stages:\n      - {name: qa, target: api-qa}\n  - name: web\n    concurrency: latest\n",
			stdout: []string{
				"f.yml: valid; 2 pipelines (api, web); with defaults filled in:",
				"gate:\n  approvals: 2\n",
				"pipelines:\n  - name: api\n    paths: [\"services/api/**\"]\n    ignore: [\"**/*.md\"]\n    concurrency: queue\n    release:\n      tag_prefix: \"api/v\"\n      initial: 0.1.0\n      bump: conventional\n    stages:\n      - name: qa\n        target: api-qa\n        bake: 0s   # none\n",
				"  - name: web\n    paths: (none: every merge)\n    ignore: []\n    concurrency: latest\n    release:\n      tag_prefix: \"web/v\"\n",
				"    stages: []   # none",
			},
			notOut: "\npipeline:",
		},
		{
			name: "both forms", code: 1,
			yaml:   "version: 1\nstages: []\npipelines:\n  - name: api\n",
			stderr: []string{"f.yml:2:1: stages: belongs to the single-pipeline form, but this file uses `pipelines:` (line 3)"},
		},
		{
			name: "bad glob", code: 1,
			yaml:   "version: 1\npipelines:\n  - name: api\n    paths: [\"services/{api\"]\n",
			stderr: []string{`f.yml:4:13: pipelines[0].paths[0]: invalid glob "services/{api"`},
		},
		{
			name: "targets file with an unset variable", code: 0,
			yaml:   "targets:\n  qa:\n    kind: spinnaker\n    url: https://gate.example/hook\n    constraints:\n      deploy_key: ${SHIPBOT_TEST_UNSET_KEY}\n      other: ${SHIPBOT_TEST_SET_KEY}\n    repos: [acme/api]\nalarms:\n  high: {kind: http, url: 'http://169.254.169.254/'}\n",
			stdout: []string{"f.yml: valid targets file: 1 target, 1 alarm (2 warnings above)"},
			stderr: []string{
				"f.yml:6:19: warning: targets.qa.constraints.deploy_key: ${SHIPBOT_TEST_UNSET_KEY} is not set",
				`f.yml:10:27: warning: alarms.high.url: points at "169.254.169.254", a link-local address`,
			},
		},
		{
			name: "invalid targets file", code: 1,
			yaml:   "targets:\n  qa:\n    kind: rocket\n    url: https://x\n",
			stderr: []string{"invalid targets file", `f.yml:3:11: targets.qa.kind: must be "spinnaker", "webhook" or "github-dispatch", got "rocket"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "f.yml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runBot(t, "check-config", file)
			if code != tc.code {
				t.Errorf("exit %d; want %d\nstdout %s\nstderr %s", code, tc.code, out, stderr)
			}
			// Names are relative to the temporary directory.
			out = strings.ReplaceAll(out, file, "f.yml")
			stderr = strings.ReplaceAll(stderr, file, "f.yml")
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if tc.notOut != "" && strings.Contains(out, tc.notOut) {
				t.Errorf("stdout has %q:\n%s", tc.notOut, out)
			}
		})
	}
}

// The service's JSON log shows durations as durations, not nanoseconds.
func TestLogDurationsAreReadable(t *testing.T) {
	var b strings.Builder
	newLogger(&b, slog.LevelInfo).Info("trigger failed, retrying", "wait", 1500*time.Millisecond+123*time.Microsecond, slog.Duration("lease", 10*time.Second))
	if got := b.String(); !strings.Contains(got, `"wait":"1.5s"`) || !strings.Contains(got, `"lease":"10s"`) {
		t.Errorf("log line %s; want wait 1.5s and lease 10s", got)
	}
}
