package githubtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

func TestExpandRunName(t *testing.T) {
	in := map[string]string{"tag": "v1.2.0", "stage": "qa", "run_id": "r1", "attempt": "3"}
	for _, tc := range []struct{ runName, want string }{
		{"deploy ${{ inputs.tag }} to ${{inputs.stage}}", "deploy v1.2.0 to qa"},
		{"[${{ inputs.run_id }}-${{ inputs.stage }}-${{ github.event.inputs.attempt }}]", "[r1-qa-3]"},
		{"${{ inputs.missing }}x", "x"},
		{"${{ github.ref_name }}", "${{ github.ref_name }}"},
	} {
		if got := ExpandRunName(tc.runName, in); got != tc.want {
			t.Errorf("ExpandRunName(%q) = %q, want %q", tc.runName, got, tc.want)
		}
	}
}

// A dispatched run is titled by the workflow's run-name (or, without one,
// its name, as GitHub does), and a WorkflowSpec's conclusion completes it
// after it has been served in progress the given number of times; every
// answer stays inside GitHub's schema.
func TestWorkflowSpec(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	seed(t, s)
	gh := ghClient(t, s)
	s.SetWorkflow(testRepo, "deploy.yml", WorkflowSpec{
		RunName: "deploy ${{ inputs.tag }} [${{ inputs.key }}]",
		Conclusion: func(in map[string]string) string {
			if in["key"] == "manual" {
				return ""
			}
			return in["want"]
		},
		InProgress: 2,
	})
	dispatch := func(workflow, key, want string) int64 {
		t.Helper()
		_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", workflow, github.CreateWorkflowDispatchEventRequest{
			Ref: "main", Inputs: map[string]any{"tag": "v1.0.0", "key": key, "want": want},
		})
		if err != nil {
			t.Fatal(err)
		}
		ds := s.Dispatches(testRepo)
		return ds[len(ds)-1].RunID
	}
	ok := dispatch("deploy.yml", "k1", "success")
	bad := dispatch("deploy.yml", "k2", "cancelled")
	manual := dispatch("deploy.yml", "manual", "")
	other := dispatch("other.yml", "k3", "success")

	titles := map[int64]string{}
	for _, w := range s.WorkflowRuns(testRepo) {
		titles[w.ID] = w.Title
		if !strings.HasSuffix(w.HTMLURL, fmt.Sprintf("/acme/api/actions/runs/%d", w.ID)) {
			t.Errorf("run %d html url %q", w.ID, w.HTMLURL)
		}
	}
	if titles[ok] != "deploy v1.0.0 [k1]" || titles[bad] != "deploy v1.0.0 [k2]" || titles[other] != "other" {
		t.Errorf("titles %v", titles)
	}

	get := func(id int64) *github.WorkflowRun {
		t.Helper()
		run, _, err := gh.Actions.GetWorkflowRunByID(ctx, "acme", "api", id)
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	// Served twice in progress (once listed, once fetched), then completed.
	runs, _, err := gh.Actions.ListWorkflowRunsByFileName(ctx, "acme", "api", "deploy.yml", &github.ListWorkflowRunsOptions{Event: "workflow_dispatch"})
	if err != nil || runs.GetTotalCount() != 3 {
		t.Fatalf("list: %v, %v", runs, err)
	}
	for _, r := range runs.WorkflowRuns {
		if r.GetStatus() != "in_progress" || r.GetDisplayTitle() != titles[r.GetID()] {
			t.Errorf("run %d listed %s %q", r.GetID(), r.GetStatus(), r.GetDisplayTitle())
		}
	}
	if r := get(ok); r.GetStatus() != "in_progress" || r.Conclusion != nil {
		t.Errorf("second serve: %s %v", r.GetStatus(), r.GetConclusion())
	}
	if r := get(ok); r.GetStatus() != "completed" || r.GetConclusion() != "success" {
		t.Errorf("third serve: %s %s", r.GetStatus(), r.GetConclusion())
	}
	get(bad)
	if r := get(bad); r.GetConclusion() != "cancelled" {
		t.Errorf("bad run: %s %s", r.GetStatus(), r.GetConclusion())
	}
	// No conclusion: the run waits for SetWorkflowRunStatus.
	for range 5 {
		get(manual)
	}
	if r := get(manual); r.GetStatus() != "in_progress" {
		t.Errorf("manual run: %s", r.GetStatus())
	}
	s.SetWorkflowRunStatus(testRepo, manual, "completed", "failure")
	if r := get(manual); r.GetConclusion() != "failure" {
		t.Errorf("manual run after SetWorkflowRunStatus: %s", r.GetConclusion())
	}
	// A workflow without a spec stays queued.
	if r := get(other); r.GetStatus() != "queued" {
		t.Errorf("other.yml run: %s", r.GetStatus())
	}
	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}
