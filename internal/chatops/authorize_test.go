package chatops_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/chatops"
	"github.com/shipbot/shipbot/internal/pipeline"
)

func TestPermissionLevel(t *testing.T) {
	for _, tc := range []struct {
		perm chatops.Permission
		want chatops.Level
	}{
		{chatops.Permission{Permission: "admin", RoleName: "admin"}, chatops.LevelAdmin},
		// The legacy field folds maintain into write: role_name tells.
		{chatops.Permission{Permission: "write", RoleName: "maintain"}, chatops.LevelMaintain},
		{chatops.Permission{Permission: "write", RoleName: "write"}, chatops.LevelWrite},
		{chatops.Permission{Permission: "read", RoleName: "triage"}, chatops.LevelTriage},
		{chatops.Permission{Permission: "read", RoleName: "read"}, chatops.LevelRead},
		{chatops.Permission{Permission: "none", RoleName: "none"}, chatops.LevelNone},
		{chatops.Permission{}, chatops.LevelNone},
		// A custom role counts for its base permission, never more.
		{chatops.Permission{Permission: "write", RoleName: "deployer"}, chatops.LevelWrite},
		{chatops.Permission{Permission: "read", RoleName: "security-manager"}, chatops.LevelRead},
		// Either field alone is enough.
		{chatops.Permission{Permission: "admin"}, chatops.LevelAdmin},
		{chatops.Permission{RoleName: "Maintain"}, chatops.LevelMaintain},
	} {
		if got := tc.perm.Level(); got != tc.want {
			t.Errorf("%+v.Level() = %v; want %v", tc.perm, got, tc.want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	var (
		admin    = chatops.Permission{Permission: "admin", RoleName: "admin"}
		maintain = chatops.Permission{Permission: "write", RoleName: "maintain"}
		write    = chatops.Permission{Permission: "write", RoleName: "write"}
		custom   = chatops.Permission{Permission: "write", RoleName: "deployer"}
		triage   = chatops.Permission{Permission: "read", RoleName: "triage"}
		read     = chatops.Permission{Permission: "read", RoleName: "read"}
		none     = chatops.Permission{Permission: "none"}
	)
	deploy := chatops.Command{Verb: "deploy", Stage: "prod"}
	force := chatops.Command{Verb: "deploy", Stage: "prod", Force: true}
	retry := chatops.Command{Verb: "retry", Stage: "prod"}
	rollback := chatops.Command{Verb: "rollback", Stage: "prod"}
	freeze := chatops.Command{Verb: "freeze", Reason: "incident"}
	unfreeze := chatops.Command{Verb: "unfreeze"}
	status := chatops.Command{Verb: "status"}
	help := chatops.Command{Verb: "help"}

	for _, tc := range []struct {
		cmd  chatops.Command
		perm chatops.Permission
		// need is "" when allowed, else words the refusal must contain.
		need string
	}{
		{deploy, admin, ""}, {deploy, maintain, ""}, {deploy, write, ""}, {deploy, custom, ""},
		{deploy, triage, "needs write permission"}, {deploy, read, "needs write permission"}, {deploy, none, "needs write permission"},
		{retry, write, ""}, {retry, read, "needs write permission"},
		{rollback, maintain, ""}, {rollback, triage, "needs write permission"},
		{force, admin, ""},
		{force, maintain, "admins only"}, {force, write, "admins only"}, {force, read, "admins only"},
		{freeze, admin, ""}, {freeze, maintain, ""},
		{freeze, write, "needs maintain permission"}, {freeze, custom, "needs maintain permission"}, {freeze, read, "needs maintain permission"},
		{unfreeze, maintain, ""}, {unfreeze, write, "needs maintain permission"},
		{status, read, ""}, {status, triage, ""}, {help, read, ""},
	} {
		r := chatops.Authorize(tc.cmd, tc.perm)
		switch {
		case tc.need == "" && r != nil:
			t.Errorf("%s as %s: refused (%s); want allowed", tc.cmd, tc.perm.RoleName, r.Reason)
		case tc.need != "" && r == nil:
			t.Errorf("%s as %s: allowed; want refused", tc.cmd, tc.perm.RoleName)
		case tc.need != "":
			if !strings.Contains(r.Reason, tc.need) || !strings.HasPrefix(r.Reason, "Sorry") {
				t.Errorf("%s as %s: refusal %q; want a polite one containing %q", tc.cmd, tc.perm.RoleName, r.Reason, tc.need)
			}
			if have := tc.perm.RoleName; have != "" && !strings.Contains(r.Reason, "your role here is "+have) {
				t.Errorf("refusal %q does not say the role %s", r.Reason, have)
			}
		}
	}
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		cmd   chatops.Command
		want  chatops.Level
		check bool
	}{
		{chatops.Command{Verb: "deploy", Stage: "qa"}, chatops.LevelWrite, true},
		{chatops.Command{Verb: "deploy", Stage: "qa", Force: true}, chatops.LevelAdmin, true},
		{chatops.Command{Verb: "retry", Stage: "qa"}, chatops.LevelWrite, true},
		{chatops.Command{Verb: "rollback", Stage: "qa"}, chatops.LevelWrite, true},
		{chatops.Command{Verb: "freeze"}, chatops.LevelMaintain, true},
		{chatops.Command{Verb: "unfreeze"}, chatops.LevelMaintain, true},
		{chatops.Command{Verb: "approve", Stage: "prod"}, chatops.LevelMaintain, true},
		{chatops.Command{Verb: "reject", Stage: "prod"}, chatops.LevelMaintain, true},
		{chatops.Command{Verb: "status"}, chatops.LevelRead, false},
		{chatops.Command{Verb: "help"}, chatops.LevelRead, false},
	} {
		if got := chatops.Required(tc.cmd); got != tc.want || chatops.NeedsPermission(tc.cmd) != tc.check {
			t.Errorf("Required(%s) = %v, check %v; want %v, %v", tc.cmd, got, chatops.NeedsPermission(tc.cmd), tc.want, tc.check)
		}
	}
}

// asker is a fake chatops.Asker that counts its reads.
type asker struct {
	login string
	perm  chatops.Permission
	// permErr fails the permission read.
	permErr error
	// teams answers "org/slug": true (active member), false (not), or an
	// error; a team missing is not a member.
	teams map[string]any
	// permReads and teamReads are the reads made, teams as "org/slug".
	permReads int
	teamReads []string
}

func (a *asker) Asker() chatops.Asker {
	return chatops.Asker{
		Login: a.login,
		Permission: func(context.Context) (chatops.Permission, error) {
			a.permReads++
			return a.perm, a.permErr
		},
		TeamMember: func(_ context.Context, org, slug string) (bool, error) {
			a.teamReads = append(a.teamReads, org+"/"+slug)
			switch v := a.teams[org+"/"+slug].(type) {
			case bool:
				return v, nil
			case error:
				return false, v
			}
			return false, nil
		},
	}
}

func TestAuthorizeApproval(t *testing.T) {
	var (
		admin    = chatops.Permission{Permission: "admin", RoleName: "admin"}
		maintain = chatops.Permission{Permission: "write", RoleName: "maintain"}
		write    = chatops.Permission{Permission: "write", RoleName: "write"}
		custom   = chatops.Permission{Permission: "write", RoleName: "deployer"}
		read     = chatops.Permission{Permission: "read", RoleName: "read"}
	)
	approve := chatops.Command{Verb: "approve", Stage: "prod"}
	reject := chatops.Command{Verb: "reject", Stage: "prod", Reason: "error rate doubled"}
	// open: maintain or admin may; listed: these and only these.
	open := pipeline.Approval{Stage: "prod", Required: true}
	listed := pipeline.Approval{Stage: "prod", Required: true, Approvers: []string{"alice", "@acme/release-managers", "@acme/sre"}}
	none := pipeline.Approval{Stage: "prod", Required: false}
	forbidden := &chatops.TeamUnreadable{Team: "@acme/release-managers", Status: 403, Err: errors.New("403 Resource not accessible by integration")}
	down := errors.New("502 Bad Gateway")

	for _, tc := range []struct {
		name     string
		cmd      chatops.Command
		approval pipeline.Approval
		author   string
		asker    asker
		// need is "" when allowed, else words the refusal must contain.
		need []string
		// err: an error is returned (the delivery is retried).
		err error
		// The reads AuthorizeApproval may make, exactly.
		permReads int
		teamReads []string
	}{
		{name: "no approval needed", cmd: approve, approval: none, author: "bob", asker: asker{login: "ada", perm: admin},
			need: []string{"prod needs no approval"}},
		{name: "no rejection either", cmd: reject, approval: none, author: "bob", asker: asker{login: "ada", perm: admin},
			need: []string{"prod needs no approval", "nothing to reject"}},
		{name: "author, even an admin", cmd: approve, approval: open, author: "bob", asker: asker{login: "bob", perm: admin},
			need: []string{"author cannot approve", "someone else with maintain"}},
		{name: "author, other case", cmd: approve, approval: open, author: "Bob", asker: asker{login: "bOB", perm: admin},
			need: []string{"author cannot approve"}},
		{name: "author, even listed", cmd: approve, approval: pipeline.Approval{Stage: "prod", Required: true, Approvers: []string{"bob"}}, author: "bob",
			asker: asker{login: "bob"}, need: []string{"author cannot approve", "needs one of: @\u200bbob"}},
		{name: "author, even a team member", cmd: reject, approval: listed, author: "bob",
			asker: asker{login: "bob", teams: map[string]any{"acme/sre": true}}, need: []string{"author cannot reject"}},
		{name: "author unknown", cmd: approve, approval: open, author: "", asker: asker{login: "ada", perm: admin},
			need: []string{"cannot tell who opened"}},

		{name: "maintainer", cmd: approve, approval: open, author: "bob", asker: asker{login: "mia", perm: maintain}, permReads: 1},
		{name: "admin rejects", cmd: reject, approval: open, author: "bob", asker: asker{login: "ada", perm: admin}, permReads: 1},
		{name: "writer", cmd: approve, approval: open, author: "bob", asker: asker{login: "wendy", perm: write}, permReads: 1,
			need: []string{"approving prod needs maintain permission", "maintain or admin", "your role here is write", "author cannot approve"}},
		{name: "custom role on write", cmd: reject, approval: open, author: "bob", asker: asker{login: "dee", perm: custom}, permReads: 1,
			need: []string{"rejecting prod needs maintain permission", "your role here is deployer"}},
		{name: "permission unreadable", cmd: approve, approval: open, author: "bob", asker: asker{login: "mia", permErr: down}, permReads: 1, err: down},

		{name: "listed by login", cmd: approve, approval: listed, author: "bob", asker: asker{login: "alice", perm: read}},
		{name: "listed by login, other case", cmd: reject, approval: listed, author: "bob", asker: asker{login: "ALICE"}},
		{name: "listed with @", cmd: approve, approval: pipeline.Approval{Stage: "prod", Required: true, Approvers: []string{"@alice"}}, author: "bob", asker: asker{login: "alice"}},
		{name: "first team says yes", cmd: approve, approval: listed, author: "bob",
			asker:     asker{login: "dan", perm: read, teams: map[string]any{"acme/release-managers": true, "acme/sre": true}},
			teamReads: []string{"acme/release-managers"}},
		{name: "second team says yes", cmd: approve, approval: listed, author: "bob",
			asker:     asker{login: "sam", teams: map[string]any{"acme/sre": true}},
			teamReads: []string{"acme/release-managers", "acme/sre"}},
		{name: "in no team, an admin", cmd: approve, approval: listed, author: "bob", asker: asker{login: "ada", perm: admin},
			teamReads: []string{"acme/release-managers", "acme/sre"},
			need:      []string{"approving prod needs one of: @\u200balice, @\u200bacme/release-managers (team), @\u200bacme/sre (team); the pull request's author cannot approve."}},
		{name: "team read fails", cmd: approve, approval: listed, author: "bob", asker: asker{login: "dan", teams: map[string]any{"acme/release-managers": down, "acme/sre": true}},
			teamReads: []string{"acme/release-managers"}, err: down},
		{name: "App may not read teams", cmd: approve, approval: listed, author: "bob",
			asker:     asker{login: "dan", teams: map[string]any{"acme/release-managers": forbidden, "acme/sre": forbidden}},
			teamReads: []string{"acme/release-managers", "acme/sre"},
			need:      []string{"needs one of", `needs the organization permission "Members: read"`, "to check team approvers"}},
		{name: "one team unreadable, the next says yes", cmd: approve, approval: listed, author: "bob",
			asker:     asker{login: "dan", teams: map[string]any{"acme/release-managers": forbidden, "acme/sre": true}},
			teamReads: []string{"acme/release-managers", "acme/sre"}},
		{name: "team refused otherwise", cmd: reject, approval: listed, author: "bob",
			asker:     asker{login: "dan", teams: map[string]any{"acme/release-managers": &chatops.TeamUnreadable{Team: "@acme/release-managers", Status: 422, Err: errors.New("422")}}},
			teamReads: []string{"acme/release-managers", "acme/sre"},
			need:      []string{"rejecting prod needs one of", "would not show shipbot your membership of @\u200bacme/release-managers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.asker
			r, err := chatops.AuthorizeApproval(context.Background(), tc.cmd, tc.approval, tc.author, a.Asker())
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) || r != nil {
					t.Errorf("got %v, %v; want error %v", r, err, tc.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case tc.need == nil && r != nil:
				t.Errorf("refused (%s); want allowed", r.Reason)
			case tc.need != nil && r == nil:
				t.Errorf("allowed; want refused")
			case tc.need != nil:
				for _, n := range tc.need {
					if !strings.Contains(r.Reason, n) {
						t.Errorf("refusal %q; want it to contain %q", r.Reason, n)
					}
				}
				if !strings.HasPrefix(r.Reason, "Sorry") {
					t.Errorf("refusal %q is not polite", r.Reason)
				}
			}
			if a.permReads != tc.permReads || !slices.Equal(a.teamReads, tc.teamReads) {
				t.Errorf("read the permission %d times and teams %v; want %d and %v", a.permReads, a.teamReads, tc.permReads, tc.teamReads)
			}
		})
	}
}

func TestApprovalRefusalsEscapeOutsideText(t *testing.T) {
	// Logins, teams and the stage's name come from the configuration: a
	// refusal must neither notify them nor let them hide or format text.
	a := pipeline.Approval{Stage: "prod<!--", Required: true, Approvers: []string{"ev*il*", "@acme/release_managers_", "@acme/<img src=x>"}}
	for _, ask := range []asker{{login: "bob"}, {login: "dan"}} {
		r, err := chatops.AuthorizeApproval(context.Background(), chatops.Command{Verb: "approve", Stage: "prod"}, a, "bob", ask.Asker())
		if err != nil || r == nil {
			t.Fatalf("got %v, %v; want a refusal", r, err)
		}
		for _, bad := range []string{"<!--", "<img", "@acme", "@ev", "*il*", "_managers_"} {
			if strings.Contains(r.Reason, bad) {
				t.Errorf("refusal %q holds %q unescaped", r.Reason, bad)
			}
		}
	}
	open := pipeline.Approval{Stage: "prod", Required: true}
	ask := asker{login: "dan", perm: chatops.Permission{Permission: "write", RoleName: "<!-- role"}}
	r, err := chatops.AuthorizeApproval(context.Background(), chatops.Command{Verb: "approve", Stage: "prod"}, open, "bob", ask.Asker())
	if err != nil || r == nil || strings.Contains(r.Reason, "<!--") {
		t.Errorf("got %v, %v; want a refusal with the role escaped", r, err)
	}
}
