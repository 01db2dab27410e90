// Package gate decides whether a merge may deploy.
//
// It is the functional core of shipbot's first promise: deploy only what was
// reviewed. Everything here is pure — plain values in, plain values out, no
// network — so that the rules can be read and tested as tables, and so that
// the preview check run and the real rollout cannot disagree about them. The
// shell fetches the facts from GitHub (the PR, its reviews, branch protection
// and rulesets, commit statuses and check runs on the PR head), maps them
// with [ReviewsFrom], [ChecksFrom] and [ProtectionFrom], and calls [Decide].
//
// The rules, in the order their reasons are reported:
//
//  1. A commit that reached the branch without a pull request (direct push,
//     admin bypass) is refused, and so is one whose pull request is not
//     merged (the commit was pushed to the branch past its PR). Approvals
//     and checks are not evaluated for such a commit: there is nothing
//     reviewed to evaluate.
//  2. With require_protected_branch, the branch must be protected by classic
//     branch protection or by a repository ruleset. When neither source
//     shows protection and one of them could not be read (classic protection
//     needs the App permission "Administration: read"), the merge is refused:
//     shipbot fails closed rather than assume.
//  3. Approvals: each reviewer's state is their latest APPROVED,
//     CHANGES_REQUESTED or DISMISSED review (by submission time, then review
//     id); COMMENTED and PENDING reviews change nothing; the author's own
//     reviews never count (logins compare case-insensitively), nor do reviews
//     by people whose author_association shows they are not a collaborator
//     (CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE):
//     on a public repository anyone can submit a review. When the
//     branch dismisses stale reviews, only approvals of the head SHA count.
//     The number required is the larger of the repository config and the
//     branch protection.
//  4. Any reviewer whose standing state is CHANGES_REQUESTED blocks the merge,
//     on any commit.
//  5. With require_checks, every check the branch protection requires must be
//     green on the PR's head SHA (the merge commit has no checks yet). A
//     required name is satisfied by a commit status or a check run of that
//     name; if both exist, the worse of the two counts. Checks that are not
//     required never block.
//
// Every applicable reason is reported, not just the first, so that one round
// of fixes is enough.
package gate
