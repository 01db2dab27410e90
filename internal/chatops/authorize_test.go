package chatops_test

import (
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/chatops"
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
		{chatops.Command{Verb: "status"}, chatops.LevelRead, false},
		{chatops.Command{Verb: "help"}, chatops.LevelRead, false},
	} {
		if got := chatops.Required(tc.cmd); got != tc.want || chatops.NeedsPermission(tc.cmd) != tc.check {
			t.Errorf("Required(%s) = %v, check %v; want %v, %v", tc.cmd, got, chatops.NeedsPermission(tc.cmd), tc.want, tc.check)
		}
	}
}
