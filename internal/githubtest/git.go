package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

type tagObject struct {
	sha         string
	tag         string
	message     string
	object      string
	objectType  string
	taggerName  string
	taggerEmail string
	date        time.Time
}

// Tag is a tag ref, for assertions.
type Tag struct {
	Name string
	// SHA is the commit the tag points at (annotated tags peeled).
	SHA string
	// ObjectSHA is what the ref names: the commit, or the tag object.
	ObjectSHA string
	Annotated bool
	Message   string
}

// AddTag creates the lightweight tag name at commit sha, as if pushed.
func (s *Server) AddTag(repo, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if r.commits[sha] == nil {
		panic(fmt.Sprintf("githubtest: AddTag(%q, %q): no commit %s", repo, name, sha))
	}
	r.refs["refs/tags/"+name] = sha
}

// Tags lists the repository's tags sorted by name.
func (s *Server) Tags(repo string) []Tag {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	var out []Tag
	for _, ref := range r.sortedRefs("refs/tags/") {
		obj := r.refs[ref]
		t := Tag{Name: strings.TrimPrefix(ref, "refs/tags/"), ObjectSHA: obj}
		t.SHA, _ = r.peel(obj)
		if to := r.tagObjects[obj]; to != nil {
			t.Annotated, t.Message = true, to.message
		}
		out = append(out, t)
	}
	return out
}

// Ref returns the object SHA a full ref ("refs/tags/v1.0.0") names.
func (s *Server) Ref(repo, ref string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.mustRepo(repo).refs[ref]
	return sha, ok
}

func (s *Server) refJSON(c *call, r *repository, ref string) map[string]any {
	sha := r.refs[ref]
	typ, objURL := "commit", c.apiURL("/repos/%s/git/commits/%s", r.fullName(), sha)
	if r.tagObjects[sha] != nil {
		typ, objURL = "tag", c.apiURL("/repos/%s/git/tags/%s", r.fullName(), sha)
	}
	return map[string]any{
		"ref":     ref,
		"node_id": "REF_" + hex.EncodeToString([]byte(ref)),
		"url":     c.apiURL("/repos/%s/git/%s", r.fullName(), ref),
		"object":  map[string]any{"type": typ, "sha": sha, "url": objURL},
	}
}

func listTags(c *call) (int, any) {
	r := c.repo
	refs := r.sortedRefs("refs/tags/")
	slices.Reverse(refs)
	out := []map[string]any{}
	for _, ref := range paginate(c, refs) {
		name := strings.TrimPrefix(ref, "refs/tags/")
		sha, _ := r.peel(r.refs[ref])
		out = append(out, map[string]any{
			"name":        name,
			"commit":      map[string]any{"sha": sha, "url": c.apiURL("/repos/%s/commits/%s", r.fullName(), sha)},
			"zipball_url": c.apiURL("/repos/%s/zipball/refs/tags/%s", r.fullName(), name),
			"tarball_url": c.apiURL("/repos/%s/tarball/refs/tags/%s", r.fullName(), name),
			"node_id":     "REF_" + hex.EncodeToString([]byte(ref)),
		})
	}
	return http.StatusOK, out
}

func getRef(c *call) (int, any) {
	ref := "refs/" + strings.TrimPrefix(c.param("ref"), "refs/")
	if _, ok := c.repo.refs[ref]; !ok {
		return notFound()
	}
	return http.StatusOK, c.s.refJSON(c, c.repo, ref)
}

func listMatchingRefs(c *call) (int, any) {
	prefix := "refs/" + strings.TrimPrefix(c.param("ref"), "refs/")
	out := []map[string]any{}
	for _, ref := range c.repo.sortedRefs(prefix) {
		out = append(out, c.s.refJSON(c, c.repo, ref))
	}
	return http.StatusOK, out
}

func createRef(c *call) (int, any) {
	r := c.repo
	var req struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if !strings.HasPrefix(req.Ref, "refs/") || strings.Count(req.Ref, "/") < 2 || strings.HasSuffix(req.Ref, "/") {
		return fail(http.StatusUnprocessableEntity, "Reference name is invalid")
	}
	if r.commits[req.SHA] == nil && r.tagObjects[req.SHA] == nil {
		return fail(http.StatusUnprocessableEntity, "Object does not exist")
	}
	if _, exists := r.refs[req.Ref]; exists {
		return fail(http.StatusUnprocessableEntity, "Reference already exists")
	}
	r.refs[req.Ref] = req.SHA
	return http.StatusCreated, c.s.refJSON(c, r, req.Ref)
}

func (s *Server) tagObjectJSON(c *call, r *repository, t *tagObject) map[string]any {
	objURL := c.apiURL("/repos/%s/git/commits/%s", r.fullName(), t.object)
	if t.objectType == "tag" {
		objURL = c.apiURL("/repos/%s/git/tags/%s", r.fullName(), t.object)
	}
	return map[string]any{
		"node_id": "TAG_" + t.sha[:24],
		"tag":     t.tag,
		"sha":     t.sha,
		"url":     c.apiURL("/repos/%s/git/tags/%s", r.fullName(), t.sha),
		"message": t.message,
		"tagger":  map[string]any{"name": t.taggerName, "email": t.taggerEmail, "date": timestamp(t.date)},
		"object":  map[string]any{"sha": t.object, "type": t.objectType, "url": objURL},
		"verification": map[string]any{
			"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil,
		},
	}
}

func createTagObject(c *call) (int, any) {
	r := c.repo
	var req struct {
		Tag     string `json:"tag"`
		Message string `json:"message"`
		Object  string `json:"object"`
		Type    string `json:"type"`
		Tagger  *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
			Date  string `json:"date"`
		} `json:"tagger"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Tag == "" {
		return invalid("Tag", "tag", "missing_field", "")
	}
	switch {
	case req.Type == "commit" && r.commits[req.Object] != nil:
	case req.Type == "tag" && r.tagObjects[req.Object] != nil:
	default:
		return fail(http.StatusUnprocessableEntity, "Object does not exist")
	}
	now := c.s.now()
	name, email := gitUser(c.actor)
	if req.Tagger != nil {
		name, email = req.Tagger.Name, req.Tagger.Email
		if t, err := time.Parse(time.RFC3339, req.Tagger.Date); err == nil {
			now = t
		}
	}
	h := sha1.New()
	fmt.Fprintf(h, "tag\x00%s\x00%s\x00%s\x00%d", req.Object, req.Tag, req.Message, c.s.newID())
	t := &tagObject{
		sha: hex.EncodeToString(h.Sum(nil)), tag: req.Tag, message: req.Message, object: req.Object,
		objectType: req.Type, taggerName: name, taggerEmail: email, date: now,
	}
	r.tagObjects[t.sha] = t
	return http.StatusCreated, c.s.tagObjectJSON(c, r, t)
}

func getTagObject(c *call) (int, any) {
	t := c.repo.tagObjects[c.param("tag_sha")]
	if t == nil {
		return notFound()
	}
	return http.StatusOK, c.s.tagObjectJSON(c, c.repo, t)
}
