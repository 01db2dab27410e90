package gate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Review states as GitHub reports them.
const (
	StateApproved         = "APPROVED"
	StateChangesRequested = "CHANGES_REQUESTED"
	StateDismissed        = "DISMISSED"
	StateCommented        = "COMMENTED"
	StatePending          = "PENDING"
)

// Check sources and states. Sources are kept apart because GitHub has two
// unrelated APIs for the same idea, and a required context may be satisfied
// by either.
const (
	SourceStatus   = "status"
	SourceCheckRun = "check_run"

	CheckSuccess = "success"
	CheckPending = "pending"
	CheckFailure = "failure"
)

// Protection sources, as named in [Protection.Sources].
const (
	SourceBranchProtection = "branch protection"
	SourceRuleset          = "ruleset"
)

// Policy is the gate section of the repository config.
type Policy struct {
	Approvals              int
	RequireProtectedBranch bool
	RequireChecks          bool
}

// Review is one submitted pull request review.
type Review struct {
	User        string
	State       string // APPROVED, CHANGES_REQUESTED, DISMISSED, COMMENTED, PENDING
	CommitID    string
	SubmittedAt time.Time
	ID          int64
	// Association is GitHub's author_association of the reviewer (OWNER,
	// MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, …). Empty means unknown and
	// is trusted; see [Decide].
	Association string
}

// Protection is what the branch's protection (classic and rulesets combined)
// demands.
type Protection struct {
	// Known is false when no source showed protection and at least one source
	// could not be read, so "not protected" cannot be concluded.
	Known             bool
	Protected         bool
	Sources           []string // SourceBranchProtection, SourceRuleset
	RequiredApprovals int
	DismissStale      bool
	RequiredChecks    []string
	// Warnings say what could not be read and which permission is missing;
	// they are passed on to [Decision.Notes].
	Warnings []string
}

// Check is the state of one status context or check run on a commit.
type Check struct {
	Name   string
	Source string // SourceStatus or SourceCheckRun
	State  string // CheckSuccess, CheckPending or CheckFailure
	Detail string // the status description or check-run conclusion, for people
	At     time.Time
	ID     int64
}

// Facts are everything the gate looks at for one merge.
type Facts struct {
	Repo     string
	HasPR    bool
	PRNumber int
	Author   string
	// HeadSHA is the PR's head commit; for a push without a PR, the pushed
	// commit.
	HeadSHA    string
	BaseRef    string
	Merged     bool
	Reviews    []Review
	Protection Protection
	Checks     []Check
}

// Decision is the gate's verdict.
type Decision struct {
	Allowed bool
	// Reasons lists every reason the merge is refused, in a fixed order (PR,
	// protection, approvals, changes requested, checks) and sorted within
	// each kind, so that re-rendering the PR comment does not reshuffle it.
	Reasons           []string
	Approvers         []string
	Approvals         int
	RequiredApprovals int
	// Notes are informative: stale, self- and non-collaborator reviews
	// ignored, protection sources that could not be read.
	Notes []string
}

