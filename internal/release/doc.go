// Package release computes the next version of a repository and the notes
// of its GitHub Release.
//
// This file set is the pure core: tags, labels and a PR title in; a bump, a
// version, a tag name and Markdown out. Creating the tag and the Release on
// GitHub (idempotently, keyed by the merge commit) is the shell's job on top
// of it. Keeping the arithmetic pure is what lets it promise the things a
// human release engineer gets wrong: versions come only from real
// MAJOR.MINOR.PATCH tags, always go up, and go up by exactly one step.
//
// The flow for one merge:
//
//	choice, err := release.ChooseBump(labels, title, body, cfg.Bump)
//	latest, prevTag, ok := release.Latest(tags, cfg.TagPrefix)
//	v, err := release.Next(latest, ok, initial, choice) // ErrNoRelease for semver:none
//	tag := release.Tag(cfg.TagPrefix, v)
//	body := release.Notes(release.NotesInput{Tag: tag, PrevTag: prevTag, ...})
package release
