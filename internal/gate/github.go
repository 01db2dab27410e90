package gate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// ReviewsFrom maps GitHub reviews to [Review]s. Every review is kept; which
// ones count is [Decide]'s business.
func ReviewsFrom(in []*github.PullRequestReview) []Review {
	out := make([]Review, 0, len(in))
	for _, r := range in {
		if r == nil {
			continue
		}
		out = append(out, Review{
			User:        r.GetUser().GetLogin(),
			State:       strings.ToUpper(r.GetState()),
			CommitID:    r.GetCommitID(),
			SubmittedAt: r.GetSubmittedAt().Time,
			ID:          r.GetID(),
			Association: r.GetAuthorAssociation(),
		})
	}
	return out
}

// ChecksFrom maps the commit statuses and check runs of one commit to
// [Check]s: the latest status per context (by creation time, then id) and the
// latest check run per name (by start time, then id), because a retried check
// supersedes the attempt it retried. The result is sorted by source, then
// name.
//
// Statuses: success → success, pending → pending, error and failure →
// failure. Check runs: anything not completed → pending; conclusion success,
// neutral or skipped → success (GitHub accepts all three for a required
// check); any other conclusion → failure.
func ChecksFrom(statuses []*github.RepoStatus, runs []*github.CheckRun) []Check {
	latest := map[string]Check{}
	keep := func(c Check) {
		k := c.Source + "\x00" + c.Name
		if prev, ok := latest[k]; !ok || newer(c.At, c.ID, prev.At, prev.ID) {
			latest[k] = c
		}
	}
	for _, s := range statuses {
		if s == nil || s.GetContext() == "" {
			continue
		}
		keep(Check{
			Name:   s.GetContext(),
			Source: SourceStatus,
			State:  statusState(s.GetState()),
			Detail: s.GetDescription(),
			At:     s.GetCreatedAt().Time,
			ID:     s.GetID(),
		})
	}
	for _, r := range runs {
		if r == nil || r.GetName() == "" {
			continue
		}
		state, det := runState(r.GetStatus(), r.GetConclusion())
		keep(Check{
			Name:   r.GetName(),
			Source: SourceCheckRun,
			State:  state,
			Detail: det,
			At:     r.GetStartedAt().Time,
			ID:     r.GetID(),
		})
	}
	out := make([]Check, 0, len(latest))
	for _, c := range latest {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Check) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func statusState(s string) string {
	switch s {
	case "success":
		return CheckSuccess
	case "pending":
		return CheckPending
	default: // error, failure, and anything GitHub may add later
		return CheckFailure
	}
}

func runState(status, conclusion string) (state, detail string) {
	if status != "completed" {
		return CheckPending, status
	}
	switch conclusion {
	case "success", "neutral", "skipped":
		return CheckSuccess, conclusion
	default: // failure, cancelled, timed_out, action_required, stale, startup_failure, …
		return CheckFailure, conclusion
	}
}

// ProtectionRead says how reading classic branch protection
// (GET /repos/{owner}/{repo}/branches/{branch}/protection) went.
type ProtectionRead int

const (
	// ProtectionUnread is the zero value: not attempted, or failed for a
	// reason other than 403/404. It is treated as unknown, never as "not
	// protected".
	ProtectionUnread ProtectionRead = iota
	// ProtectionOK: 200, the branch has classic protection.
	ProtectionOK
	// ProtectionNotFound: 404 "Branch not protected".
	ProtectionNotFound
	// ProtectionForbidden: 403, the App lacks "Administration: read".
	ProtectionForbidden
)

// Warnings for protection that could not be read. They are phrased to be
// shown on the PR as they are.
const (
	warnClassicForbidden = `classic branch protection is unreadable without the GitHub App permission "Administration: read"; its required approvals and checks are not known to shipbot`
	warnClassicUnread    = "classic branch protection could not be read; its required approvals and checks are not known to shipbot"
	warnRulesUnread      = "repository rulesets could not be read; their required approvals and checks are not known to shipbot"
)

// The same warnings, for callers that surface them on their own terms
// (`bot run` turns them into workflow ::warning:: annotations).
const (
	WarnClassicForbidden = warnClassicForbidden
	WarnClassicUnread    = warnClassicUnread
	WarnRulesUnread      = warnRulesUnread
)

// ProtectionFrom combines classic branch protection and the ruleset rules
// that apply to the branch (GET /repos/{owner}/{repo}/rules/branches/{branch},
// which returns only rules of active rulesets) into one [Protection]: the
// larger approval count, dismiss-stale if either dismisses, the union of
// required checks.
//
// A branch counts as protected by rulesets when any rule other than
// "creation" applies to it ("creation" only restricts creating the branch,
// not updating it). Protection is Known unless no source shows protection and
// some source could not be read.
func ProtectionFrom(classic *github.Protection, classicState ProtectionRead, rules []*github.RepositoryRule, rulesRead bool) Protection {
	var p Protection
	checks := map[string]bool{}
	classicKnown := false

	switch classicState {
	case ProtectionOK:
		classicKnown = true
		p.Protected = true
		p.Sources = append(p.Sources, SourceBranchProtection)
		if rv := classic.GetRequiredPullRequestReviews(); rv != nil {
			p.RequiredApprovals = rv.RequiredApprovingReviewCount
			p.DismissStale = rv.DismissStaleReviews
		}
		if sc := classic.GetRequiredStatusChecks(); sc != nil {
			// GitHub fills both the deprecated contexts and checks with the
			// same names; reading both is harmless and covers either.
			for _, c := range sc.GetContexts() {
				checks[c] = true
			}
			for _, c := range sc.GetChecks() {
				if c != nil {
					checks[c.Context] = true
				}
			}
		}
	case ProtectionNotFound:
		classicKnown = true
	case ProtectionForbidden:
		p.Warnings = append(p.Warnings, warnClassicForbidden)
	default:
		p.Warnings = append(p.Warnings, warnClassicUnread)
	}

	if rulesRead {
		byRuleset := false
		for _, r := range rules {
			if r == nil || r.Type == "" || r.Type == "creation" {
				continue
			}
			byRuleset = true
			switch r.Type {
			case "pull_request":
				var prm github.PullRequestRuleParameters
				if err := decodeParams(r, &prm); err != nil {
					p.Warnings = append(p.Warnings, err.Error())
					continue
				}
				p.RequiredApprovals = max(p.RequiredApprovals, prm.RequiredApprovingReviewCount)
				p.DismissStale = p.DismissStale || prm.DismissStaleReviewsOnPush
			case "required_status_checks":
				var prm github.RequiredStatusChecksRuleParameters
				if err := decodeParams(r, &prm); err != nil {
					p.Warnings = append(p.Warnings, err.Error())
					continue
				}
				for _, c := range prm.RequiredStatusChecks {
					checks[c.Context] = true
				}
			}
		}
		if byRuleset {
			p.Protected = true
			p.Sources = append(p.Sources, SourceRuleset)
		}
	} else {
		p.Warnings = append(p.Warnings, warnRulesUnread)
	}

	p.Known = p.Protected || (classicKnown && rulesRead)
	for c := range checks {
		if c != "" {
			p.RequiredChecks = append(p.RequiredChecks, c)
		}
	}
	slices.Sort(p.RequiredChecks)
	return p
}

// decodeParams reads a rule's parameters. go-github v60 keeps them as raw
// JSON (*json.RawMessage) whatever the rule type, so each type has to be
// decoded into its own parameter struct here.
func decodeParams(r *github.RepositoryRule, into any) error {
	if r.Parameters == nil {
		return nil // no parameters: the rule's zero-valued defaults apply
	}
	if err := json.Unmarshal(*r.Parameters, into); err != nil {
		return fmt.Errorf("the parameters of a %s ruleset rule could not be read (%v); its requirements are not known to shipbot", r.Type, err)
	}
	return nil
}

// DecodeRules decodes the body of GET /repos/{owner}/{repo}/rules/branches/{branch}.
//
// It exists because go-github v60's RepositoryRule.UnmarshalJSON fails the
// whole response on any rule type it does not know (merge_queue,
// code_scanning, file_path_restriction, max_file_size, …), and GitHub returns
// such rules for many repositories today; with it, one unfamiliar rule would
// make every ruleset unreadable. Here every rule is kept with its raw
// parameters, and [ProtectionFrom] reads the types it understands.
func DecodeRules(body []byte) ([]*github.RepositoryRule, error) {
	var raw []struct {
		Type       string          `json:"type"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decoding branch rules: %w", err)
	}
	out := make([]*github.RepositoryRule, 0, len(raw))
	for _, r := range raw {
		rule := &github.RepositoryRule{Type: r.Type}
		if len(r.Parameters) > 0 && string(r.Parameters) != "null" {
			prm := r.Parameters
			rule.Parameters = &prm
		}
		out = append(out, rule)
	}
	return out, nil
}
