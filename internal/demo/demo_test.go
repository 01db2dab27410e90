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
	for _, want := range []string{
		"shipbot/preview on",
		"A merge would release v0.1.0",
		"shipbot/rollout on",
		"Released v0.1.0",
		"Released v0.1.1",
		"skipped: label no-deploy-to-prod",
		"Refused by the merge gate: nothing released (action_required)",
		"tags now: v0.1.0, v0.1.1; releases: 2",
		"demo finished",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
