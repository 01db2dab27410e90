package githubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The payloads GitHub documents as examples (npm @octokit/webhooks-examples,
// see testdata/webhooks/README.md). Builders start from them so that every
// field the fake does not model still has GitHub's shape, and overwrite
// what the fake knows.
//
//go:embed testdata/webhooks/*.json
var webhookExamples embed.FS

// zeroSHA is what push payloads carry for a ref that did not exist before
// or no longer exists.
const zeroSHA = "0000000000000000000000000000000000000000"

// hookshotAgent is the User-Agent GitHub sends webhooks with.
const hookshotAgent = "GitHub-Hookshot/044aadd"

func example(name string) map[string]any {
	raw, err := webhookExamples.ReadFile("testdata/webhooks/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("githubtest: webhook example %s: %v", name, err))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("githubtest: webhook example %s: %v", name, err))
	}
	return m
}

// fill copies into dst the example's top-level fields the fake does not
// produce. Nested objects are never merged: a half-merged user or
// repository would mix the fake's identity with the example's.
func fill(dst map[string]any, ex any) map[string]any {
	exm, _ := ex.(map[string]any)
	for k, v := range exm {
		if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
	return dst
}

// payload finishes an event: the fake's repository, installation and
// sender, and no organization or enterprise, which the fake does not model.
func (s *Server) payload(ev map[string]any, c *call, r *repository, sender string) []byte {
	ev["repository"] = fill(s.repoJSON(c, r), ev["repository"])
	ev["installation"] = map[string]any{"id": r.installationID, "node_id": nodeID("MDIz", r.installationID)}
	ev["sender"] = s.userJSON(sender)
	delete(ev, "organization")
	delete(ev, "enterprise")
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("githubtest: encoding a webhook payload: %v", err))
	}
	return b
}

// hookCall is a call for building payloads outside a request; payload URLs
// use the plain (non-GHES) base.
func (s *Server) hookCall() *call { return &call{s: s, base: s.ts.URL} }

// PullRequestEvent is the body of a pull_request webhook with action
// (opened, closed, labeled, unlabeled, synchronize, reopened, edited, …)
// for the pull request as it is now. For "closed" after Merge it says
// merged: true, with merge_commit_sha and merged_by; for labeled/unlabeled
// it names the label most recently added or removed; for synchronize,
// before is the head's parent and after the head.
func (s *Server) PullRequestEvent(owner, repo string, number int, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(owner+"/"+repo, number)
	c := s.hookCall()
	var ev map[string]any
	switch action {
	case "closed":
		ev = example("pull_request.closed")
	case "labeled", "unlabeled":
		ev = example("pull_request.labeled")
	case "synchronize":
		ev = example("pull_request.synchronize")
	default:
		ev = example("pull_request.opened")
	}
	ev["action"] = action
	ev["number"] = p.number
	ev["pull_request"] = fill(s.prJSON(c, r, p), ev["pull_request"])
	sender := p.author
	switch action {
	case "closed":
		if p.mergedBy != "" {
			sender = p.mergedBy
		}
	case "labeled", "unlabeled":
		if p.lastLabel == "" {
			panic(fmt.Sprintf("githubtest: PullRequestEvent(%s): #%d has never been labeled", action, number))
		}
		ev["label"] = s.labelJSON(c, r, p.lastLabel)
	case "synchronize":
		head := p.headSHA(r)
		before := zeroSHA
		if cm := r.commits[head]; cm != nil && len(cm.parents) > 0 {
			before = cm.parents[0]
		}
		ev["before"], ev["after"] = before, head
	}
	return s.payload(ev, c, r, sender)
}

// ReviewEvent is the body of a pull_request_review webhook (action
// submitted, edited or dismissed) for review reviewID. As in GitHub's
// webhooks, and unlike the REST API, review.state is lower case
// ("approved").
func (s *Server) ReviewEvent(owner, repo string, number int, reviewID int64, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(owner+"/"+repo, number)
	var rv *review
	for _, x := range p.reviews {
		if x.id == reviewID {
			rv = x
		}
	}
	if rv == nil {
		panic(fmt.Sprintf("githubtest: ReviewEvent: no review %d on #%d", reviewID, number))
	}
	c := s.hookCall()
	ev := example("pull_request_review.submitted")
	ev["action"] = action
	review := s.reviewJSON(c, r, p, rv)
	review["state"] = strings.ToLower(rv.state)
	ev["review"] = fill(review, ev["review"])
	// The review event carries the shorter pull request object: keep the
	// example's set of fields, with the fake's values.
	exPR, _ := ev["pull_request"].(map[string]any)
	full := s.prJSON(c, r, p)
	pr := map[string]any{}
	for k := range exPR {
		if v, ok := full[k]; ok {
			pr[k] = v
		}
	}
	ev["pull_request"] = fill(pr, exPR)
	return s.payload(ev, c, r, rv.user)
}

