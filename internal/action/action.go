// Package action is the GitHub Actions side of `bot run`: reading the
// runner's environment and inputs, and writing what a workflow run shows
// (outputs, the step summary, annotations, masks). The merge handling and
// the rollout are the service's own code; only this edge differs.
package action

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Env is what `bot run` reads from a workflow run.
type Env struct {
	EventName  string // GITHUB_EVENT_NAME
	EventPath  string // GITHUB_EVENT_PATH
	Token      string // input github-token, else GITHUB_TOKEN
	APIURL     string // GITHUB_API_URL
	ServerURL  string // GITHUB_SERVER_URL
	Repository string // GITHUB_REPOSITORY
	SHA        string // GITHUB_SHA
	RunID      string // GITHUB_RUN_ID
	RunAttempt string // GITHUB_RUN_ATTEMPT
	Output     string // GITHUB_OUTPUT
	Summary    string // GITHUB_STEP_SUMMARY
	StateDir   string // where the SQLite state lives

	Targets    []byte        // input targets (the targets file's content), else SHIPBOT_TARGETS_FILE's
	TargetsSrc string        // for error messages
	Stages     []string      // input stages: run only these; empty = all
	DryRun     bool          // input dry-run
	Wait       bool          // input wait: wait for outcomes where they can be learned
	Timeout    time.Duration // input timeout: how long to wait in all
	PublicURL  string        // SHIPBOT_PUBLIC_URL: callbacks, when reachable (self-hosted runners)
	Listen     string        // SHIPBOT_LISTEN: where callbacks are taken when PublicURL is set
	Config     string        // input config: informational; the config is read at the merge commit
}

// input reads an action input the way the runner passes it: INPUT_ and the
// name upper-cased, hyphens kept.
func input(getenv func(string) string, name string) string {
	return strings.TrimSpace(getenv("INPUT_" + strings.ToUpper(name)))
}

// ReadEnv reads and checks the environment. Errors name the variable or
// input at fault.
func ReadEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Env, error) {
	e := Env{
		EventName:  getenv("GITHUB_EVENT_NAME"),
		EventPath:  getenv("GITHUB_EVENT_PATH"),
		Token:      input(getenv, "github-token"),
		APIURL:     getenv("GITHUB_API_URL"),
		ServerURL:  getenv("GITHUB_SERVER_URL"),
		Repository: getenv("GITHUB_REPOSITORY"),
		SHA:        getenv("GITHUB_SHA"),
		RunID:      getenv("GITHUB_RUN_ID"),
		RunAttempt: getenv("GITHUB_RUN_ATTEMPT"),
		Output:     getenv("GITHUB_OUTPUT"),
		Summary:    getenv("GITHUB_STEP_SUMMARY"),
		PublicURL:  getenv("SHIPBOT_PUBLIC_URL"),
		Listen:     getenv("SHIPBOT_LISTEN"),
		Config:     input(getenv, "config"),
		Wait:       true,
		Timeout:    30 * time.Minute,
	}
	if e.Token == "" {
		e.Token = getenv("GITHUB_TOKEN")
	}
	if e.APIURL == "" {
		e.APIURL = "https://api.github.com"
	}
	if !strings.HasSuffix(e.APIURL, "/") {
		e.APIURL += "/"
	}
	if e.ServerURL == "" {
		e.ServerURL = "https://github.com"
	}
	if e.Listen == "" {
		e.Listen = ":8080"
	}
	if e.RunAttempt == "" {
		e.RunAttempt = "1"
	}
	for _, req := range []struct{ name, val string }{
		{"GITHUB_EVENT_PATH", e.EventPath}, {"GITHUB_REPOSITORY", e.Repository},
		{"GITHUB_TOKEN (or input github-token)", e.Token},
	} {
		if req.val == "" {
			return Env{}, fmt.Errorf("%s: required", req.name)
		}
	}
	if !strings.Contains(e.Repository, "/") {
		return Env{}, fmt.Errorf("GITHUB_REPOSITORY: %q is not owner/name", e.Repository)
	}
	if t := input(getenv, "targets"); t != "" {
		e.Targets, e.TargetsSrc = []byte(t), "input targets"
	} else if path := getenv("SHIPBOT_TARGETS_FILE"); path != "" {
		data, err := readFile(path)
		if err != nil {
			return Env{}, fmt.Errorf("SHIPBOT_TARGETS_FILE: %w", err)
		}
		e.Targets, e.TargetsSrc = data, path
	}
	if s := input(getenv, "stages"); s != "" {
		for _, st := range strings.Split(s, ",") {
			if st = strings.TrimSpace(st); st != "" {
				e.Stages = append(e.Stages, st)
			}
		}
	}
	var err error
	if e.DryRun, err = boolInput(getenv, "dry-run", false); err != nil {
		return Env{}, err
	}
	if e.Wait, err = boolInput(getenv, "wait", true); err != nil {
		return Env{}, err
	}
	if t := input(getenv, "timeout"); t != "" {
		if e.Timeout, err = time.ParseDuration(t); err != nil || e.Timeout <= 0 {
			return Env{}, fmt.Errorf("input timeout: %q is not a positive duration like 30m", t)
		}
	}
	e.StateDir = getenv("RUNNER_TEMP")
	if e.StateDir == "" {
		e.StateDir = filepath.Join(getenv("GITHUB_WORKSPACE"), ".shipbot")
	}
	return e, nil
}

