package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

type release struct {
	id              int64
	tag             string
	targetCommitish string
	name            string
	body            string
	draft           bool
	prerelease      bool
	author          string
	created         time.Time
	published       time.Time
}

// Release is a GitHub release, for assertions.
type Release struct {
	ID              int64
	TagName         string
	TargetCommitish string
	Name            string
	Body            string
	Draft           bool
	Prerelease      bool
	Author          string
	CreatedAt       time.Time
}

// Releases lists the repository's releases, oldest first.
func (s *Server) Releases(repo string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Release
	for _, rl := range s.mustRepo(repo).releases {
		out = append(out, Release{
			ID: rl.id, TagName: rl.tag, TargetCommitish: rl.targetCommitish, Name: rl.name, Body: rl.body,
			Draft: rl.draft, Prerelease: rl.prerelease, Author: rl.author, CreatedAt: rl.created,
		})
	}
	return out
}

func (s *Server) releaseJSON(c *call, r *repository, rl *release) map[string]any {
	api := c.apiURL("/repos/%s/releases/%d", r.fullName(), rl.id)
	html := fmt.Sprintf("%s%s/releases/tag/%s", s.WebURL(), r.fullName(), rl.tag)
	if rl.draft {
		html = fmt.Sprintf("%s%s/releases/tag/untagged-%d", s.WebURL(), r.fullName(), rl.id)
	}
	return map[string]any{
		"url":              api,
		"html_url":         html,
		"assets_url":       api + "/assets",
		"upload_url":       c.apiURL("/repos/%s/releases/%d/assets{?name,label}", r.fullName(), rl.id),
		"tarball_url":      c.apiURL("/repos/%s/tarball/%s", r.fullName(), rl.tag),
		"zipball_url":      c.apiURL("/repos/%s/zipball/%s", r.fullName(), rl.tag),
		"id":               rl.id,
		"node_id":          nodeID("RE", rl.id),
		"tag_name":         rl.tag,
		"target_commitish": rl.targetCommitish,
		"name":             nullString(rl.name),
		"body":             nullString(rl.body),
		"draft":            rl.draft,
		"prerelease":       rl.prerelease,
		"immutable":        false,
		"created_at":       timestamp(rl.created),
		"updated_at":       timestamp(rl.created),
		"published_at":     nullTime(rl.published),
		"author":           s.userJSON(rl.author),
		"assets":           []any{},
	}
}

func createRelease(c *call) (int, any) {
	r := c.repo
	var req struct {
		TagName              string `json:"tag_name"`
		TargetCommitish      string `json:"target_commitish"`
		Name                 string `json:"name"`
		Body                 string `json:"body"`
		Draft                bool   `json:"draft"`
		Prerelease           bool   `json:"prerelease"`
		GenerateReleaseNotes bool   `json:"generate_release_notes"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.TagName == "" {
		return invalid("Release", "tag_name", "missing_field", "")
	}
	for _, rl := range r.releases {
		if rl.tag == req.TagName && !rl.draft {
			return invalid("Release", "tag_name", "already_exists", "")
		}
	}
	if req.TargetCommitish == "" {
		req.TargetCommitish = r.defaultBranch
	}
	tagRef := "refs/tags/" + req.TagName
	if _, exists := r.refs[tagRef]; !exists {
		sha, ok := r.resolveRef(req.TargetCommitish)
		if !ok {
			return invalid("Release", "target_commitish", "invalid", "")
		}
		// Publishing a release for a missing tag creates the tag at
		// target_commitish, as GitHub does; drafts get their tag only
		// when published.
		if !req.Draft {
			r.refs[tagRef] = sha
		}
	}
	now := c.s.now()
	rl := &release{
		id: c.s.newID(), tag: req.TagName, targetCommitish: req.TargetCommitish, name: req.Name, body: req.Body,
		draft: req.Draft, prerelease: req.Prerelease, author: c.actor, created: now,
	}
	if !req.Draft {
		rl.published = now
	}
	if req.GenerateReleaseNotes && rl.body == "" {
		prev := ""
		for _, old := range slices.Backward(r.releases) {
			if !old.draft {
				prev = old.tag
				break
			}
		}
		if prev != "" {
			rl.body = fmt.Sprintf("**Full Changelog**: %s%s/compare/%s...%s", c.s.WebURL(), r.fullName(), prev, rl.tag)
		} else {
			rl.body = fmt.Sprintf("**Full Changelog**: %s%s/commits/%s", c.s.WebURL(), r.fullName(), rl.tag)
		}
	}
	if rl.name == "" && req.GenerateReleaseNotes {
		rl.name = rl.tag
	}
	r.releases = append(r.releases, rl)
	return http.StatusCreated, c.s.releaseJSON(c, r, rl)
}

func listReleases(c *call) (int, any) {
	list := slices.Clone(c.repo.releases)
	slices.Reverse(list) // newest first
	out := []map[string]any{}
	for _, rl := range paginate(c, list) {
		out = append(out, c.s.releaseJSON(c, c.repo, rl))
	}
	return http.StatusOK, out
}

func getReleaseByTag(c *call) (int, any) {
	for _, rl := range slices.Backward(c.repo.releases) {
		// Drafts have no tag yet, so GitHub does not find them by tag.
		if rl.tag == c.param("tag") && !rl.draft {
			return http.StatusOK, c.s.releaseJSON(c, c.repo, rl)
		}
	}
	return notFound()
}

func getLatestRelease(c *call) (int, any) {
	for _, rl := range slices.Backward(c.repo.releases) {
		if !rl.draft && !rl.prerelease {
			return http.StatusOK, c.s.releaseJSON(c, c.repo, rl)
		}
	}
	return notFound()
}

func getRelease(c *call) (int, any) {
	id, _ := c.intParam("release_id")
	for _, rl := range c.repo.releases {
		if rl.id == id {
			return http.StatusOK, c.s.releaseJSON(c, c.repo, rl)
		}
	}
	return notFound()
}
