// Package markdown makes text that came from outside shipbot (PR titles,
// callback URLs, target error bodies, freeze reasons, command arguments,
// logins) safe to put into the GitHub Markdown that shipbot writes: the PR
// comment, check runs, release notes, chatops replies and the Action's step
// summary. shipbot posts as its App, so whatever such text could make
// Markdown do (hide the rest of a comment, load an image from a tracker,
// notify a team, link to a phishing page, break the stage table) it would
// do in shipbot's name.
//
// Escape is for text, Link for a link to a URL from outside. Plain-text
// fields (a check run's title, a deployment status's description) are not
// Markdown and take the text as it is.
package markdown

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// zwsp (U+200B ZERO WIDTH SPACE) goes where a character must stay visible
// but must not start what GitHub would make of it: after "@" (a mention
// or an e-mail autolink), inside "://" and "www." (bare-URL autolinks).
// It is invisible, not Markdown (nothing can escape it away), and GitHub
// matches a mention or an autolink only on contiguous text, so no
// renderer's rules about backslashes decide whether it works; Renovate
// defeats mentions in the release notes it quotes the same way.
const zwsp = "\u200b"

// Escape returns s as one line of GitHub Markdown that renders as s reads:
// every character that Markdown, HTML or GitHub's autolinking would act
// on is neutralised, so the result can go into a sentence, a list item or
// a table cell without changing anything around it.
//
//   - Line breaks, tabs and other control characters become spaces: a
//     newline would end a table row or a list item. Bidirectional
//     overrides are dropped, since they can make text read as something
//     else than it is.
//   - "<" and ">" become "&lt;" and "&gt;": no HTML tag or comment (an
//     unclosed "<!--" would hide the rest of the comment), no <autolink>,
//     no quote; the raw text then holds no "<!--" either.
//   - `\ * _ ~ [ ] & | $` and backticks get a backslash: no emphasis,
//     code span, link or image, entity, table cell or math. ("_" inside a
//     word, which cannot emphasise, is left alone.)
//   - A leading "# ", "- ", "+ ", "--", "=" or "1. " (block syntax when
//     the text starts a line, as in "- <title>") gets a backslash too.
//   - "@" is followed by a zero-width space: no mention of a user or team
//     (GitHub renders "\@" as "@" and would still notify), no e-mail link.
//   - "://" and "www." get one too: no bare-URL autolinks, whose target
//     the sender chose.
//
// Issue and pull request references (#123) are left alone: they link
// within GitHub, notify nobody, and a PR title means them.
func Escape(s string) string {
	// strings.Map also turns invalid UTF-8 into U+FFFD, so the result is
	// valid UTF-8 whatever came in.
	s = strings.TrimSpace(strings.Map(clean, s))
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	lead := leadingMarker(s)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '_' && i > 0 && wordBefore(s[:i]) && wordAfter(s[i+1:]):
			// Inside a word (MISSING_KEY, deploy_key) "_" can neither
			// open nor close emphasis: no backslash, so such names read
			// the same in the Markdown too.
			b.WriteByte('_')
		case i == lead || strings.ContainsRune("\\`*_~[]&|$", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '@':
			b.WriteString("@" + zwsp)
		case r == ':' && strings.HasPrefix(s[i+1:], "//"):
			b.WriteString(":" + zwsp)
		case (r == 'w' || r == 'W') && len(s) >= i+4 && strings.EqualFold(s[i:i+4], "www."):
			b.WriteString(s[i:i+3] + zwsp)
			n = 3
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

func wordBefore(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func wordAfter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// clean maps control characters to spaces and drops bidirectional
// formatting characters.
func clean(r rune) rune {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F:
		return -1
	case unicode.IsControl(r):
		return ' '
	}
	return r
}

// leadingMarker returns the index of the character that would make s a
// block (heading, quote, list item, thematic break, setext underline)
// when it starts a line, as in "- <title>", or -1. s has no leading space.
// "#123" or "-1" are not blocks and keep their look.
func leadingMarker(s string) int {
	if s == "" {
		return -1
	}
	spaceOrEnd := func(i int) bool { return i >= len(s) || s[i] == ' ' }
	switch c := s[0]; c {
	case '=':
		return 0
	case '#':
		i := strings.IndexFunc(s, func(r rune) bool { return r != '#' })
		if i < 0 || (i <= 6 && s[i] == ' ') {
			return 0
		}
	case '-', '+':
		if spaceOrEnd(1) || (c == '-' && s[1] == '-') {
			return 0
		}
	default:
		i := 0
		for i < len(s) && i < 10 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i > 0 && i < len(s) && (s[i] == '.' || s[i] == ')') && spaceOrEnd(i+1) {
			return i
		}
	}
	return -1
}

// Link returns a Markdown link labelled text (escaped) to rawURL, for
// URLs from outside such as a callback's execution link. Only an absolute
// http or https URL is linked, without any user:password@ (which lets a
// link read as one host and go to another); every character that could end
// the link or start other Markdown is percent-encoded, so the URL cannot
// inject anything however it is written. Any other URL gives the label
// alone.
func Link(text, rawURL string) string {
	label := Escape(text)
	dest, ok := destination(rawURL)
	if !ok || label == "" {
		return label
	}
	return "[" + label + "](" + dest + ")"
}

// destination is rawURL made safe as a Markdown link destination, or false
// when it is not an absolute http(s) URL.
func destination(rawURL string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	u.Scheme, u.User = scheme, nil
	s := u.String()
	var b strings.Builder
	b.Grow(len(s))
	host := len(scheme+"://") + len(u.Host) // brackets there are an IPv6 address
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeInURL(c) || (i < host && (c == '[' || c == ']')) {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String(), true
}

// safeInURL reports the bytes a link destination keeps as they are: the
// URL characters with no meaning to Markdown (no parentheses, brackets,
// angle brackets, quotes, backslash, backtick, pipe, asterisk, space).
func safeInURL(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#@!$&+,;=%", c) >= 0
}
