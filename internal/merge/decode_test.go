package merge

import "testing"

func TestOnlyMergesIntoTheDefaultBranchDeploy(t *testing.T) {
	for _, tc := range []struct {
		name, base string
		merged     bool
		want       bool
	}{
		{"merged into the default branch", "main", true, true},
		{"merged into a release branch", "release/1.x", true, false},
		{"closed without merging", "main", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := []byte(`{"action":"closed","repository":{"full_name":"acme/api","default_branch":"main"},
				"pull_request":{"number":7,"merged":` + map[bool]string{true: "true", false: "false"}[tc.merged] + `,
				"merge_commit_sha":"abc","base":{"ref":"` + tc.base + `"},"head":{"sha":"def"}}}`)
			_, ok, err := fromPullRequest(payload)
			if err != nil || ok != tc.want {
				t.Fatalf("fromPullRequest = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
}
