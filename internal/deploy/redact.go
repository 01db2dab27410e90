package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
)

// Redacted replaces a secret in scrubbed text.
const Redacted = "[REDACTED]"

// Redactor removes known secrets from text before it leaves the process:
// PR comments, check runs, releases, deployment statuses and log lines. The
// zero value and a nil *Redactor redact nothing. It is immutable and safe
// for concurrent use.
type Redactor struct {
	needles []string // longest first
}

// NewRedactor returns a Redactor for secrets, typically
// config.Targets.Secrets() plus the webhook secret and the private key.
// Empty strings are ignored. Besides each secret as written, it also
// finds the secret as JSON, a URL query and a URL path would escape it,
// since an error body or a URL may quote it in those forms.
func NewRedactor(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var needles []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			needles = append(needles, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(jsonEscaped(s, true))
		add(jsonEscaped(s, false))
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	sort.Slice(needles, func(i, j int) bool {
		if len(needles[i]) != len(needles[j]) {
			return len(needles[i]) > len(needles[j])
		}
		return needles[i] < needles[j]
	})
	return &Redactor{needles: needles}
}

func jsonEscaped(s string, html bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if enc.Encode(s) != nil {
		return ""
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// Redact returns s with every occurrence of every secret replaced by
// Redacted. Occurrences that overlap or touch (one secret's tail is
// another's head) are replaced as one span, so no fragment of either
// survives; a plain strings.Replacer would leave the rest of the second.
func (r *Redactor) Redact(s string) string {
	if r == nil || len(r.needles) == 0 || s == "" {
		return s
	}
	var spans [][2]int
	for _, n := range r.needles {
		for from := 0; from < len(s); {
			i := strings.Index(s[from:], n)
			if i < 0 {
				break
			}
			start := from + i
			spans = append(spans, [2]int{start, start + len(n)})
			from = start + 1 // overlapping matches of one secret too
		}
	}
	if len(spans) == 0 {
		return s
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var b strings.Builder
	b.Grow(len(s))
	pos := 0
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] <= end; i++ {
			end = max(end, spans[i][1])
		}
		b.WriteString(s[pos:start])
		b.WriteString(Redacted)
		pos = end
	}
	b.WriteString(s[pos:])
	return b.String()
}

// Contains reports whether s holds any secret; tests and last-line checks
// use it to refuse text rather than to fix it.
func (r *Redactor) Contains(s string) bool {
	if r == nil {
		return false
	}
	for _, n := range r.needles {
		if strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// RedactURL reduces a URL to scheme, host and path, for errors: user
// info and the query often carry credentials (?token=…). A URL that does
// not parse is not quoted at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// host is what logs say about a URL: the host, which identifies the
// downstream without any path that could embed a token.
func host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// RedactHandler wraps h so that every record's message and attributes are
// scrubbed by r before h sees them. Non-string values are formatted first
// (an error's text can quote a secret); numbers, booleans, times and
// durations pass through untouched.
func RedactHandler(h slog.Handler, r *Redactor) slog.Handler {
	return &redactHandler{h: h, r: r}
}

type redactHandler struct {
	h slog.Handler
	r *Redactor
}

func (rh *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return rh.h.Enabled(ctx, l)
}

func (rh *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rh.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(rh.attr(a))
		return true
	})
	return rh.h.Handle(ctx, out)
}

func (rh *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = rh.attr(a)
	}
	return &redactHandler{h: rh.h.WithAttrs(clean), r: rh.r}
}

func (rh *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: rh.h.WithGroup(name), r: rh.r}
}

func (rh *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, rh.r.Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = rh.attr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		s := fmt.Sprint(v.Any())
		if rh.r.Contains(s) {
			return slog.String(a.Key, rh.r.Redact(s))
		}
		return slog.Attr{Key: a.Key, Value: v}
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
