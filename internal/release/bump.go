package release

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Bump modes of the repository config (release.bump).
const (
	ModeConventional = "conventional"
	ModePatch        = "patch"
)

// Choice is the bump a merge asks for, and why.
type Choice struct {
	Bump Bump
	// Explicit is true when a semver:* label chose the bump. It matters for
	// Major below 1.0.0: only an explicit semver:major leaves 0.x (see
	// [Next]).
	Explicit bool
	// Reason explains the choice in words for the PR and the release notes.
	Reason string
}

const labelPrefix = "semver:"

var labelBumps = map[string]Bump{"major": Major, "minor": Minor, "patch": Patch, "none": None}

var (
	// type(scope)!: subject. Types are case-insensitive per the Conventional
	// Commits spec; whitespace after the colon is forgiven because people
	// type titles by hand.
	conventional = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*)(?:\(([^()\r\n]*)\))?(!)?:\s*(\S.*)$`)
	// The footer token must be upper case per the spec; anywhere at the
	// start of a line, since PR descriptions rarely keep footers last.
	breakingFooter = regexp.MustCompile(`(?m)^[ \t]*BREAKING[ -]CHANGE:`)
	// PR templates often explain BREAKING CHANGE inside HTML comments, which
	// GitHub does not render and the author did not write.
	htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)
)

// ChooseBump decides the bump for a merge.
//
// A semver:major, semver:minor, semver:patch or semver:none label wins over
// everything (labels compare case-insensitively). Two different semver
// labels, or an unknown one such as semver:majro, are an error: guessing
// would risk the wrong version, and an error stops the release where a
// person sees it.
//
// Without a label, mode "conventional" (also the default, "") reads the PR
// title as a Conventional Commit, type(scope)!: subject:
// feat → minor; fix and perf → patch; "!" after the type or scope, or a
// "BREAKING CHANGE:" / "BREAKING-CHANGE:" footer line in the body → major;
// any other type, or a title that is not conventional → patch, so that every
// merge releases. Mode "patch" always bumps the patch version.
func ChooseBump(labels []string, title, body, mode string) (Choice, error) {
	if c, ok, err := fromLabels(labels); err != nil || ok {
		return c, err
	}
	switch mode {
	case ModePatch:
		return Choice{Bump: Patch, Reason: `bump mode "patch": patch`}, nil
	case ModeConventional, "":
		return fromTitle(title, body), nil
	}
	return Choice{}, fmt.Errorf("unknown bump mode %q (want %q or %q)", mode, ModeConventional, ModePatch)
}

func fromLabels(labels []string) (Choice, bool, error) {
	found := map[string]bool{} // normalised label -> seen
	for _, l := range labels {
		l = strings.ToLower(strings.TrimSpace(l))
		name, ok := strings.CutPrefix(l, labelPrefix)
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if _, known := labelBumps[name]; !known {
			return Choice{}, false, fmt.Errorf("unknown label %q: use semver:major, semver:minor, semver:patch or semver:none", l)
		}
		found[labelPrefix+name] = true
	}
	names := slices.Sorted(maps.Keys(found))
	switch len(names) {
	case 0:
		return Choice{}, false, nil
	case 1:
		b := labelBumps[strings.TrimPrefix(names[0], labelPrefix)]
		reason := "label " + names[0] + ": " + b.String()
		if b == None {
			reason = "label " + names[0] + ": merged without a release"
		}
		return Choice{Bump: b, Explicit: true, Reason: reason}, true, nil
	}
	return Choice{}, false, fmt.Errorf("conflicting labels %s: keep exactly one", strings.Join(names, ", "))
}

func fromTitle(title, body string) Choice {
	title = strings.TrimSpace(title)
	breakingBody := breakingFooter.MatchString(htmlComment.ReplaceAllString(body, ""))
	const pre1 = "major (minor while the version is below 1.0.0)"

	m := conventional.FindStringSubmatch(title)
	if m == nil {
		if breakingBody {
			return Choice{Bump: Major, Reason: "the description has a BREAKING CHANGE footer: " + pre1}
		}
		return Choice{Bump: Patch, Reason: "title " + quote(title) + " is not a Conventional Commit: patch (every merge releases)"}
	}
	typ, bang := strings.ToLower(m[1]), m[3] == "!"
	switch {
	case bang:
		return Choice{Bump: Major, Reason: "title " + quote(title) + ` marks a breaking change ("!"): ` + pre1}
	case breakingBody:
		return Choice{Bump: Major, Reason: "the description has a BREAKING CHANGE footer: " + pre1}
	case typ == "feat":
		return Choice{Bump: Minor, Reason: "title " + quote(title) + " is a feature: minor"}
	case typ == "fix":
		return Choice{Bump: Patch, Reason: "title " + quote(title) + " is a fix: patch"}
	case typ == "perf":
		return Choice{Bump: Patch, Reason: "title " + quote(title) + " is a performance fix: patch"}
	}
	return Choice{Bump: Patch, Reason: "title " + quote(title) + " is of type " + quote(typ) + ": patch (every merge releases)"}
}

// quote wraps user text in plain double quotes; unlike %q it leaves quotes
// inside the title alone, since the reason is read by people, not parsed.
func quote(s string) string { return `"` + s + `"` }
