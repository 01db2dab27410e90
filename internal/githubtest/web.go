package githubtest

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The fake hands out html_url links (pull requests, releases, commits,
// check runs) that the code under test shows to people: on the dashboard,
// in check run tables, in release notes. In `bot demo` a newcomer clicks
// them, so the fake answers a browser there with a plain page showing what
// shipbot left on GitHub, instead of a JSON 404. API clients are unaffected:
// only requests that accept text/html and match no API route get a page,
// and pages are not recorded as requests (they are not API calls).

// serveWeb answers a browser's GET of a path that is not an API route with
// one of the fake's web pages, or an HTML 404, and reports whether it did.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	path := r.URL.EscapedPath()
	if path == ghesPrefix || strings.HasPrefix(path, ghesPrefix+"/") {
		return false
	}
	if rt, _ := matchRoute(r.Method, path); rt != nil {
		return false
	}
	var segs []string
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		u, _ := url.PathUnescape(seg) // a bad escape finds no page
		segs = append(segs, u)
	}
	s.mu.Lock()
	title, body, ok := s.webPage(segs)
	s.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status, title, body = http.StatusNotFound, "Not found", "<p>The simulated GitHub has no such page.</p>"
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, struct {
		Title, Home string
		Body        any
	}{title, s.WebURL(), body}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(buf.Bytes())
	}
	return true
}

