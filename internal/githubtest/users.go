package githubtest

import (
	"fmt"
	"strings"
)

// userID gives every login a stable id, so the same person is the same
// user across payloads.
func (s *Server) userID(login string) int64 {
	key := strings.ToLower(login)
	if id, ok := s.users[key]; ok {
		return id
	}
	id := s.newID()
	s.users[key] = id
	return id
}

// userJSON is GitHub's simple-user object for login; logins ending in
// "[bot]" are Bots, as GitHub Apps' users are.
func (s *Server) userJSON(login string) map[string]any {
	id := s.userID(login)
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	api := s.ts.URL + "/users/" + login
	return map[string]any{
		"login":               login,
		"id":                  id,
		"node_id":             nodeID("U", id),
		"avatar_url":          fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            s.WebURL() + login,
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                typ,
		"user_view_type":      "public",
		"site_admin":          false,
	}
}

// nullUser is userJSON, or JSON null for no user.
func (s *Server) nullUser(login string) any {
	if login == "" {
		return nil
	}
	return s.userJSON(login)
}

// gitUser is the author/committer identity inside a git commit object.
func gitUser(login string) (name, email string) {
	name = strings.TrimSuffix(login, "[bot]")
	return name, login + "@users.noreply.github.com"
}
