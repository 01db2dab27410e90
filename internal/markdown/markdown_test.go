package markdown

import (
	"regexp"
	"strings"
	"testing"
)

// read scans escaped Markdown as GitHub's parser would: a backslash before
// ASCII punctuation makes it a literal, as do the entities &lt; and &gt;;
// a zero-width space is invisible. It returns what the reader sees and the
// characters Markdown would still act on.
func read(md string) (visible, live string) {
	var v, l strings.Builder
	for i := 0; i < len(md); {
		switch {
		case md[i] == '\\' && i+1 < len(md) && strings.IndexByte(punct, md[i+1]) >= 0:
			v.WriteByte(md[i+1])
			i += 2
		case strings.HasPrefix(md[i:], "&lt;"), strings.HasPrefix(md[i:], "&gt;"):
			v.WriteString(map[string]string{"&lt;": "<", "&gt;": ">"}[md[i:i+4]])
			i += 4
		case strings.HasPrefix(md[i:], zwsp):
			i += len(zwsp)
		case md[i] == '_' && i > 0 && isWord(md[i-1]) && i+1 < len(md) && isWord(md[i+1]):
			v.WriteByte('_') // intraword: no emphasis
			i++
		default:
			if strings.IndexByte("<>[]|`*_~&$\\\n\r", md[i]) >= 0 {
				l.WriteByte(md[i])
			}
			v.WriteByte(md[i])
			i++
		}
	}
	return v.String(), l.String()
}

func isWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

const punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// linked finds what GitHub links after rendering: a mention or an e-mail
// (an @ right before a name), a bare URL or www. address.
var linked = regexp.MustCompile(`@[A-Za-z0-9]|://|(?i)www\.`)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the exact Markdown, where it matters
		reads    string // what the reader sees; "" means in
	}{
		{
			name:  "the PR title of issue 10",
			in:    "fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team",
			want:  "fix: x &lt;!-- hidden !\\[p\\](https:\u200b//evil.example/p.png) @\u200bacme/security-team",
			reads: "fix: x <!-- hidden ![p](https://evil.example/p.png) @acme/security-team",
		},
		{
			name:  "a target error body",
			in:    "502 Bad Gateway: <!-- upstream -->\n| pod | state |\n|---|---|\r\n| api-1 | crash |",
			reads: "502 Bad Gateway: <!-- upstream --> | pod | state | |---|---|  | api-1 | crash |",
		},
		{
			name:  "a freeze reason",
			in:    "@acme/security-team <img src=x>",
			want:  "@\u200bacme/security-team &lt;img src=x&gt;",
			reads: "@acme/security-team <img src=x>",
		},
		{name: "emphasis, code, strikethrough, math", in: "**bold** _it_ `code` ~~gone~~ $x^2$"},
		{name: "underscores inside words stay", in: "MISSING_KEY _em_ __b__ a_ _b x_1", want: "MISSING_KEY \\_em\\_ \\_\\_b\\_\\_ a\\_ \\_b x_1"},
		{name: "entities stay literal", in: "&lt;!-- &#64;alice", want: "\\&lt;!-- \\&#64;alice"},
		{name: "autolinks", in: "see https://evil.example, www.evil.example or mail bob@evil.example",
			want: "see https:\u200b//evil.example, www\u200b.evil.example or mail bob@\u200bevil.example"},
		{name: "a leading heading", in: "# Big", want: "\\# Big"},
		{name: "a leading quote", in: "> [!WARNING] rotate keys", want: "&gt; \\[!WARNING\\] rotate keys"},
		{name: "a leading list item", in: "- item", want: "\\- item"},
		{name: "a leading ordered item", in: "12. item", want: "12\\. item"},
		{name: "a thematic break", in: "---", want: "\\---"},
		{name: "a lone heading marker", in: "##", want: "\\##"},
		{name: "not blocks", in: "#123 -1 +2 1.5 #hashtag", want: "#123 -1 +2 1.5 #hashtag"},
		{name: "issue references stay", in: "fix #123 (acme/api#7)", want: "fix #123 (acme/api#7)"},
		{name: "backslashes cannot undo the escaping", in: `\<b>\`, want: `\\&lt;b&gt;\\`},
		{name: "bidi overrides are dropped", in: "abc\u202edcba", want: "abcdcba", reads: "abcdcba"},
		{name: "Korean and emoji pass", in: "배포 실패 🚀", want: "배포 실패 🚀"},
		{name: "surrounding space trimmed", in: "  \n title \t", want: "title", reads: "title"},
		{name: "invalid UTF-8", in: "a\xffb", want: "a\uFFFDb", reads: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if tt.want != "" && got != tt.want {
				t.Errorf("Escape(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			v, l := read(got)
			if m := l + linked.FindString(got); m != "" {
				t.Errorf("Escape(%q) = %q leaves %q live", tt.in, got, m)
			}
			reads := tt.reads
			if reads == "" {
				reads = tt.in
			}
			if v != reads {
				t.Errorf("Escape(%q) reads %q, want %q", tt.in, v, reads)
			}
		})
	}
}

func TestLink(t *testing.T) {
	tests := []struct{ text, url, want string }{
		{"execution", "https://ci.example/runs/42?attempt=1#log", "[execution](https://ci.example/runs/42?attempt=1#log)"},
		// The url a downstream reported, trying to close the link and
		// add an image.
		{"execution", "https://ci.example/x) ![p](https://evil.example/p.png",
			"[execution](https://ci.example/x%29%20%21%5Bp%5D%28https://evil.example/p.png)"},
		{"execution", "https://ci.example/x?q=a b&c=(d)<e>|`f`#g)h",
			"[execution](https://ci.example/x?q=a%20b&c=%28d%29%3Ce%3E%7C%60f%60#g%29h)"},
		{"execution", "https://github.com@evil.example/login", "[execution](https://evil.example/login)"},
		{"execution", "HTTP://[::1]:8080/x", "[execution](http://[::1]:8080/x)"},
		{"execution", "javascript:alert(1)", "execution"},
		{"execution", "data:text/html,<script>", "execution"},
		{"execution", "//evil.example/x", "execution"},
		{"execution", "/relative", "execution"},
		{"execution", "", "execution"},
		{"[run] @bob", "https://ci.example/", "[\\[run\\] @\u200bbob](https://ci.example/)"},
	}
	for _, tt := range tests {
		if got := Link(tt.text, tt.url); got != tt.want {
			t.Errorf("Link(%q, %q)\n got %q\nwant %q", tt.text, tt.url, got, tt.want)
		}
	}
}
