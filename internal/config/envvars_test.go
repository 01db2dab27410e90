package config

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnvVarsListEveryVariableTheServiceReads asks ServerFromEnv which
// variables it reads: each must be documented in EnvVars (and so in README
// and `bot serve --help`), and each documented one must be read.
func TestEnvVarsListEveryVariableTheServiceReads(t *testing.T) {
	var read []string
	getenv := func(k string) string {
		if !slices.Contains(read, k) {
			read = append(read, k)
		}
		return ""
	}
	if _, err := ServerFromEnv(getenv, files(nil)); err != nil {
		t.Fatalf("ServerFromEnv with nothing set: %v", err)
	}
	var documented []string
	for _, v := range EnvVars {
		documented = append(documented, v.Name)
		if v.Meaning == "" || v.Default == "" {
			t.Errorf("%s: meaning and default must both be given", v.Name)
		}
	}
	slices.Sort(read)
	slices.Sort(documented)
	if diff := cmp.Diff(read, documented); diff != "" {
		t.Errorf("variables read by ServerFromEnv (-) vs documented in EnvVars (+):\n%s", diff)
	}
}

// TestReadmeListsEnvVars keeps README's "Server configuration" table equal
// to EnvVars.
func TestReadmeListsEnvVars(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "| variable | meaning | default |\n"
	_, rest, ok := strings.Cut(string(readme), header)
	if !ok {
		t.Fatalf("README.md has no table starting %q", header)
	}
	table, _, _ := strings.Cut(header+rest, "\n\n")
	if diff := cmp.Diff(strings.TrimSpace(EnvMarkdown()), table); diff != "" {
		t.Errorf("README.md's server configuration table differs from config.EnvVars (-want +got):\n%s\nwant:\n%s", diff, EnvMarkdown())
	}
}
