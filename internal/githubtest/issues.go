package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

type comment struct {
	id        int64
	issue     int
	user      string
	app       string
	body      string
	created   time.Time
	updated   time.Time
	edits     int
	reactions []reaction
}

type reaction struct {
	id      int64
	user    string
	content string
	created time.Time
}

// Comment is an issue (pull request conversation) comment, for assertions.
type Comment struct {
	ID        int64
	Issue     int
	User      string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Edits counts PATCHes, so a test can tell an edited sticky comment
	// from a duplicated one.
	Edits     int
	Reactions []string
}

var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

// AddComment posts a comment on pull request number as user, as a person
// would (say, a slash command), and returns its id.
func (s *Server) AddComment(repo string, number int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _ := s.mustPull(repo, number)
	now := s.now()
	cm := &comment{id: s.newID(), issue: number, user: user, body: body, created: now, updated: now}
	r.comments = append(r.comments, cm)
	return cm.id
}

// Comments lists the comments on pull request number, oldest first.
func (s *Server) Comments(repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, cm := range s.mustRepo(repo).comments {
		if cm.issue != number {
			continue
		}
		pc := Comment{
			ID: cm.id, Issue: cm.issue, User: cm.user, Body: cm.body,
			CreatedAt: cm.created, UpdatedAt: cm.updated, Edits: cm.edits,
		}
		for _, rc := range cm.reactions {
			pc.Reactions = append(pc.Reactions, rc.content)
		}
		out = append(out, pc)
	}
	return out
}

func (s *Server) commentJSON(c *call, r *repository, cm *comment) map[string]any {
	rollup := map[string]any{
		"url":         c.apiURL("/repos/%s/issues/comments/%d/reactions", r.fullName(), cm.id),
		"total_count": len(cm.reactions),
	}
	for _, rc := range reactionContents {
		n := 0
		for _, have := range cm.reactions {
			if have.content == rc {
				n++
			}
		}
		rollup[rc] = n
	}
	var app any
	if cm.app != "" {
		app = s.integrationJSON(cm.app)
	}
	return map[string]any{
		"id":                       cm.id,
		"node_id":                  nodeID("IC", cm.id),
		"url":                      c.apiURL("/repos/%s/issues/comments/%d", r.fullName(), cm.id),
		"html_url":                 fmt.Sprintf("%s%s/pull/%d#issuecomment-%d", s.WebURL(), r.fullName(), cm.issue, cm.id),
		"body":                     cm.body,
		"user":                     s.userJSON(cm.user),
		"created_at":               timestamp(cm.created),
		"updated_at":               timestamp(cm.updated),
		"issue_url":                c.apiURL("/repos/%s/issues/%d", r.fullName(), cm.issue),
		"author_association":       r.association(cm.user),
		"performed_via_github_app": app,
		"reactions":                rollup,
	}
}

func listComments(c *call) (int, any) {
	p := pullParam(c, "issue_number")
	if p == nil {
		return notFound()
	}
	var list []*comment
	for _, cm := range c.repo.comments {
		if cm.issue == p.number {
			list = append(list, cm)
		}
	}
	out := []map[string]any{}
	for _, cm := range paginate(c, list) {
		out = append(out, c.s.commentJSON(c, c.repo, cm))
	}
	return http.StatusOK, out
}

func createComment(c *call) (int, any) {
	p := pullParam(c, "issue_number")
	if p == nil {
		return notFound()
	}
	var req struct {
		Body *string `json:"body"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Body == nil || *req.Body == "" {
		return invalid("IssueComment", "body", "missing_field", "")
	}
	if len(*req.Body) > 65536 {
		return invalid("IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)")
	}
	now := c.s.now()
	cm := &comment{id: c.s.newID(), issue: p.number, user: c.actor, app: c.app, body: *req.Body, created: now, updated: now}
	c.repo.comments = append(c.repo.comments, cm)
	return http.StatusCreated, c.s.commentJSON(c, c.repo, cm)
}

func findComment(c *call) *comment {
	id, ok := c.intParam("comment_id")
	if !ok {
		return nil
	}
	for _, cm := range c.repo.comments {
		if cm.id == id {
			return cm
		}
	}
	return nil
}

func updateComment(c *call) (int, any) {
	cm := findComment(c)
	if cm == nil {
		return notFound()
	}
	var req struct {
		Body *string `json:"body"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Body == nil || *req.Body == "" {
		return invalid("IssueComment", "body", "missing_field", "")
	}
	if len(*req.Body) > 65536 {
		return invalid("IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)")
	}
	cm.body = *req.Body
	cm.updated = c.s.now()
	cm.edits++
	return http.StatusOK, c.s.commentJSON(c, c.repo, cm)
}

func createReaction(c *call) (int, any) {
	cm := findComment(c)
	if cm == nil {
		return notFound()
	}
	var req struct {
		Content string `json:"content"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if !slices.Contains(reactionContents, req.Content) {
		return invalid("Reaction", "content", "invalid", "")
	}
	reactionJSON := func(rc reaction) map[string]any {
		return map[string]any{
			"id": rc.id, "node_id": nodeID("REA", rc.id), "user": c.s.userJSON(rc.user),
			"content": rc.content, "created_at": timestamp(rc.created),
		}
	}
	// The same reaction by the same user is not added twice: GitHub
	// answers 200 with the existing one.
	for _, rc := range cm.reactions {
		if rc.user == c.actor && rc.content == req.Content {
			return http.StatusOK, reactionJSON(rc)
		}
	}
	rc := reaction{id: c.s.newID(), user: c.actor, content: req.Content, created: c.s.now()}
	cm.reactions = append(cm.reactions, rc)
	return http.StatusCreated, reactionJSON(rc)
}
