// Package readauth guards shipbot's reads (the dashboard and GET /api/v1/*)
// with SHIPBOT_DASHBOARD_TOKEN. Both surfaces show the same data
// (repositories, versions, target hosts quoted in execution reasons), so
// one guard decides for both and neither can drift open.
//
// A request is allowed when no token is set, or when it carries the token:
// "Authorization: Bearer <token>", "?token=<token>" (which also sets an
// HttpOnly, SameSite=Strict cookie so a browser's later requests, the
// dashboard's own links and live updates, keep working), or that cookie.
package readauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// CookieName is the cookie a ?token= visit sets.
const CookieName = "shipbot_dashboard"

// Guard holds the read token; the zero value lets everything through.
type Guard struct {
	Token string
}

// Allow reports whether r may read. A valid ?token= sets the session
// cookie on w.
func (g Guard) Allow(w http.ResponseWriter, r *http.Request) bool {
	if g.Token == "" {
		return true
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && g.matches(got) {
		return true
	}
	if got := r.URL.Query().Get("token"); got != "" && g.matches(got) {
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: g.session(), Path: "/", MaxAge: int((12 * time.Hour).Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		})
		return true
	}
	if ck, err := r.Cookie(CookieName); err == nil &&
		subtle.ConstantTimeCompare([]byte(ck.Value), []byte(g.session())) == 1 {
		return true
	}
	return false
}

// Challenge is the WWW-Authenticate value of a refusal.
const Challenge = `Bearer realm="shipbot"`

// matches compares in constant time; hashing first keeps the time
// independent of the lengths too.
func (g Guard) matches(got string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(g.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// session is the cookie's value: derived from the token, so the cookie
// never holds the token itself, and changes when the token does.
func (g Guard) session() string {
	m := hmac.New(sha256.New, []byte(g.Token))
	m.Write([]byte("shipbot dashboard session v1"))
	return hex.EncodeToString(m.Sum(nil))
}
