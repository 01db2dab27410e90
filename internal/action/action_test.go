package action

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// runnerEnv is the least a workflow run's environment has.
func runnerEnv() map[string]string {
	return map[string]string{
		"GITHUB_EVENT_NAME":  "push",
		"GITHUB_EVENT_PATH":  "/github/workflow/event.json",
		"GITHUB_REPOSITORY":  "acme/api",
		"GITHUB_TOKEN":       "ghs_env",
		"GITHUB_RUN_ID":      "77",
		"RUNNER_TEMP":        "/home/runner/work/_temp",
		"GITHUB_WORKSPACE":   "/github/workspace",
		"GITHUB_OUTPUT":      "/github/file_commands/set_output_1",
		"GITHUB_SERVER_URL":  "https://github.com",
		"GITHUB_RUN_ATTEMPT": "2",
	}
}

func TestReadEnv(t *testing.T) {
	files := map[string]string{"/etc/shipbot/targets.yml": "targets: {}\n"}
	readFile := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	for _, tc := range []struct {
		name    string
		set     map[string]string // "" deletes
		wantErr string            // substring; "" means no error
		check   func(t *testing.T, e Env)
	}{
		{name: "defaults", check: func(t *testing.T, e Env) {
			want := Env{
				EventName: "push", EventPath: "/github/workflow/event.json", Token: "ghs_env",
				APIURL: "https://api.github.com/", ServerURL: "https://github.com", Repository: "acme/api",
				RunID: "77", RunAttempt: "2", Output: "/github/file_commands/set_output_1",
				StateDir: "/home/runner/work/_temp", Wait: true, Timeout: 30 * time.Minute, Listen: ":8080",
			}
			if !reflect.DeepEqual(e, want) {
				t.Errorf("got  %+v\nwant %+v", e, want)
			}
		}},
		{name: "every input", set: map[string]string{
			"INPUT_GITHUB-TOKEN": " ghs_input \n", "INPUT_TARGETS": "targets:\n  qa: {}\n",
			"INPUT_STAGES": " qa, prod ,,", "INPUT_DRY-RUN": "TRUE", "INPUT_WAIT": "no",
			"INPUT_TIMEOUT": "1h30m", "INPUT_CONFIG": ".github/shipbot.yml",
			"GITHUB_API_URL": "https://ghe.example/api/v3", "SHIPBOT_PUBLIC_URL": "https://runner.example",
			"SHIPBOT_LISTEN": "127.0.0.1:9000",
		}, check: func(t *testing.T, e Env) {
			if e.Token != "ghs_input" {
				t.Errorf("token %q: the input wins over GITHUB_TOKEN, trimmed", e.Token)
			}
			if string(e.Targets) != "targets:\n  qa: {}" || e.TargetsSrc != "input targets" {
				t.Errorf("targets %q from %q", e.Targets, e.TargetsSrc)
			}
			if !reflect.DeepEqual(e.Stages, []string{"qa", "prod"}) {
				t.Errorf("stages %q", e.Stages)
			}
			if !e.DryRun || e.Wait || e.Timeout != 90*time.Minute {
				t.Errorf("dry-run %v wait %v timeout %s", e.DryRun, e.Wait, e.Timeout)
			}
			if e.APIURL != "https://ghe.example/api/v3/" {
				t.Errorf("API URL %q: want a trailing slash", e.APIURL)
			}
			if e.PublicURL != "https://runner.example" || e.Listen != "127.0.0.1:9000" || e.Config != ".github/shipbot.yml" {
				t.Errorf("public URL %q listen %q config %q", e.PublicURL, e.Listen, e.Config)
			}
		}},
		{name: "targets file when no input", set: map[string]string{"SHIPBOT_TARGETS_FILE": "/etc/shipbot/targets.yml"},
			check: func(t *testing.T, e Env) {
				if string(e.Targets) != "targets: {}\n" || e.TargetsSrc != "/etc/shipbot/targets.yml" {
					t.Errorf("targets %q from %q", e.Targets, e.TargetsSrc)
				}
			}},
		{name: "targets input wins over the file", set: map[string]string{"SHIPBOT_TARGETS_FILE": "/nope", "INPUT_TARGETS": "targets: {}"},
			check: func(t *testing.T, e Env) {
				if e.TargetsSrc != "input targets" {
					t.Errorf("targets from %q", e.TargetsSrc)
				}
			}},
		{name: "no RUNNER_TEMP: state in the workspace", set: map[string]string{"RUNNER_TEMP": ""},
			check: func(t *testing.T, e Env) {
				if e.StateDir != filepath.Join("/github/workspace", ".shipbot") {
					t.Errorf("state dir %q", e.StateDir)
				}
			}},
		{name: "bool spellings", set: map[string]string{"INPUT_DRY-RUN": "yes", "INPUT_WAIT": "False"},
			check: func(t *testing.T, e Env) {
				if !e.DryRun || e.Wait {
					t.Errorf("dry-run %v wait %v", e.DryRun, e.Wait)
				}
			}},
		{name: "empty inputs take defaults", set: map[string]string{"INPUT_DRY-RUN": "", "INPUT_WAIT": " ", "INPUT_TIMEOUT": "", "INPUT_STAGES": " , "},
			check: func(t *testing.T, e Env) {
				if e.DryRun || !e.Wait || e.Timeout != 30*time.Minute || e.Stages != nil {
					t.Errorf("dry-run %v wait %v timeout %s stages %q", e.DryRun, e.Wait, e.Timeout, e.Stages)
				}
			}},
		{name: "no event path", set: map[string]string{"GITHUB_EVENT_PATH": ""}, wantErr: "GITHUB_EVENT_PATH: required"},
		{name: "no repository", set: map[string]string{"GITHUB_REPOSITORY": ""}, wantErr: "GITHUB_REPOSITORY: required"},
		{name: "bad repository", set: map[string]string{"GITHUB_REPOSITORY": "api"}, wantErr: `GITHUB_REPOSITORY: "api" is not owner/name`},
		{name: "no token", set: map[string]string{"GITHUB_TOKEN": ""}, wantErr: "GITHUB_TOKEN (or input github-token): required"},
		{name: "bad dry-run", set: map[string]string{"INPUT_DRY-RUN": "maybe"}, wantErr: `input dry-run: want true or false, got "maybe"`},
		{name: "bad wait", set: map[string]string{"INPUT_WAIT": "2"}, wantErr: "input wait:"},
		{name: "bad timeout", set: map[string]string{"INPUT_TIMEOUT": "30"}, wantErr: `input timeout: "30" is not a positive duration`},
		{name: "negative timeout", set: map[string]string{"INPUT_TIMEOUT": "-5m"}, wantErr: "input timeout:"},
		{name: "missing targets file", set: map[string]string{"SHIPBOT_TARGETS_FILE": "/nope"}, wantErr: "SHIPBOT_TARGETS_FILE: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := runnerEnv()
			for k, v := range tc.set {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			e, err := ReadEnv(func(k string) string { return env[k] }, readFile)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
			case tc.wantErr != "":
				if !reflect.DeepEqual(e, Env{}) {
					t.Errorf("an error returns the zero Env, got %+v", e)
				}
				if strings.Contains(err.Error(), "ghs_") {
					t.Errorf("an error shows the token: %v", err)
				}
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

func TestRunURL(t *testing.T) {
	for _, tc := range []struct {
		e    Env
		want string
	}{
		{Env{ServerURL: "https://github.com", Repository: "acme/api", RunID: "9"}, "https://github.com/acme/api/actions/runs/9"},
		{Env{ServerURL: "https://ghe.example/", Repository: "acme/api", RunID: "9"}, "https://ghe.example/acme/api/actions/runs/9"},
		{Env{ServerURL: "https://github.com", Repository: "acme/api"}, ""},
	} {
		if got := tc.e.RunURL(); got != tc.want {
			t.Errorf("RunURL(%+v) = %q; want %q", tc.e, got, tc.want)
		}
	}
}

func TestWriteOutputs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outputs [][2]string
		want    string
	}{
		{"plain", [][2]string{{"version", "1.5.0"}, {"tag", "v1.5.0"}, {"skipped", ""}},
			"version=1.5.0\ntag=v1.5.0\nskipped=\n"},
		{"multiline uses a heredoc", [][2]string{{"notes", "line 1\nline 2"}},
			"notes<<shipbot_EOF\nline 1\nline 2\nshipbot_EOF\n"},
		{"carriage return too", [][2]string{{"x", "a\r\nb"}},
			"x<<shipbot_EOF\na\r\nb\nshipbot_EOF\n"},
		{"a value holding the delimiter gets a longer one", [][2]string{{"x", "a\nshipbot_EOF\nb"}},
			"x<<shipbot_EOF_\na\nshipbot_EOF\nb\nshipbot_EOF_\n"},
		{"a trailing newline survives", [][2]string{{"x", "a\n"}},
			"x<<shipbot_EOF\na\n\nshipbot_EOF\n"},
		{"an = in a value needs nothing", [][2]string{{"x", "a=b"}}, "x=a=b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			if err := WriteOutputs(path, tc.outputs); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	t.Run("appends", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		os.WriteFile(path, []byte("earlier=1\n"), 0o644)
		if err := WriteOutputs(path, [][2]string{{"tag", "v1"}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != "earlier=1\ntag=v1\n" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("no GITHUB_OUTPUT is no error", func(t *testing.T) {
		if err := WriteOutputs("", [][2]string{{"tag", "v1"}}); err != nil {
			t.Error(err)
		}
	})
	t.Run("unwritable names the variable", func(t *testing.T) {
		err := WriteOutputs(filepath.Join(t.TempDir(), "no", "such", "dir"), [][2]string{{"tag", "v1"}})
		if err == nil || !strings.HasPrefix(err.Error(), "GITHUB_OUTPUT: ") || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v", err)
		}
	})
}

func TestAppendSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary")
	for _, md := range []string{"## one\n", "| a | b |\n"} {
		if err := AppendSummary(path, md); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != "## one\n| a | b |\n" {
		t.Errorf("got %q", got)
	}
	if err := AppendSummary("", "x"); err != nil {
		t.Error(err)
	}
}

func TestWorkflowCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(c Commands)
		want string
	}{
		{"error", func(c Commands) { c.Error("shipbot: merge refused", "1 approval required; got 0") },
			"::error title=shipbot%3A merge refused::1 approval required; got 0\n"},
		{"warning", func(c Commands) { c.Warning("a, b", "x") }, "::warning title=a%2C b::x\n"},
		{"notice", func(c Commands) { c.Notice("shipbot", "released v1.5.0; deployed: qa,prod") },
			"::notice title=shipbot::released v1.5.0; deployed: qa,prod\n"},
		// The message may not end the command early or start another.
		{"message newlines and percent", func(c Commands) { c.Error("t", "50% done\r\n::add-mask::x") },
			"::error title=t::50%25 done%0D%0A::add-mask::x\n"},
		{"title escapes", func(c Commands) { c.Notice("a:b,c%d\ne", "m") }, "::notice title=a%3Ab%2Cc%25d%0Ae::m\n"},
		{"mask", func(c Commands) { c.Mask("s3cret") }, "::add-mask::s3cret\n"},
		{"mask escapes", func(c Commands) { c.Mask("100%") }, "::add-mask::100%25\n"},
		// A multi-line secret is masked line by line: the runner matches
		// each line of the log on its own.
		{"mask multiline", func(c Commands) { c.Mask("-----BEGIN-----\nabc\n\n-----END-----\n") },
			"::add-mask::-----BEGIN-----\n::add-mask::abc\n::add-mask::-----END-----\n"},
		{"mask empty", func(c Commands) { c.Mask(""); c.Mask(" \n ") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.do(Commands{W: &b})
			if b.String() != tc.want {
				t.Errorf("got  %q\nwant %q", b.String(), tc.want)
			}
		})
	}
}
