package githubtest

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// fileDiff is one entry of a diff between two trees: GitHub's diff-entry,
// which the pull request files and commit endpoints list.
type fileDiff struct {
	path string
	// previous is the old path of a renamed file.
	previous string
	// status is added, modified, removed or renamed.
	status string
	// content is the file's content after the change; before it for a
	// removed file.
	content              string
	additions, deletions int
	// patch is the unified diff hunk GitHub sends ("" for a pure rename).
	patch string
}

// diffTrees lists what changed from tree a to tree b, sorted by path.
// A path removed and another added with the same non-empty content is a
// rename, as git's exact rename detection finds it; the fake does not look
// for renames of edited files (git's similarity index).
func diffTrees(a, b map[string]string) []fileDiff {
	var out []fileDiff
	var removed, added []string
	for _, p := range sortedKeys(b) {
		old, ok := a[p]
		switch {
		case !ok:
			added = append(added, p)
		case old != b[p]:
			d := fileDiff{path: p, status: "modified", content: b[p]}
			d.patch, d.additions, d.deletions = unifiedPatch(old, b[p])
			out = append(out, d)
		}
	}
	for _, p := range sortedKeys(a) {
		if _, ok := b[p]; !ok {
			removed = append(removed, p)
		}
	}
	// Pair renames: each added file takes the first unpaired removed file
	// with the same content, in path order.
	byContent := map[string][]string{}
	for _, p := range removed {
		if a[p] != "" {
			byContent[a[p]] = append(byContent[a[p]], p)
		}
	}
	renamedFrom := map[string]bool{}
	for _, p := range added {
		if olds := byContent[b[p]]; len(olds) > 0 {
			byContent[b[p]] = olds[1:]
			renamedFrom[olds[0]] = true
			out = append(out, fileDiff{path: p, previous: olds[0], status: "renamed", content: b[p]})
			continue
		}
		d := fileDiff{path: p, status: "added", content: b[p]}
		d.patch, d.additions, d.deletions = unifiedPatch("", b[p])
		out = append(out, d)
	}
	for _, p := range removed {
		if renamedFrom[p] {
			continue
		}
		d := fileDiff{path: p, status: "removed", content: a[p]}
		d.patch, d.additions, d.deletions = unifiedPatch(a[p], "")
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// patchContext is how many unchanged lines git shows around a change.
const patchContext = 3

// unifiedPatch is the one-hunk unified diff from old to new, without file
// headers, as GitHub's patch field holds it, and the lines it adds and
// deletes. It finds the changed block by trimming the common leading and
// trailing lines, which is a valid diff though not always git's minimal one.
func unifiedPatch(old, new string) (patch string, additions, deletions int) {
	a, b := splitLines(old), splitLines(new)
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	del, add := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(del) == 0 && len(add) == 0 {
		return "", 0, 0
	}
	start := max(pre-patchContext, 0)
	after := min(suf, patchContext)
	before := a[start:pre]
	trailing := a[len(a)-suf : len(a)-suf+after]
	oldCount := len(before) + len(del) + len(trailing)
	newCount := len(before) + len(add) + len(trailing)

	var sb strings.Builder
	fmt.Fprintf(&sb, "@@ -%s +%s @@", hunkRange(start, oldCount), hunkRange(start, newCount))
	emit := func(prefix string, lines []string) {
		for _, l := range lines {
			sb.WriteString("\n" + prefix + strings.TrimSuffix(l, "\n"))
			if !strings.HasSuffix(l, "\n") {
				sb.WriteString("\n\\ No newline at end of file")
			}
		}
	}
	emit(" ", before)
	emit("-", del)
	emit("+", add)
	emit(" ", trailing)
	return sb.String(), len(add), len(del)
}

// hunkRange is one side of a hunk header: "start,count", with git's
// shorthands (count 1 left out; an empty side starts at the line before).
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	default:
		return fmt.Sprintf("%d,%d", start+1, count)
	}
}

// splitLines cuts s into lines that keep their "\n"; a last line without
// one is kept as it is, so "no newline at end of file" is a difference.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffEntryJSON is GitHub's diff-entry for d. The links of a removed file
// point at oldSHA, where it still exists; the others at sha.
func (s *Server) diffEntryJSON(c *call, r *repository, d fileDiff, sha, oldSHA string) map[string]any {
	at := sha
	if d.status == "removed" {
		at = oldSHA
	}
	path := escapePath(d.path)
	e := map[string]any{
		"sha":          blobSHA(d.content),
		"filename":     d.path,
		"status":       d.status,
		"additions":    d.additions,
		"deletions":    d.deletions,
		"changes":      d.additions + d.deletions,
		"blob_url":     s.WebURL() + r.fullName() + "/blob/" + at + "/" + path,
		"raw_url":      s.WebURL() + r.fullName() + "/raw/" + at + "/" + path,
		"contents_url": c.apiURL("/repos/%s/contents/%s?ref=%s", r.fullName(), path, at),
	}
	if d.patch != "" {
		e["patch"] = d.patch
	}
	if d.previous != "" {
		e["previous_filename"] = d.previous
	}
	return e
}

// escapePath escapes each segment of a file path for a URL, keeping the
// slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}
