package schemacheck

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// TestValidateResponseRejectsWrongShapes makes sure the checker is not
// vacuous: a wrong type, a missing required field and an undocumented
// success status all fail.
func TestValidateResponseRejectsWrongShapes(t *testing.T) {
	cases := []struct {
		pattern string
		status  int
		body    string
		want    string
	}{
		{"GET /repos/{owner}/{repo}/tags", 200, `[{"name":1}]`, "name"},
		{"POST /repos/{owner}/{repo}/git/refs", 201, `{"ref":"refs/tags/v1"}`, "node_id"},
		{"GET /repos/{owner}/{repo}/pulls/{pull_number}", 299, `{}`, "not a documented response"},
		{"GET /nowhere", 200, `{}`, "not in the OpenAPI subset"},
	}
	for _, tc := range cases {
		err := ValidateResponse(tc.pattern, tc.status, []byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateResponse(%s, %d, %s) = %v, want an error mentioning %q", tc.pattern, tc.status, tc.body, err, tc.want)
		}
	}
	if err := ValidateResponse("GET /repos/{owner}/{repo}/branches/{branch}/protection", http.StatusForbidden,
		[]byte(`{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest"}`)); err != nil {
		t.Errorf("an undocumented 403 with GitHub's error shape should pass: %v", err)
	}
}

// TestSubsetMatchesRoutes catches a route added without regenerating
// testdata/openapi/subset.json, and operations left over from removed ones.
func TestSubsetMatchesRoutes(t *testing.T) {
	doc, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	inSubset := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSubset[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, r := range githubtest.Routes() {
		if !inSubset[r] {
			t.Errorf("route %s has no operation in subset.json; rerun extract.go", r)
		}
		delete(inSubset, r)
	}
	for op := range inSubset {
		t.Errorf("subset.json has %s, which the fake does not serve", op)
	}
}

// TestValidateWebhookRejectsWrongShapes makes sure the webhook check is not
// vacuous either.
func TestValidateWebhookRejectsWrongShapes(t *testing.T) {
	cases := []struct {
		event, body, want string
	}{
		{"merge_group", `{"action":"checks_requested"}`, "merge_group"},
		{"merge_group", `{"action":"destroyed","reason":"landed","merge_group":{}}`, "reason"},
		{"merge_group", `{"action":"exploded"}`, "webhook-merge-group-exploded not in the OpenAPI subset"},
		{"status", `{"state":"green"}`, "state"},
		{"check_suite", `{"action":"completed","check_suite":{"id":"one"}}`, "check_suite"},
		{"push", `not json`, "push payload"},
	}
	for _, tc := range cases {
		err := ValidateWebhook(tc.event, []byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateWebhook(%s, %s) = %v, want an error mentioning %q", tc.event, tc.body, err, tc.want)
		}
	}
}
