package release

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// ErrTagElsewhere means the release's tag already exists on another commit.
var ErrTagElsewhere = errors.New("tag already exists on another commit")

// Published is a GitHub Release the bot created or found.
type Published struct {
	URL string
	// Existed is true when the release was already there (a retry after a
	// crash between creating it and recording it).
	Existed bool
}

// Publish creates the GitHub Release for tag on sha. It is one call: GitHub
// creates the tag at target_commitish along with the release, which saves
// the separate ref write. A release that already exists for the tag is
// taken as ours when its tag is on sha, so retries are harmless.
func Publish(ctx context.Context, client *gh.Client, repo, tag, sha, name, notes string) (Published, error) {
	owner, rname, _ := strings.Cut(repo, "/")
	rel, resp, err := client.Repositories.CreateRelease(ctx, owner, rname, &gh.RepositoryRelease{
		TagName:         gh.String(tag),
		TargetCommitish: gh.String(sha),
		Name:            gh.String(name),
		Body:            gh.String(notes),
		MakeLatest:      gh.String("true"),
	})
	if err == nil {
		return Published{URL: rel.GetHTMLURL()}, nil
	}
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity || !alreadyExists(err) {
		return Published{}, fmt.Errorf("create release %s: %w", tag, err)
	}
	existing, _, err := client.Repositories.GetReleaseByTag(ctx, owner, rname, tag)
	if err != nil {
		return Published{}, fmt.Errorf("read existing release %s: %w", tag, err)
	}
	ref, _, err := client.Git.GetRef(ctx, owner, rname, "tags/"+tag)
	if err != nil {
		return Published{}, fmt.Errorf("read tag %s: %w", tag, err)
	}
	target := ref.GetObject().GetSHA()
	if ref.GetObject().GetType() == "tag" {
		// An annotated tag points at a tag object; its target is the commit.
		t, _, err := client.Git.GetTag(ctx, owner, rname, target)
		if err != nil {
			return Published{}, fmt.Errorf("read tag object %s: %w", tag, err)
		}
		target = t.GetObject().GetSHA()
	}
	if target != sha {
		return Published{}, fmt.Errorf("create release %s: %w (%s, not %s)", tag, ErrTagElsewhere, short(target), short(sha))
	}
	return Published{URL: existing.GetHTMLURL(), Existed: true}, nil
}

func alreadyExists(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	for _, e := range er.Errors {
		if e.Code == "already_exists" {
			return true
		}
	}
	return strings.Contains(strings.ToLower(er.Message), "already exists")
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
