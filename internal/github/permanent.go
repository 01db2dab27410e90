package github

import (
	"errors"
	"net/http"

	gh "github.com/google/go-github/v60/github"
)

// Permanent reports whether err is GitHub refusing a request for good: a
// 4xx answer other than a rate limit or a timeout (the repository gone,
// the App lacking a permission, a request GitHub will never accept).
// Anything else (a 5xx, a rate limit, no connection, an installation
// token backing off) may pass, and the work is worth trying again.
func Permanent(err error) bool {
	var rate *gh.RateLimitError
	var abuse *gh.AbuseRateLimitError
	if err == nil || errors.As(err, &rate) || errors.As(err, &abuse) {
		return false
	}
	var resp *gh.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil {
		return false
	}
	switch c := resp.Response.StatusCode; {
	case c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
		return false
	default:
		return c >= 400 && c < 500
	}
}
