package release

import (
	"strings"
	"testing"
)

func TestChooseBump(t *testing.T) {
	tests := []struct {
		name       string
		labels     []string
		title      string
		body       string
		mode       string
		want       Bump
		explicit   bool
		wantReason string // substring
		wantErr    string // substring
	}{
		{name: "feat", title: "feat: add widgets", mode: "conventional", want: Minor, wantReason: "is a feature"},
		{name: "feat with scope", title: "feat(api): add widgets", mode: "conventional", want: Minor},
		{name: "type is case-insensitive", title: "Feat(API): add widgets", mode: "conventional", want: Minor},
		{name: "fix", title: "fix: nil deref", mode: "conventional", want: Patch, wantReason: "is a fix"},
		{name: "perf", title: "perf(db): index", mode: "conventional", want: Patch},
		{name: "chore", title: "chore: bump deps", mode: "conventional", want: Patch, wantReason: `of type "chore"`},
		{name: "docs", title: "docs: readme", mode: "conventional", want: Patch},
		{name: "breaking !", title: "feat!: drop v1 API", mode: "conventional", want: Major, wantReason: "breaking"},
		{name: "breaking ! with scope", title: "refactor(core)!: rename", mode: "conventional", want: Major},
		{name: "BREAKING CHANGE footer", title: "fix: tighten parsing", body: "Stricter.\n\nBREAKING CHANGE: rejects trailing commas", mode: "conventional", want: Major, wantReason: "BREAKING CHANGE footer"},
		{name: "BREAKING-CHANGE footer, CRLF body", title: "feat: x", body: "a\r\n\r\nBREAKING-CHANGE: y\r\n", mode: "conventional", want: Major},
		{name: "footer on a non-conventional title", title: "Rework config", body: "BREAKING CHANGE: keys renamed", mode: "conventional", want: Major},
		{name: "footer must be upper case", title: "fix: x", body: "breaking change: not really", mode: "conventional", want: Patch},
		{name: "footer mentioned mid-line is not a footer", title: "fix: x", body: "no BREAKING CHANGE: here", mode: "conventional", want: Patch},
		{name: "footer inside an HTML comment (PR template) ignored", title: "fix: x", body: "<!--\nBREAKING CHANGE: describe it here\n-->\nfixes #1", mode: "conventional", want: Patch},
		{name: "quotes in the title are kept as typed", title: `fix: handle "x"`, mode: "conventional", want: Patch, wantReason: `title "fix: handle "x"" is a fix`},
		{name: "non-conventional title", title: "Update README", mode: "conventional", want: Patch, wantReason: "not a Conventional Commit"},
		{name: "missing colon is not conventional", title: "feat add widgets", mode: "conventional", want: Patch},
		{name: "empty subject is not conventional", title: "feat: ", mode: "conventional", want: Patch},
		{name: "default mode is conventional", title: "feat: add widgets", mode: "", want: Minor},
		{name: "patch mode ignores the title", title: "feat!: drop v1", body: "BREAKING CHANGE: x", mode: "patch", want: Patch, wantReason: `mode "patch"`},
		{name: "label overrides title", labels: []string{"bug", "semver:patch"}, title: "feat!: drop v1", mode: "conventional", want: Patch, explicit: true, wantReason: "label semver:patch"},
		{name: "label overrides patch mode", labels: []string{"semver:minor"}, title: "chore: x", mode: "patch", want: Minor, explicit: true},
		{name: "major label is explicit", labels: []string{"semver:major"}, title: "chore: x", mode: "conventional", want: Major, explicit: true},
		{name: "labels compare case-insensitively", labels: []string{"SemVer:Minor"}, title: "fix: x", mode: "conventional", want: Minor, explicit: true},
		{name: "the same label twice is no conflict", labels: []string{"semver:minor", "SEMVER:MINOR"}, title: "fix: x", mode: "conventional", want: Minor, explicit: true},
		{name: "semver:none", labels: []string{"semver:none"}, title: "feat: x", mode: "conventional", want: None, explicit: true, wantReason: "without a release"},
		{name: "conflicting labels", labels: []string{"semver:patch", "semver:major"}, title: "feat: x", mode: "conventional", wantErr: "conflicting labels semver:major, semver:patch"},
		{name: "none conflicts with a bump", labels: []string{"semver:none", "semver:minor"}, mode: "conventional", wantErr: "conflicting labels semver:minor, semver:none"},
		{name: "unknown semver label", labels: []string{"semver:majro"}, mode: "conventional", wantErr: `unknown label "semver:majro"`},
		{name: "unknown mode", title: "feat: x", mode: "calver", wantErr: `unknown bump mode "calver"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseBump(tt.labels, tt.title, tt.body, tt.mode)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ChooseBump() = %+v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ChooseBump() error: %v", err)
			}
			if got.Bump != tt.want || got.Explicit != tt.explicit {
				t.Errorf("ChooseBump() = %v explicit=%v, want %v explicit=%v (%s)", got.Bump, got.Explicit, tt.want, tt.explicit, got.Reason)
			}
			if got.Reason == "" || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.wantReason)
			}
		})
	}
}
