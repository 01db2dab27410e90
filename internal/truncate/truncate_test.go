package truncate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBytes(t *testing.T) {
	tests := []struct {
		s     string
		limit int
		mark  string
		want  string
	}{
		{"short", 10, "…", "short"},
		{"exactly10!", 10, "…", "exactly10!"},
		{"abcdefghijk", 10, "…", "abcdefg…"}, // 7 + 3 bytes of "…"
		{"가나다라", 8, "", "가나"},                // 3-byte runes: 6 fit, not a third's head
		{"가나다라", 8, "…", "가…"},               // 3 + 3
		{"가나다라", 7, "…", "가…"},               // a cut inside 나 drops all of it
		{"a🚀b", 4, "", "a"},                  // a 4-byte rune does not fit in 3
		{"abcdef", 2, "…", "ab"},             // no room for the mark
		{"abcdef", 0, "…", ""},
		{"abc", -1, "", ""},
	}
	for _, tt := range tests {
		got := Bytes(tt.s, tt.limit, tt.mark)
		if got != tt.want {
			t.Errorf("Bytes(%q, %d, %q) = %q, want %q", tt.s, tt.limit, tt.mark, got, tt.want)
		}
		if !utf8.ValidString(got) || len(got) > max(tt.limit, 0) {
			t.Errorf("Bytes(%q, %d, %q) = %q: invalid UTF-8 or over the limit", tt.s, tt.limit, tt.mark, got)
		}
	}
	// Every limit over multibyte text: never half a character.
	s := strings.Repeat("배포가 실패했습니다 🚀 ", 20)
	for n := 0; n <= len(s)+1; n++ {
		if got := Bytes(s, n, "…"); !utf8.ValidString(got) || len(got) > n {
			t.Fatalf("Bytes(…, %d) = %q (%d bytes)", n, got, len(got))
		}
	}
}
