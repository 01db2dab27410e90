package githubtest

import (
	"fmt"
	"net/http"
	"strings"
)

// team is an organization's team, as far as its memberships go.
type team struct {
	id      int64
	members map[string]*teamMember // by lower-case login
}

type teamMember struct {
	login string
	role  string // member or maintainer
	state string // active or pending
}

func teamKey(org, slug string) string { return strings.ToLower(org + "/" + slug) }

// SetTeamMembers makes logins the members of team teamSlug of org,
// replacing whoever was in it, each an active member with role "member";
// the team is created if it does not exist. With no logins the team exists
// and has no members.
func (s *Server) SetTeamMembers(org, teamSlug string, logins ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ensureTeamLocked(org, teamSlug)
	t.members = map[string]*teamMember{}
	for _, l := range logins {
		t.members[strings.ToLower(l)] = &teamMember{login: l, role: "member", state: "active"}
	}
}

// SetTeamMembership adds login to team teamSlug of org, or changes its
// membership, with role "member" or "maintainer" and state "active" or
// "pending" (an invitation not yet accepted, which GitHub still answers
// 200 for).
func (s *Server) SetTeamMembership(org, teamSlug, login, role, state string) {
	if role != "member" && role != "maintainer" {
		panic(fmt.Sprintf("githubtest: SetTeamMembership: role %q is not member or maintainer", role))
	}
	if state != "active" && state != "pending" {
		panic(fmt.Sprintf("githubtest: SetTeamMembership: state %q is not active or pending", state))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ensureTeamLocked(org, teamSlug)
	t.members[strings.ToLower(login)] = &teamMember{login: login, role: role, state: state}
}

func (s *Server) ensureTeamLocked(org, slug string) *team {
	if org == "" || slug == "" || strings.Contains(org, "/") || strings.Contains(slug, "/") {
		panic(fmt.Sprintf("githubtest: team %q of organization %q: want a plain org and slug", slug, org))
	}
	key := teamKey(org, slug)
	t := s.teams[key]
	if t == nil {
		t = &team{id: s.newID(), members: map[string]*teamMember{}}
		s.teams[key] = t
	}
	return t
}

// getTeamMembership answers 404 for an unknown team and for a user not in
// it, as GitHub does, and for an organization the installation is not on.
// It needs the organization permission Members: read, which a workflow's
// GITHUB_TOKEN never has (its permissions are the repository's) and an
// installation may not have granted: both get GitHub's 403.
func getTeamMembership(c *call) (int, any) {
	inst := c.s.installations[c.installation]
	if inst == nil || inst.noMembersRead {
		return fail(http.StatusForbidden, "Resource not accessible by integration")
	}
	org := c.param("org")
	if inst.account != "" && !strings.EqualFold(inst.account, org) {
		return notFound()
	}
	t := c.s.teams[teamKey(org, c.param("team_slug"))]
	if t == nil {
		return notFound()
	}
	m := t.members[strings.ToLower(c.param("username"))]
	if m == nil {
		return notFound()
	}
	return http.StatusOK, map[string]any{
		"url":   c.apiURL("/organizations/%d/team/%d/memberships/%s", c.s.userID(org), t.id, m.login),
		"role":  m.role,
		"state": m.state,
	}
}