// webPage builds the page for a path's segments; ok is false when there is
// none. s.mu is held.
func (s *Server) webPage(segs []string) (title string, body template.HTML, ok bool) {
	if len(segs) == 1 && segs[0] == "" {
		return "simulated GitHub", s.indexHTML(), true
	}
	if len(segs) < 2 {
		return "", "", false
	}
	repo := s.repos[repoKey(segs[0], segs[1])]
	if repo == nil {
		return "", "", false
	}
	rest := strings.Join(segs[2:], "/")
	switch {
	case len(segs) == 2:
		return repo.fullName(), s.repoHTML(repo), true
	case len(segs) == 4 && segs[2] == "pull":
		n, err := strconv.Atoi(segs[3])
		if p := repo.pulls[n]; err == nil && p != nil {
			return fmt.Sprintf("%s#%d %s", repo.fullName(), n, p.title), s.pullHTML(repo, p), true
		}
	case len(segs) == 4 && segs[2] == "commit":
		if cm := repo.commits[segs[3]]; cm != nil {
			return fmt.Sprintf("%s@%s", repo.fullName(), shortSHA(cm.sha)), s.commitHTML(repo, cm), true
		}
	case len(segs) >= 5 && segs[2] == "releases" && segs[3] == "tag":
		tag := strings.Join(segs[4:], "/")
		for _, rl := range repo.releases {
			if rl.tag == tag || "untagged-"+strconv.FormatInt(rl.id, 10) == tag {
				return fmt.Sprintf("%s release %s", repo.fullName(), rl.tag), s.releaseHTML(repo, rl), true
			}
		}
	case len(segs) == 4 && segs[2] == "runs":
		id, _ := strconv.ParseInt(segs[3], 10, 64)
		for _, cr := range repo.checkRuns {
			if cr.id == id {
				return fmt.Sprintf("%s check run %s", repo.fullName(), cr.name), s.checkRunHTML(repo, cr), true
			}
		}
	case strings.HasPrefix(rest, "actions/runs/") && len(segs) == 5:
		id, _ := strconv.ParseInt(segs[4], 10, 64)
		for _, wr := range repo.runs {
			if wr.id == id {
				return fmt.Sprintf("%s workflow run %d", repo.fullName(), id), s.workflowRunHTML(repo, wr), true
			}
		}
	}
	return "", "", false
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1f2328}
a{color:#0969da}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}
.box{border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0}.meta{color:#59636e;font-size:90%}
.success{color:#1a7f37}.failure,.action_required,.timed_out,.cancelled{color:#d1242f}.neutral,.skipped{color:#59636e}
code{background:#eff1f3;padding:0 .25rem;border-radius:4px}
</style></head><body>
<p class="meta"><a href="{{.Home}}">simulated GitHub</a> — a stand-in for github.com that shows what shipbot wrote; nothing here is real</p>
<h1>{{.Title}}</h1>
{{.Body}}
</body></html>
`))

// htmlf formats with every argument HTML-escaped, except template.HTML
// values, which are already safe.
func htmlf(format string, args ...any) template.HTML {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case template.HTML:
			safe[i] = string(v)
		case string:
			safe[i] = html.EscapeString(v)
		case int, int64:
			safe[i] = v // for %d
		default:
			safe[i] = html.EscapeString(fmt.Sprint(v))
		}
	}
	return template.HTML(fmt.Sprintf(format, safe...))
}

func link(href, text string) template.HTML {
	return htmlf(`<a href="%s">%s</a>`, href, text)
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (s *Server) indexHTML() template.HTML {
	var b strings.Builder
	b.WriteString("<ul>")
	for _, key := range sortedKeys(s.repos) {
		r := s.repos[key]
		b.WriteString(string(htmlf("<li>%s</li>", link(s.WebURL()+r.fullName(), r.fullName()))))
	}
	b.WriteString("</ul>")
	return template.HTML(b.String())
}

func (s *Server) repoHTML(r *repository) template.HTML {
	var b strings.Builder
	b.WriteString("<h2>Pull requests</h2><ul>")
	for _, p := range sortedPulls(r) {
		b.WriteString(string(htmlf("<li>%s %s</li>", link(fmt.Sprintf("%s%s/pull/%d", s.WebURL(), r.fullName(), p.number), fmt.Sprintf("#%d %s", p.number, p.title)), pullState(p))))
	}
	b.WriteString("</ul><h2>Releases</h2><ul>")
	for i := len(r.releases) - 1; i >= 0; i-- {
		rl := r.releases[i]
		b.WriteString(string(htmlf("<li>%s <span class=meta>%s</span></li>", link(s.releaseURL(r, rl), rl.tag), when(rl.created))))
	}
	b.WriteString("</ul>")
	if len(r.deployments) > 0 {
		b.WriteString("<h2>Deployments</h2><table><tr><th>environment</th><th>ref</th><th>commit</th><th>latest state</th><th>created</th></tr>")
		for i := len(r.deployments) - 1; i >= 0; i-- {
			d := r.deployments[i]
			state := ""
			if n := len(d.statuses); n > 0 {
				state = d.statuses[n-1].state
			}
			b.WriteString(string(htmlf("<tr><td>%s</td><td>%s</td><td>%s</td><td class=%s>%s</td><td>%s</td></tr>",
				d.environment, d.ref, s.commitLink(r, d.sha), state, state, when(d.created))))
		}
		b.WriteString("</table>")
	}
	return template.HTML(b.String())
}

func pullState(p *pull) string {
	switch {
	case !p.merged.IsZero():
		return "(merged)"
	case p.state == "closed":
		return "(closed)"
	}
	return "(open)"
}

func (s *Server) commitLink(r *repository, sha string) template.HTML {
	return link(s.WebURL()+r.fullName()+"/commit/"+sha, shortSHA(sha))
}

func (s *Server) releaseURL(r *repository, rl *release) string {
	return fmt.Sprintf("%s%s/releases/tag/%s", s.WebURL(), r.fullName(), rl.tag)
}

func (s *Server) pullHTML(r *repository, p *pull) template.HTML {
	var b strings.Builder
	state := pullState(p)
	if p.mergeSHA != "" {
		b.WriteString(string(htmlf("<p>%s: %s merged %s into %s as %s, %s</p>", state, p.mergedBy, p.head, p.base, s.commitLink(r, p.mergeSHA), when(p.merged))))
	} else {
		b.WriteString(string(htmlf("<p>%s: %s wants to merge %s into %s</p>", state, p.author, p.head, p.base)))
	}
	b.WriteString(string(htmlf("<p class=meta>opened by %s, %s; head %s</p>", p.author, when(p.created), s.commitLink(r, p.headSHA(r)))))
	if len(p.labels) > 0 {
		b.WriteString(string(htmlf("<p>labels: %s</p>", strings.Join(p.labels, ", "))))
	}
	for _, rv := range p.reviews {
		b.WriteString(string(htmlf("<p class=meta>review by %s: %s (on %s)</p>", rv.user, rv.state, shortSHA(rv.commitID))))
	}
	if p.body != "" {
		b.WriteString(string(htmlf(`<div class=box>%s</div>`, markdown(p.body))))
	}
	for _, rl := range r.releases {
		if p.mergeSHA != "" && (rl.targetCommitish == p.mergeSHA || r.refs["refs/tags/"+rl.tag] == p.mergeSHA) {
			b.WriteString(string(htmlf("<p>released as %s</p>", link(s.releaseURL(r, rl), rl.tag))))
		}
	}
	b.WriteString("<h2>Conversation</h2>")
	for _, cm := range r.comments {
		if cm.issue != p.number {
			continue
		}
		edited := ""
		if cm.edits > 0 {
			edited = fmt.Sprintf(" (edited %d×, last %s)", cm.edits, when(cm.updated))
		}
		var reactions []string
		for _, rc := range cm.reactions {
			reactions = append(reactions, rc.content)
		}
		b.WriteString(string(htmlf(`<div class=box id="issuecomment-%d"><p class=meta>%s commented %s%s</p>%s<p class=meta>%s</p></div>`,
			cm.id, cm.user, when(cm.created), edited, markdown(cm.body), strings.Join(reactions, " "))))
	}
	b.WriteString("<h2>Checks</h2>")
	shas := []string{p.headSHA(r)}
	if p.mergeSHA != "" {
		shas = append(shas, p.mergeSHA)
	}
	for _, sha := range shas {
		b.WriteString(string(s.checksHTML(r, sha)))
	}
	return template.HTML(b.String())
}

// checksHTML lists the statuses and check runs on sha.
func (s *Server) checksHTML(r *repository, sha string) template.HTML {
	var b strings.Builder
	b.WriteString(string(htmlf("<h3>on %s</h3><ul>", s.commitLink(r, sha))))
	for _, st := range r.statuses[sha] {
		b.WriteString(string(htmlf("<li>status %s: <span class=%s>%s</span></li>", st.context, st.state, st.state)))
	}
	for _, cr := range r.checkRuns {
		if cr.sha != sha {
			continue
		}
		b.WriteString(string(htmlf("<li>%s: <span class=%s>%s</span> %s</li>",
			link(fmt.Sprintf("%s%s/runs/%d", s.WebURL(), r.fullName(), cr.id), cr.name), checkState(cr), checkState(cr), cr.title)))
	}
	b.WriteString("</ul>")
	return template.HTML(b.String())
}

func checkState(cr *checkRun) string {
	if cr.status == "completed" {
		return cr.conclusion
	}
	return cr.status
}

func (s *Server) commitHTML(r *repository, cm *commit) template.HTML {
	var b strings.Builder
	b.WriteString(string(htmlf("<p class=meta>%s, %s</p><pre>%s</pre>", cm.author, when(cm.time), cm.message)))
	for _, p := range sortedPulls(r) {
		if p.mergeSHA == cm.sha {
			b.WriteString(string(htmlf("<p>merge of %s</p>", link(fmt.Sprintf("%s%s/pull/%d", s.WebURL(), r.fullName(), p.number), fmt.Sprintf("#%d %s", p.number, p.title)))))
		}
	}
	b.WriteString(string(s.checksHTML(r, cm.sha)))
	return template.HTML(b.String())
}

func (s *Server) releaseHTML(r *repository, rl *release) template.HTML {
	sha := r.refs["refs/tags/"+rl.tag]
	if sha == "" {
		sha = rl.targetCommitish
	}
	return htmlf("<p class=meta>%s by %s, %s, on %s</p><div class=box>%s</div>", rl.name, rl.author, when(rl.created), s.commitLink(r, sha), markdown(rl.body))
}

func (s *Server) checkRunHTML(r *repository, cr *checkRun) template.HTML {
	return htmlf("<p>on %s: <span class=%s>%s</span> (by %s, updated %d×)</p><h2>%s</h2><div class=box>%s</div><div class=box>%s</div>",
		s.commitLink(r, cr.sha), checkState(cr), checkState(cr), cr.app, cr.updates, cr.title, markdown(cr.summary), markdown(cr.text))
}

func (s *Server) workflowRunHTML(r *repository, wr *workflowRun) template.HTML {
	state := wr.status
	if wr.status == "completed" {
		state = wr.conclusion
	}
	return htmlf("<p>%s: %s, <span class=%s>%s</span>, on %s (%s)</p>", wr.workflow, wr.title, state, state, s.commitLink(r, wr.sha), wr.event)
}

var (
	mdComment = regexp.MustCompile(`(?s)<!--.*?-->`)
	mdLink    = regexp.MustCompile(`\[([^\]]*)\]\((https?://[^)\s]+)\)`)
	mdCode    = regexp.MustCompile("`([^`]+)`")
	mdBold    = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdEscape  = regexp.MustCompile(`\\([\\` + "`" + `*_{}\[\]()#+\-.!|<>~@])`)
)

// markdown renders the little Markdown shipbot writes (headings, tables,
// links, code, bold) well enough to read; anything else shows as text.
// Everything is escaped first, and only http(s) links become anchors.
// HTML comments are hidden, as GitHub hides them.
func markdown(md string) template.HTML {
	md = mdComment.ReplaceAllString(md, "")
	var b strings.Builder
	lines := strings.Split(strings.TrimSpace(md), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \r")
		switch {
		case strings.HasPrefix(line, "|"):
			b.WriteString("<table>")
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				cells := splitRow(lines[i])
				if isSeparator(cells) {
					continue
				}
				b.WriteString("<tr>")
				for _, c := range cells {
					b.WriteString("<td>" + inline(c) + "</td>")
				}
				b.WriteString("</tr>")
			}
			i--
			b.WriteString("</table>")
		case strings.HasPrefix(line, "#"):
			b.WriteString("<h3>" + inline(strings.TrimLeft(line, "# ")) + "</h3>")
		case line == "":
			b.WriteString("<br>")
		default:
			b.WriteString(inline(line) + "<br>")
		}
	}
	return template.HTML(b.String())
}

func inline(s string) string {
	s = html.EscapeString(strings.TrimSpace(s))
	s = mdLink.ReplaceAllString(s, `<a href="$2">$1</a>`)
	s = mdCode.ReplaceAllString(s, "<code>$1</code>")
	s = mdBold.ReplaceAllString(s, "<b>$1</b>")
	return mdEscape.ReplaceAllString(s, "$1")
}

// splitRow splits a table row at unescaped pipes.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		line = line[:len(line)-1]
	}
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line):
			cur.WriteByte(line[i])
			cur.WriteByte(line[i+1])
			i++
		case line[i] == '|':
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, cur.String())
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), "-:") != "" {
			return false
		}
	}
	return len(cells) > 0
}