// Decide applies the gate rules described in the package documentation.
func Decide(p Policy, f Facts) Decision {
	var d Decision
	branch := strings.TrimPrefix(f.BaseRef, "refs/heads/")
	head := short(f.HeadSHA)

	d.Notes = append(d.Notes, f.Protection.Warnings...)

	reviewed := f.HasPR && f.Merged
	switch {
	case !f.HasPR:
		d.Reasons = append(d.Reasons, fmt.Sprintf("commit %s reached %s without a reviewed pull request", head, branch))
	case !f.Merged:
		// The commit is the head of an open or closed PR but got onto the
		// branch some other way, so the PR's reviews do not vouch for it.
		d.Reasons = append(d.Reasons, fmt.Sprintf("commit %s reached %s but pull request #%d is not merged", head, branch, f.PRNumber))
	}

	if p.RequireProtectedBranch && !f.Protection.Protected {
		if f.Protection.Known {
			d.Reasons = append(d.Reasons, fmt.Sprintf("branch %s is not protected (neither branch protection nor a ruleset applies) and the config requires it", branch))
		} else {
			d.Reasons = append(d.Reasons, fmt.Sprintf("could not verify that branch %s is protected (see notes for what could not be read)", branch))
		}
	}

	if !reviewed {
		return d // refused above; nothing reviewed to count or check
	}

	d.RequiredApprovals = max(p.Approvals, f.Protection.RequiredApprovals, 0)
	approvers, blockers, notes := tally(f)
	d.Approvers = approvers
	d.Approvals = len(approvers)
	d.Notes = append(d.Notes, notes...)
	if d.Approvals < d.RequiredApprovals {
		d.Reasons = append(d.Reasons, approvalReason(d.RequiredApprovals, d.Approvals))
	}
	for _, who := range blockers {
		d.Reasons = append(d.Reasons, fmt.Sprintf("@%s requested changes", who))
	}

	if p.RequireChecks {
		reasons, notes := checkReasons(f.Protection, f.Checks, head, branch)
		d.Reasons = append(d.Reasons, reasons...)
		d.Notes = append(d.Notes, notes...)
	}

	d.Allowed = len(d.Reasons) == 0
	return d
}

// Forecast is [Decide] for a pull request that is not merged yet: the
// verdict a merge of its current head would get. It exists so that the
// preview check run does not have to fake facts, while Decide itself keeps
// refusing unmerged PRs.
func Forecast(p Policy, f Facts) Decision {
	if f.HasPR {
		f.Merged = true
	}
	return Decide(p, f)
}

func approvalReason(required, found int) string {
	if required == 1 {
		return fmt.Sprintf("1 approval from someone other than the author is required; found %d", found)
	}
	return fmt.Sprintf("%d approvals from people other than the author are required; found %d", required, found)
}

// tally returns the counted approvers and the reviewers with standing change
// requests (both sorted case-insensitively), plus notes on reviews that were
// ignored.
func tally(f Facts) (approvers, blockers, notes []string) {
	latest := map[string]Review{}    // lower-cased login -> standing review
	outsiders := map[string]Review{} // lower-cased login -> an ignored review
	selfApproved := false
	for _, r := range f.Reviews {
		state := strings.ToUpper(r.State)
		if state != StateApproved && state != StateChangesRequested && state != StateDismissed {
			continue // COMMENTED and PENDING leave the reviewer's state as it was
		}
		if r.User == "" {
			continue // a review nobody can be held to
		}
		if strings.EqualFold(r.User, f.Author) {
			selfApproved = selfApproved || state == StateApproved
			continue
		}
		if !trusted(r.Association) {
			// On a public repository anyone can submit a review; GitHub
			// itself only counts reviews from people with write access.
			outsiders[strings.ToLower(r.User)] = r
			continue
		}
		r.State = state
		key := strings.ToLower(r.User)
		if prev, ok := latest[key]; !ok || newer(r.SubmittedAt, r.ID, prev.SubmittedAt, prev.ID) {
			latest[key] = r
		}
	}
	if selfApproved {
		notes = append(notes, fmt.Sprintf("@%s's own approval does not count", f.Author))
	}
	for _, k := range slices.Sorted(maps.Keys(outsiders)) {
		r := outsiders[k]
		notes = append(notes, fmt.Sprintf("@%s's review does not count: they are not a collaborator (%s)", r.User, strings.ToUpper(r.Association)))
	}

	for _, k := range slices.Sorted(maps.Keys(latest)) {
		r := latest[k]
		switch r.State {
		case StateChangesRequested:
			blockers = append(blockers, r.User)
		case StateApproved:
			if r.CommitID == f.HeadSHA {
				approvers = append(approvers, r.User)
				continue
			}
			if f.Protection.DismissStale {
				notes = append(notes, fmt.Sprintf("@%s's approval of %s is ignored: the branch dismisses stale approvals and the head is now %s", r.User, short(r.CommitID), short(f.HeadSHA)))
				continue
			}
			// Counted, but said out loud: the approver has not seen the
			// latest commits.
			approvers = append(approvers, r.User)
			notes = append(notes, fmt.Sprintf("@%s approved %s, not the head %s; it counts because the branch does not dismiss stale approvals", r.User, short(r.CommitID), short(f.HeadSHA)))
		}
	}
	return approvers, blockers, notes
}