// IssueCommentEvent is the body of an issue_comment webhook (action
// created, edited or deleted) for comment commentID on pull request
// number; issue.pull_request is set, as for every comment on a PR.
func (s *Server) IssueCommentEvent(owner, repo string, number int, commentID int64, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(owner+"/"+repo, number)
	var cm *comment
	for _, x := range r.comments {
		if x.id == commentID && x.issue == number {
			cm = x
		}
	}
	if cm == nil {
		panic(fmt.Sprintf("githubtest: IssueCommentEvent: no comment %d on #%d", commentID, number))
	}
	c := s.hookCall()
	ev := example("issue_comment.created")
	ev["action"] = action
	full := s.prJSON(c, r, p)
	issueURL := c.apiURL("/repos/%s/issues/%d", r.fullName(), p.number)
	issue := map[string]any{
		"url":                issueURL,
		"repository_url":     c.apiURL("/repos/%s", r.fullName()),
		"labels_url":         issueURL + "/labels{/name}",
		"comments_url":       issueURL + "/comments",
		"events_url":         issueURL + "/events",
		"html_url":           full["html_url"],
		"id":                 p.id,
		"node_id":            nodeID("I", p.id),
		"number":             p.number,
		"title":              p.title,
		"user":               full["user"],
		"labels":             full["labels"],
		"state":              p.state,
		"locked":             false,
		"assignee":           nil,
		"assignees":          []any{},
		"milestone":          nil,
		"comments":           full["comments"],
		"created_at":         full["created_at"],
		"updated_at":         full["updated_at"],
		"closed_at":          full["closed_at"],
		"author_association": full["author_association"],
		"active_lock_reason": nil,
		"draft":              p.draft,
		"body":               full["body"],
		"reactions": map[string]any{
			"url": issueURL + "/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
			"hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
		},
		"pull_request": map[string]any{
			"url": full["url"], "html_url": full["html_url"], "diff_url": full["diff_url"],
			"patch_url": full["patch_url"], "merged_at": full["merged_at"],
		},
	}
	ev["issue"] = fill(issue, ev["issue"])
	ev["comment"] = fill(s.commentJSON(c, r, cm), ev["comment"])
	return s.payload(ev, c, r, cm.user)
}

// maxPushCommits is how many commits GitHub lists in a push payload.
const maxPushCommits = 2048

// PushEvent is the body of a push webhook for ref ("refs/heads/main",
// "refs/tags/v1.0.0") moving from before to after (zeroSHA-style
// "0000…" for a created or deleted ref), with head_commit, pusher and,
// for a branch, every commit of the compare before...after, oldest first
// (at most 2048): a merged pull request's own commits as well as its
// merge commit, several merges for a push that lands several (a merge
// queue's group). For a created branch they are the commits no other ref
// has. A commit made on another branch first (a pull request's, a merge
// queue's temporary branch) is not distinct. The pusher is the head
// commit's author: for a merge commit, whoever merged.
func (s *Server) PushEvent(owner, repo, ref, before, after string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(owner + "/" + repo)
	c := s.hookCall()
	ev := example("push")
	web := s.WebURL() + r.fullName()
	ev["ref"], ev["before"], ev["after"] = ref, before, after
	ev["created"] = before == zeroSHA
	ev["deleted"] = after == zeroSHA
	ev["forced"] = false
	ev["base_ref"] = nil
	if before == zeroSHA {
		ev["compare"] = web + "/commit/" + after
	} else {
		ev["compare"] = fmt.Sprintf("%s/compare/%s...%s", web, before[:min(12, len(before))], after[:min(12, len(after))])
	}
	pusher := r.owner
	var head *commit
	var commits []map[string]any
	if after != zeroSHA {
		sha, ok := r.peel(after)
		if !ok {
			panic(fmt.Sprintf("githubtest: PushEvent: no commit %s in %s", after, r.fullName()))
		}
		head = r.commits[sha]
		pusher = head.author
		if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			var old map[string]bool
			if before == zeroSHA {
				var others []string
				for name, obj := range r.refs {
					if name != ref {
						if sha, ok := r.peel(obj); ok {
							others = append(others, sha)
						}
					}
				}
				old = r.ancestors(others...)
			} else {
				if r.commits[before] == nil {
					panic(fmt.Sprintf("githubtest: PushEvent: no commit %s in %s", before, r.fullName()))
				}
				old = r.ancestors(before)
				ev["forced"] = !r.isAncestor(before, sha)
			}
			list := r.rangeCommits(old, sha)
			for _, cm := range list[max(len(list)-maxPushCommits, 0):] {
				commits = append(commits, s.pushCommitJSON(r, cm, cm.branch == branch))
			}
		}
	}
	if commits == nil {
		commits = []map[string]any{}
	}
	ev["commits"] = commits
	if head != nil {
		branch, isBranch := strings.CutPrefix(ref, "refs/heads/")
		ev["head_commit"] = s.pushCommitJSON(r, head, isBranch && head.branch == branch)
	} else {
		ev["head_commit"] = nil
	}
	name, email := gitUser(pusher)
	ev["pusher"] = map[string]any{"name": name, "email": email}
	out := s.payload(ev, c, r, pusher)
	// Push payloads differ from every other event's repository: unix
	// timestamps for created_at and pushed_at, and owner with name and
	// email. Patch those after the common fill.
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		panic(fmt.Sprintf("githubtest: re-decoding a push payload: %v", err))
	}
	repoObj := m["repository"].(map[string]any)
	repoObj["created_at"] = r.created.Unix()
	repoObj["pushed_at"] = r.pushed.Unix()
	repoObj["master_branch"] = r.defaultBranch
	repoObj["stargazers"] = 0
	ownerObj := repoObj["owner"].(map[string]any)
	ownerObj["name"], ownerObj["email"] = gitUser(r.owner)
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("githubtest: encoding a push payload: %v", err))
	}
	return b
}

