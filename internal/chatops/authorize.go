package chatops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/internal/markdown"
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
// Approve and reject need maintain when the stage names no approvers, but
// who may run them is AuthorizeApproval's to decide, not Authorize's: a
// listed approver needs no role, and the pull request's author may never.
func Required(c Command) Level {
	switch c.Verb {
	case VerbDeploy:
		if c.Force {
			return LevelAdmin
		}
		return LevelWrite
	case VerbRetry, VerbRollback:
		return LevelWrite
	case VerbFreeze, VerbUnfreeze, VerbApprove, VerbReject:
		return LevelMaintain
	}
	return LevelRead
}

// NeedsPermission reports whether running c takes a permission check; status
// and help are open to anyone who can comment.
func NeedsPermission(c Command) bool { return Required(c) > LevelRead }

// IsApproval reports whether c is approve or reject, which AuthorizeApproval
// decides.
func IsApproval(c Command) bool { return c.Verb == VerbApprove || c.Verb == VerbReject }

// Authorize decides whether someone with permission p may run c. It returns
// nil when allowed, else a polite Refusal naming the permission needed.
// It is not the judge of approve and reject: see AuthorizeApproval.
func Authorize(c Command, p Permission) *pipeline.Refusal {
	need := Required(c)
	if p.Level() >= need {
		return nil
	}
	have := markdown.Escape(p.describe())
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

// Asker is who asks to approve or reject a stage, with the reads that
// tell AuthorizeApproval more about them. It calls each only when the
// answer matters, so a decision costs GitHub as little as it can.
type Asker struct {
	// Login is the commenter's.
	Login string
	// Permission reads the asker's role on the repository. Asked only when
	// the stage names no approvers.
	Permission func(ctx context.Context) (Permission, error)
	// TeamMember reports whether the asker is an active member of team
	// slug of organization org (a pending invitation is not). Asked only
	// when the asker is not listed by login, one listed team after the
	// other until one says yes. A *TeamUnreadable error is answered with
	// a refusal; any other error is returned as is.
	TeamMember func(ctx context.Context, org, slug string) (bool, error)
}

// TeamUnreadable is a team membership GitHub refused to show for good: a
// 4xx answer other than 404 (not a member) and 429. A 403 means the App
// lacks the organization permission "Members: read".
type TeamUnreadable struct {
	Team   string // "@org/slug"
	Status int    // GitHub's answer
	Err    error
}

func (e *TeamUnreadable) Error() string {
	return fmt.Sprintf("reading membership of team %s: HTTP %d: %v", e.Team, e.Status, e.Err)
}

func (e *TeamUnreadable) Unwrap() error { return e.Err }

// AuthorizeApproval decides whether asker may approve or reject (c) the
// stage whose approval rules are a, on a pull request opened by author.
// It returns nil when allowed, a polite Refusal saying who may when not,
// and an error only when a read failed in a way a retry may mend (the
// permission or a team membership could not be read). The rules:
//   - a stage that needs no approval (a.Required false) is refused
//     outright (the operator would refuse too; this says it before any
//     read);
//   - the pull request's author never may (logins compare
//     case-insensitively), nor anyone when the author is unknown;
//   - without approvers, the asker needs maintain or admin;
//   - with approvers, the asker is listed by login, or is an active member
//     of a listed team ("@org/team-slug"); teams are asked only when the
//     login is not listed, in order, until one says yes. A listed approver
//     needs no role on the repository.
//
// Every outside string in a refusal (logins, teams, the stage's name) is
// escaped for GitHub Markdown: it notifies nobody.
func AuthorizeApproval(ctx context.Context, c Command, a pipeline.Approval, author string, asker Asker) (*pipeline.Refusal, error) {
	stage := a.Stage
	if stage == "" {
		stage = c.Stage
	}
	stage = markdown.Escape(stage)
	verb, doing := "approve", "approving"
	if c.Verb == VerbReject {
		verb, doing = "reject", "rejecting"
	}
	if !a.Required {
		return &pipeline.Refusal{Reason: fmt.Sprintf("Sorry, %s needs no approval: its configuration does not set `approval: true`, so there is nothing to %s.", stage, verb)}, nil
	}
	logins, teams := splitApprovers(a.Approvers)
	who := approverList(logins, teams)
	if author == "" || strings.EqualFold(asker.Login, author) {
		var reason string
		if author == "" {
			reason = fmt.Sprintf("Sorry, shipbot cannot tell who opened this pull request, and its author may not %s it, so it does not %s %s.", verb, verb, stage)
		} else {
			reason = fmt.Sprintf("Sorry, the pull request's author cannot %s %s.", verb, stage)
		}
		if who != "" {
			reason += fmt.Sprintf(" %s it needs one of: %s.", capitalize(doing), who)
		} else {
			reason += fmt.Sprintf(" %s it needs someone else with maintain permission on this repository (maintain or admin).", capitalize(doing))
		}
		return &pipeline.Refusal{Reason: reason}, nil
	}

	if who == "" {
		perm, err := asker.Permission(ctx)
		if err != nil {
			return nil, err
		}
		if perm.Level() >= LevelMaintain {
			return nil, nil
		}
		return &pipeline.Refusal{Reason: fmt.Sprintf("Sorry, %s %s needs maintain permission on this repository (%s); your role here is %s. The pull request's author cannot %s.",
			doing, stage, orBetter(LevelMaintain), markdown.Escape(perm.describe()), verb)}, nil
	}

	for _, l := range logins {
		if strings.EqualFold(l, asker.Login) {
			return nil, nil
		}
	}
	var forbidden, unreadable []string
	for _, t := range teams {
		ok, err := asker.TeamMember(ctx, t.org, t.slug)
		var tu *TeamUnreadable
		switch {
		case errors.As(err, &tu) && tu.Status == 403:
			forbidden = append(forbidden, t.String())
		case errors.As(err, &tu):
			unreadable = append(unreadable, t.String())
		case err != nil:
			return nil, err
		case ok:
			return nil, nil
		}
	}
	reason := fmt.Sprintf("Sorry, %s %s needs one of: %s; the pull request's author cannot %s.", doing, stage, who, verb)
	if len(forbidden) > 0 {
		reason += fmt.Sprintf(" shipbot could not check whether you are a member of %s: to check team approvers, the App needs the organization permission \"Members: read\", which an organization owner can grant in the App's installation settings.",
			escapeAll(forbidden))
	}
	if len(unreadable) > 0 {
		reason += fmt.Sprintf(" GitHub would not show shipbot your membership of %s.", escapeAll(unreadable))
	}
	return &pipeline.Refusal{Reason: reason}, nil
}

// team is a team approver, "@org/slug".
type team struct{ org, slug string }

func (t team) String() string { return "@" + t.org + "/" + t.slug }

// splitApprovers sorts approvers into logins and teams: an entry with a
// "/" is a team ("@acme/release-managers", the "@" optional, since no
// login has a "/"); any other is a login ("alice", or "@alice").
func splitApprovers(approvers []string) (logins []string, teams []team) {
	for _, a := range approvers {
		a = strings.TrimPrefix(strings.TrimSpace(a), "@")
		if a == "" {
			continue
		}
		if org, slug, ok := strings.Cut(a, "/"); ok {
			if org != "" && slug != "" {
				teams = append(teams, team{org, slug})
			}
			continue
		}
		logins = append(logins, a)
	}
	return logins, teams
}

// approverList is the approvers as a refusal names them, escaped:
// "@alice, @acme/release-managers (team)"; "" when there are none.
func approverList(logins []string, teams []team) string {
	var names []string
	for _, l := range logins {
		names = append(names, markdown.Escape("@"+l))
	}
	for _, t := range teams {
		names = append(names, markdown.Escape(t.String())+" (team)")
	}
	return strings.Join(names, ", ")
}

func escapeAll(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = markdown.Escape(s)
	}
	return strings.Join(out, ", ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
