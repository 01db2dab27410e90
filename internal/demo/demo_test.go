package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/demo"
)

func TestDemoPlaysTheStories(t *testing.T) {
	var out bytes.Buffer
	if err := demo.Run(context.Background(), &out, demo.Options{Dir: t.TempDir()}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"A merge would release v0.1.0",
		"[v0.1.0] qa   triggered: v0.1.0 via spinnaker-qa, attempt 1",
		"[v0.1.0] prod passed",
		"v0.1.0: deployed (success)",
		"[v0.1.1] prod skipped: label no-deploy-to-prod",
		"v0.1.1: deployed (1 stage(s) skipped by label) (success)",
		"Refused by the merge gate: nothing released (action_required)",
		"waiting: qa is deploying v0.1.2",
		"v0.1.3: deployed (success)",
		"has 1 comment(s) (shipbot's sticky one",
		"reactions on the command: eyes +1",
		"shipbot replies: v0.1.1 will deploy to prod",
		"[v0.1.1] prod passed",
		"demo finished",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Serialization: v0.1.3 enters qa only after v0.1.2 passed it.
	if i, j := strings.Index(got, "[v0.1.2] qa   passed"), strings.Index(got, "[v0.1.3] qa   entered"); i < 0 || j < 0 || j < i {
		t.Errorf("v0.1.3 entered qa before v0.1.2 passed it")
	}
	if strings.Contains(got, "demo-constraint-secret") {
		t.Error("the constraint secret appears in the output")
	}
	if t.Failed() {
		t.Log(got)
	}
}