func (s *Server) pushCommitJSON(r *repository, cm *commit, distinct bool) map[string]any {
	var parent map[string]string
	if len(cm.parents) > 0 {
		parent = r.commits[cm.parents[0]].files
	}
	added, modified := []string{}, []string{}
	for _, p := range sortedKeys(cm.files) {
		old, ok := parent[p]
		switch {
		case !ok:
			added = append(added, p)
		case old != cm.files[p]:
			modified = append(modified, p)
		}
	}
	removed := []string{}
	for _, p := range sortedKeys(parent) {
		if _, ok := cm.files[p]; !ok {
			removed = append(removed, p)
		}
	}
	name, email := gitUser(cm.author)
	who := map[string]any{"name": name, "email": email, "username": cm.author}
	return map[string]any{
		"id":        cm.sha,
		"tree_id":   treeSHA(cm.files),
		"distinct":  distinct,
		"message":   cm.message,
		"timestamp": timestamp(cm.time),
		"url":       s.WebURL() + r.fullName() + "/commit/" + cm.sha,
		"author":    who,
		"committer": who,
		"added":     added,
		"removed":   removed,
		"modified":  modified,
	}
}

// PingEvent is the body of the ping GitHub sends when an App's webhook is
// created.
func (s *Server) PingEvent() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := example("ping")
	hook, _ := ev["hook"].(map[string]any)
	hookID := s.appID + 100000000
	hook["type"] = "App"
	hook["id"] = hookID
	hook["app_id"] = s.appID
	hook["events"] = []string{"pull_request", "pull_request_review", "push", "issue_comment", "check_run", "check_suite", "status", "merge_group"}
	hook["config"] = map[string]any{"content_type": "json", "url": "https://shipbot.example/webhooks/github", "insecure_ssl": "0"}
	hook["deliveries_url"] = fmt.Sprintf("%s/app/hook/deliveries", s.ts.URL)
	for _, k := range []string{"url", "test_url", "ping_url", "last_response"} {
		delete(hook, k) // repository hooks only
	}
	ev["hook_id"] = hookID
	ev["sender"] = s.userJSON("shipbot")
	delete(ev, "repository")
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("githubtest: encoding a ping payload: %v", err))
	}
	return b
}

// Sign is the X-Hub-Signature-256 value GitHub sends for body:
// "sha256=" and the lowercase hex HMAC-SHA256 of the exact bytes.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// signSHA1 is the legacy X-Hub-Signature GitHub still sends alongside.
func signSHA1(secret, body []byte) string {
	m := hmac.New(sha1.New, secret)
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver POSTs a webhook to url the way GitHub does: JSON body, event
// name, delivery id and both signature headers. A nil secret sends no
// signatures, as for a webhook configured without one.
func Deliver(ctx context.Context, url, event, deliveryID string, body, secret []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building %s delivery %s: %w", event, deliveryID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", hookshotAgent)
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", deliveryID)
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if secret != nil {
		req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
		req.Header.Set("X-Hub-Signature", signSHA1(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("delivering %s %s: %w", event, deliveryID, err)
	}
	return resp, nil
}
