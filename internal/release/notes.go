package release

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/shipbot/shipbot/internal/markdown"
)

// DefaultServerURL is used for links when NotesInput.ServerURL is empty.
const DefaultServerURL = "https://github.com"

// NotesInput is what the release notes of one merge say.
type NotesInput struct {
	Repo      string // owner/name
	Tag       string
	PrevTag   string // empty for the first release
	PRNumber  int    // 0 for a release without a pull request
	Title     string
	Author    string // login, without @
	PRURL     string // defaults to <ServerURL>/<Repo>/pull/<PRNumber>
	ServerURL string // GitHub or GitHub Enterprise Server web URL
	Bump      Bump
	Reason    string
}

// Notes renders the Markdown body of the GitHub Release. The PR title and
// the reason (which quotes it) are escaped because they are user text: a
// stray "*" or "<!--" must not restyle or swallow the notes, nor an "@team"
// notify anyone in shipbot's name. The author is a link to their profile,
// not a mention: a release is no reason to notify them.
func Notes(in NotesInput) string {
	server := strings.TrimRight(in.ServerURL, "/")
	if server == "" {
		server = DefaultServerURL
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", in.Tag)

	if in.PRNumber > 0 {
		link := in.PRURL
		if link == "" {
			link = fmt.Sprintf("%s/%s/pull/%d", server, in.Repo, in.PRNumber)
		}
		title := markdown.Escape(in.Title)
		if title == "" {
			title = "(untitled)"
		}
		fmt.Fprintf(&b, "- %s (%s)", title, markdown.Link(fmt.Sprintf("#%d", in.PRNumber), link))
		if in.Author != "" {
			fmt.Fprintf(&b, " by %s", markdown.Link("@"+in.Author, server+"/"+url.PathEscape(in.Author)))
		}
		b.WriteString("\n\n")
	} else {
		b.WriteString("- Released from a push without a pull request.\n\n")
	}

	fmt.Fprintf(&b, "**Version bump:** %s", in.Bump)
	if in.Reason != "" {
		fmt.Fprintf(&b, " — %s", markdown.Escape(in.Reason))
	}
	b.WriteString("\n\n")

	if in.PrevTag != "" {
		fmt.Fprintf(&b, "**Full changelog:** %s/%s/compare/%s...%s\n", server, in.Repo, pathEscape(in.PrevTag), pathEscape(in.Tag))
	} else {
		b.WriteString("First release.\n")
	}
	return b.String()
}

// pathEscape escapes a tag for a URL path but keeps "/", which GitHub's
// compare view accepts in tag names (e.g. a "release/" prefix).
func pathEscape(tag string) string {
	return strings.ReplaceAll(url.PathEscape(tag), "%2F", "/")
}
