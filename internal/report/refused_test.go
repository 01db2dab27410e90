package report

import (
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
)

// A refused release's section quotes GitHub's answer: on one line,
// escaped, bounded.
func TestRefusedSection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      store.RefusedRelease
		want   []string // in the section
		absent []string
	}{
		{
			name: "ruleset",
			f: store.RefusedRelease{Pipeline: "api", Tag: "api/v1.2.0",
				Reason: "422 Repository rule violations found\n\nCannot create ref due to creations being restricted.\n\n"},
			want: []string{"GitHub refused the release **api/v1.2.0**: 422 Repository rule violations found Cannot create ref due to creations being restricted.\n",
				"tries again"},
		},
		{
			name:   "hostile answer",
			f:      store.RefusedRelease{Pipeline: "api", Tag: "api/v1.2.0", Reason: "<!-- x --> ![p](https://evil.example/p.png) @acme/team\n# heading"},
			want:   []string{"&lt;!--", "!\\[p\\]", "@\u200bacme", "heading"},
			absent: []string{"<!--", "![p]", "](https://evil", "@acme", "\n# heading"},
		},
		{
			name:   "long answer",
			f:      store.RefusedRelease{Pipeline: "api", Tag: "api/v1.2.0", Reason: strings.Repeat("x", 5000)},
			want:   []string{strings.Repeat("x", maxRefusal-len("…")) + "…"},
			absent: []string{strings.Repeat("x", maxRefusal)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := refusedSection(tc.f)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("section:\n%s\nwant it to contain %q", got, w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("section:\n%s\ncontains %q", got, a)
				}
			}
		})
	}
}