// trusted reports whether a reviewer's author_association can carry write
// access. MEMBER (of the owning organisation) is accepted without proof of
// write access to this repository, because proving it costs an API call per
// reviewer. An empty association is unknown and accepted, so that callers
// without the field keep today's behaviour.
func trusted(association string) bool {
	switch strings.ToUpper(association) {
	case "", "OWNER", "MEMBER", "COLLABORATOR":
		return true
	}
	return false
}

// checkReasons reports every required check that is not green on the head.
func checkReasons(prot Protection, checks []Check, head, branch string) (reasons, notes []string) {
	if !prot.Known && !prot.Protected {
		// Which checks are required lives in the protection we could not
		// read; passing would mean enforcing nothing while claiming to.
		return []string{fmt.Sprintf("could not determine which checks branch %s requires (see notes for what could not be read)", branch)}, nil
	}
	required := slices.Clone(prot.RequiredChecks)
	slices.Sort(required)
	required = slices.Compact(required)
	if len(required) == 0 {
		return nil, []string{fmt.Sprintf("branch %s requires no status checks, so require_checks has nothing to enforce", branch)}
	}

	// Latest per (source, name), so that a re-run that went green replaces
	// the failure it retried even if the caller passed unreduced lists.
	type key struct{ source, name string }
	latest := map[key]Check{}
	for _, c := range checks {
		k := key{c.Source, c.Name}
		if prev, ok := latest[k]; !ok || newer(c.At, c.ID, prev.At, prev.ID) {
			latest[k] = c
		}
	}

	for _, name := range required {
		var found []Check
		for _, src := range []string{SourceCheckRun, SourceStatus} {
			if c, ok := latest[key{src, name}]; ok {
				found = append(found, c)
			}
		}
		if len(found) == 0 {
			reasons = append(reasons, fmt.Sprintf("required check %q has not reported on %s", name, head))
			continue
		}
		// A name reported through both APIs is only as green as its worse
		// report: a passing status must not hide a failing check run.
		worst := slices.MaxFunc(found, func(a, b Check) int { return cmp.Compare(severity(a.State), severity(b.State)) })
		switch severity(worst.State) {
		case 0:
		case 1:
			reasons = append(reasons, fmt.Sprintf("required check %q is still pending on %s%s", name, head, detail(worst)))
		default:
			reasons = append(reasons, fmt.Sprintf("required check %q failed on %s%s", name, head, detail(worst)))
		}
	}
	return reasons, nil
}

// severity orders check states; anything unrecognised is treated as failure
// so that a surprise value can never open the gate.
func severity(state string) int {
	switch state {
	case CheckSuccess:
		return 0
	case CheckPending:
		return 1
	default:
		return 2
	}
}

func detail(c Check) string {
	if c.Detail == "" {
		return ""
	}
	return " (" + c.Detail + ")"
}

// newer reports whether (at, id) comes after (prevAt, prevID). Times decide
// when both are known; otherwise ids, which GitHub allocates in increasing
// order, so that e.g. a queued re-run without a start time still supersedes
// the run it retries.
func newer(at time.Time, id int64, prevAt time.Time, prevID int64) bool {
	if !at.IsZero() && !prevAt.IsZero() && !at.Equal(prevAt) {
		return at.After(prevAt)
	}
	return id > prevID
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
