package chatops

import (
	"strings"

	"github.com/shipbot/shipbot/internal/pipeline"
)

// Permission is GitHub's answer to GET
// /repos/{owner}/{repo}/collaborators/{username}/permission.
type Permission struct {
	// Permission is the legacy level: admin, write, read or none. It folds
	// maintain into write and triage into read.
	Permission string `json:"permission"`
	// RoleName is the real role: admin, maintain, write, triage, read, or
	// an organization's custom role name.
	RoleName string `json:"role_name"`
}

// Level orders repository roles.
type Level int

// The repository roles, weakest first.
const (
	LevelNone Level = iota
	LevelRead
	LevelTriage
	LevelWrite
	LevelMaintain
	LevelAdmin
)

var levelNames = map[Level]string{
	LevelNone: "none", LevelRead: "read", LevelTriage: "triage",
	LevelWrite: "write", LevelMaintain: "maintain", LevelAdmin: "admin",
}

func (l Level) String() string { return levelNames[l] }

var (
	roleLevels   = map[string]Level{"admin": LevelAdmin, "maintain": LevelMaintain, "write": LevelWrite, "triage": LevelTriage, "read": LevelRead}
	legacyLevels = map[string]Level{"admin": LevelAdmin, "write": LevelWrite, "read": LevelRead}
)

// Level is the strongest of what role_name and permission say. A custom
// role name counts for what its legacy permission says (a custom role based
// on write reads "write"), never more.
func (p Permission) Level() Level {
	return max(roleLevels[strings.ToLower(p.RoleName)], legacyLevels[strings.ToLower(p.Permission)])
}

// describe is the role as the user knows it, for refusals.
func (p Permission) describe() string {
	if p.RoleName != "" {
		return p.RoleName
	}
	if p.Permission != "" {
		return p.Permission
	}
	return "none"
}

// Required is the role a command needs: write for deploy, retry and
// rollback; maintain for freeze and unfreeze; admin for deploy --force;
// read (being able to comment) for status, help and anything else.
func Required(c Command) Level {
	switch c.Verb {
	case VerbDeploy:
		if c.Force {
			return LevelAdmin
		}
		return LevelWrite
	case VerbRetry, VerbRollback:
		return LevelWrite
	case VerbFreeze, VerbUnfreeze:
		return LevelMaintain
	}
	return LevelRead
}

// NeedsPermission reports whether running c takes a permission check; status
// and help are open to anyone who can comment.
func NeedsPermission(c Command) bool { return Required(c) > LevelRead }

// Authorize decides whether someone with permission p may run c. It returns
// nil when allowed, else a polite Refusal naming the permission needed.
func Authorize(c Command, p Permission) *pipeline.Refusal {
	need := Required(c)
	if p.Level() >= need {
		return nil
	}
	have := p.describe()
	var reason string
	switch need {
	case LevelAdmin:
		reason = "Sorry, `--force` passes window and alarm blockers, so it is for repository admins only (admin permission); " +
			"your role here is " + have + ". Without `--force`, the deploy waits for its window and alarms."
	default:
		reason = "Sorry, `" + c.Verb + "` needs " + need.String() + " permission on this repository (" + orBetter(need) +
			"); your role here is " + have + "."
	}
	return &pipeline.Refusal{Reason: reason}
}

// orBetter lists the roles at least l, e.g. "write, maintain or admin".
func orBetter(l Level) string {
	var names []string
	for x := l; x <= LevelAdmin; x++ {
		names = append(names, x.String())
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
