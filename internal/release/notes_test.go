package release

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNotes(t *testing.T) {
	tests := []struct {
		name string
		in   NotesInput
		want string
	}{
		{
			name: "release with a previous tag",
			in: NotesInput{
				Repo: "acme/api", Tag: "v1.5.0", PrevTag: "v1.4.2", PRNumber: 123,
				Title: "feat(api): add widgets", Author: "alice", Bump: Minor,
				Reason: `title "feat(api): add widgets" is a feature: minor`,
			},
			want: "## v1.5.0\n\n" +
				"- feat(api): add widgets ([#123](https://github.com/acme/api/pull/123)) by [@\u200balice](https://github.com/alice)\n\n" +
				"**Version bump:** minor — title \"feat(api): add widgets\" is a feature: minor\n\n" +
				"**Full changelog:** https://github.com/acme/api/compare/v1.4.2...v1.5.0\n",
		},
		{
			name: "first release, enterprise server, explicit PR URL",
			in: NotesInput{
				Repo: "acme/api", Tag: "v0.1.0", PRNumber: 1, Title: "Initial import", Author: "bob",
				PRURL: "https://ghe.example/acme/api/pull/1", ServerURL: "https://ghe.example/", Bump: Patch,
			},
			want: "## v0.1.0\n\n" +
				"- Initial import ([#1](https://ghe.example/acme/api/pull/1)) by [@\u200bbob](https://ghe.example/bob)\n\n" +
				"**Version bump:** patch\n\n" +
				"First release.\n",
		},
		{
			name: "no pull request",
			in:   NotesInput{Repo: "acme/api", Tag: "v1.4.3", PrevTag: "v1.4.2", ServerURL: "https://ghe.example", Bump: Patch, Reason: `bump mode "patch": patch`},
			want: "## v1.4.3\n\n" +
				"- Released from a push without a pull request.\n\n" +
				"**Version bump:** patch — bump mode \"patch\": patch\n\n" +
				"**Full changelog:** https://ghe.example/acme/api/compare/v1.4.2...v1.4.3\n",
		},
		{
			name: "markdown in the title is escaped; slash prefixes stay readable",
			in: NotesInput{
				Repo: "acme/mono", Tag: "api/v2.0.0", PrevTag: "api/v1.9.9", PRNumber: 9,
				Title: "fix: *don't* break [links] <script>\nsecond line", Bump: Patch,
			},
			want: "## api/v2.0.0\n\n" +
				"- fix: \\*don't\\* break \\[links\\] &lt;script&gt; second line ([#9](https://github.com/acme/mono/pull/9))\n\n" +
				"**Version bump:** patch\n\n" +
				"**Full changelog:** https://github.com/acme/mono/compare/api/v1.9.9...api/v2.0.0\n",
		},
		{
			name: "the PR title of issue 10 hides, loads and mentions nothing",
			in: NotesInput{
				Repo: "acme/api", Tag: "v1.4.3", PrevTag: "v1.4.2", PRNumber: 12, Author: "mallory", Bump: Patch,
				Title:  "fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team",
				Reason: `title "fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team" is a fix: patch`,
			},
			want: "## v1.4.3\n\n" +
				"- fix: x &lt;!-- hidden !\\[p\\](https:\u200b//evil.example/p.png) @\u200bacme/security-team " +
				"([#12](https://github.com/acme/api/pull/12)) by [@\u200bmallory](https://github.com/mallory)\n\n" +
				"**Version bump:** patch — title \"fix: x &lt;!-- hidden !\\[p\\](https:\u200b//evil.example/p.png) @\u200bacme/security-team\" is a fix: patch\n\n" +
				"**Full changelog:** https://github.com/acme/api/compare/v1.4.2...v1.4.3\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Notes(tt.in)); diff != "" {
				t.Errorf("Notes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
