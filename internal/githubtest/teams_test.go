package githubtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

const routeTeamMembership = "GET /orgs/{org}/teams/{team_slug}/memberships/{username}"

func TestTeamMemberships(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	seed(t, s)
	s.SetTeamMembers("acme", "deployers", "bob", "Carol")
	gh := ghClient(t, s)

	m, _, err := gh.Teams.GetTeamMembershipBySlug(ctx, "acme", "deployers", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if m.GetRole() != "member" || m.GetState() != "active" ||
		!strings.HasPrefix(m.GetURL(), s.URL()+"organizations/") || !strings.HasSuffix(m.GetURL(), "/memberships/bob") {
		t.Errorf("bob's membership: role %q state %q url %q", m.GetRole(), m.GetState(), m.GetURL())
	}
	// Logins and slugs match whatever their case, as on GitHub.
	if _, _, err := gh.Teams.GetTeamMembershipBySlug(ctx, "ACME", "Deployers", "carol"); err != nil {
		t.Errorf("carol, asked in other case: %v", err)
	}

	c := tokenClient(t, s)
	for _, path := range []string{
		"orgs/acme/teams/deployers/memberships/mallory", // not a member
		"orgs/acme/teams/admins/memberships/bob",        // no such team
		"orgs/globex/teams/deployers/memberships/bob",   // no such organization
	} {
		c.call("GET", path, nil, http.StatusNotFound)
	}

	// SetTeamMembers replaces the members.
	s.SetTeamMembers("acme", "deployers", "mallory")
	c.call("GET", "orgs/acme/teams/deployers/memberships/mallory", nil, http.StatusOK)
	c.call("GET", "orgs/acme/teams/deployers/memberships/bob", nil, http.StatusNotFound)
	s.SetTeamMembers("acme", "deployers")
	c.call("GET", "orgs/acme/teams/deployers/memberships/mallory", nil, http.StatusNotFound)

	// A maintainer, and an invitation not yet accepted: both answer 200.
	s.SetTeamMembership("acme", "deployers", "dave", "maintainer", "active")
	s.SetTeamMembership("acme", "deployers", "erin", "member", "pending")
	for login, want := range map[string]string{"dave": "maintainer/active", "erin": "member/pending"} {
		got := obj(t, c.call("GET", "orgs/acme/teams/deployers/memberships/"+login, nil, http.StatusOK))
		if fmt.Sprintf("%v/%v", got["role"], got["state"]) != want {
			t.Errorf("%s: %v/%v, want %s", login, got["role"], got["state"], want)
		}
	}

	// Another installation's token does not see acme's teams; no token
	// sees nothing.
	other := s.AddInstallation("globex")
	s.SetTeamMembers("globex", "deployers", "bob")
	foreign := &rawClient{t: t, base: s.URL(), auth: "token " + s.InstallationToken(other)}
	foreign.call("GET", "orgs/acme/teams/deployers/memberships/dave", nil, http.StatusNotFound)
	foreign.call("GET", "orgs/globex/teams/deployers/memberships/bob", nil, http.StatusOK)
	anon := &rawClient{t: t, base: s.URL()}
	anon.call("GET", "orgs/acme/teams/deployers/memberships/dave", nil, http.StatusUnauthorized)

	// Team memberships need the organization permission Members: read:
	// an installation that has not granted it, and a workflow's
	// GITHUB_TOKEN (repository permissions only), get GitHub's 403.
	s.SetMembersReadDenied(s.InstallationID(), true)
	if st, _, body := c.do("GET", "orgs/acme/teams/deployers/memberships/dave", nil); st != http.StatusForbidden ||
		!strings.Contains(string(body), "Resource not accessible by integration") {
		t.Errorf("without Members: read: %d %s, want 403 Resource not accessible by integration", st, body)
	}
	app := &rawClient{t: t, base: s.URL(), auth: "Bearer " + appJWT(t, s, s.PrivateKeyPEM())}
	inst := obj(t, app.call("GET", fmt.Sprintf("app/installations/%d", s.InstallationID()), nil, http.StatusOK))
	if perms := inst["permissions"].(map[string]any); perms["members"] != nil || perms["checks"] != "write" {
		t.Errorf("installation permissions without Members: read: %v", perms)
	}
	s.SetMembersReadDenied(s.InstallationID(), false)
	c.call("GET", "orgs/acme/teams/deployers/memberships/dave", nil, http.StatusOK)
	inst = obj(t, app.call("GET", fmt.Sprintf("app/installations/%d", s.InstallationID()), nil, http.StatusOK))
	if perms := inst["permissions"].(map[string]any); perms["members"] != "read" {
		t.Errorf("installation permissions: %v, want members: read", perms)
	}
	s.AddStaticToken("ghs_workflow")
	workflow := &rawClient{t: t, base: s.URL(), auth: "token ghs_workflow"}
	workflow.call("GET", "orgs/acme/teams/deployers/memberships/dave", nil, http.StatusForbidden)

	if got := s.Count(routeTeamMembership); got != 16 {
		t.Errorf("Count(%s) = %d, want 16", routeTeamMembership, got)
	}
	for _, v := range s.SchemaViolations() {
		t.Errorf("schema: %v", v)
	}
}

func TestSetTeamMembershipRejectsUnknownRoleAndState(t *testing.T) {
	s := newServer(t)
	for _, args := range [][2]string{{"owner", "active"}, {"member", "invited"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetTeamMembership role %q state %q did not panic", args[0], args[1])
				}
			}()
			s.SetTeamMembership("acme", "deployers", "bob", args[0], args[1])
		}()
	}
}
