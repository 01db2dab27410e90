// Package truncate cuts text to a byte limit without splitting a UTF-8
// character: GitHub refuses (or mangles) a field that ends in half of one,
// and its limits (140 for a deployment status, 65535 for a check run
// summary, 65536 for a comment) count characters, so a cut in bytes always
// fits.
package truncate

import "unicode/utf8"

// Bytes returns s when it fits in limit bytes; otherwise the longest prefix
// of whole characters that fits together with mark, followed by mark, which
// tells the reader something was cut ("…"). A mark longer than limit is
// left out, so the result never exceeds limit.
func Bytes(s string, limit int, mark string) string {
	if limit < 0 {
		limit = 0
	}
	if len(s) <= limit {
		return s
	}
	if len(mark) > limit {
		mark = ""
	}
	cut := limit - len(mark)
	// s[cut] is the first byte left out: stepping back to a rune start
	// leaves out the whole character it belongs to.
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