func boolInput(getenv func(string) string, name string, def bool) (bool, error) {
	switch strings.ToLower(input(getenv, name)) {
	case "":
		return def, nil
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("input %s: want true or false, got %q", name, input(getenv, name))
}

// RunURL links to the workflow run.
func (e Env) RunURL() string {
	if e.RunID == "" {
		return ""
	}
	return fmt.Sprintf("%s/%s/actions/runs/%s", strings.TrimRight(e.ServerURL, "/"), e.Repository, e.RunID)
}

// Commands writes workflow commands (annotations, masks) to the log.
type Commands struct{ W io.Writer }

// escapeData escapes a workflow command's message as the runner expects.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// Mask hides value in everything the job prints afterwards. Empty values
// are skipped: masking "" would be meaningless.
func (c Commands) Mask(value string) {
	for _, line := range strings.Split(value, "\n") {
		if strings.TrimSpace(line) != "" {
			fmt.Fprintf(c.W, "::add-mask::%s\n", escapeData(line))
		}
	}
}

// Error is an error annotation.
func (c Commands) Error(title, msg string) {
	fmt.Fprintf(c.W, "::error title=%s::%s\n", escapeProperty(title), escapeData(msg))
}

// Warning is a warning annotation.
func (c Commands) Warning(title, msg string) {
	fmt.Fprintf(c.W, "::warning title=%s::%s\n", escapeProperty(title), escapeData(msg))
}

// Notice is a notice annotation.
func (c Commands) Notice(title, msg string) {
	fmt.Fprintf(c.W, "::notice title=%s::%s\n", escapeProperty(title), escapeData(msg))
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// WriteOutputs appends name=value pairs to the GITHUB_OUTPUT file, with the
// heredoc form for values that span lines.
func WriteOutputs(path string, outputs [][2]string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("GITHUB_OUTPUT: %w", err)
	}
	var b strings.Builder
	for _, kv := range outputs {
		if strings.ContainsAny(kv[1], "\r\n") {
			delim := "shipbot_EOF"
			for strings.Contains(kv[1], delim) {
				delim += "_"
			}
			fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", kv[0], delim, kv[1], delim)
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	_, werr := f.WriteString(b.String())
	return errors.Join(werr, f.Close())
}

// AppendSummary appends Markdown to the GITHUB_STEP_SUMMARY file.
func AppendSummary(path, markdown string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("GITHUB_STEP_SUMMARY: %w", err)
	}
	_, werr := f.WriteString(markdown)
	return errors.Join(werr, f.Close())
}
