package deploytest

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// ExampleRunName is the run-name of action/examples/workflow-dispatch.yml:
// the deploy workflow README tells users to write, whose runs shipbot finds
// by the idempotency key in their title. Tests title the fake's runs with
// it, so the example and the finding cannot drift apart.
func ExampleRunName(tb testing.TB) string {
	tb.Helper()
	const example = "action/examples/workflow-dispatch.yml"
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	// The module root holds the examples; tests run in their package's
	// directory somewhere below it.
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod above the test's directory to find %s from", example)
		}
		dir = parent
	}
	data, err := os.ReadFile(filepath.Join(dir, example))
	if err != nil {
		tb.Fatal(err)
	}
	var wf struct {
		RunName string `yaml:"run-name"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil || wf.RunName == "" {
		tb.Fatalf("%s: run-name %q, %v", example, wf.RunName, err)
	}
	return wf.RunName
}
