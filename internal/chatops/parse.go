// Package chatops carries out /shipbot commands written as comments on
// merged pull requests: parsing (Parse), permission checks (Authorize) and
// the issue_comment webhook handler (Handler) that reacts, asks the
// Operator and answers with one reply.
package chatops

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Prefix starts a command line.
const Prefix = "/shipbot"

// Verbs, as Command.Verb holds them.
const (
	VerbDeploy   = "deploy"
	VerbRetry    = "retry"
	VerbRollback = "rollback"
	VerbFreeze   = "freeze"
	VerbUnfreeze = "unfreeze"
	VerbStatus   = "status"
	VerbHelp     = "help"
	VerbApprove  = "approve"
	VerbReject   = "reject"
)

// flagForce is deploy's one flag.
const flagForce = "--force"

// Help is the answer to /shipbot help and to any command shipbot does not
// understand: every command, one line each.
const Help = "shipbot commands, for a comment on a merged pull request (with several pipelines, a stage is `<pipeline>/<stage>`):\n" +
	"- `/shipbot deploy <stage>`: deploy a stage a label skipped, in version order (write; add `--force` to pass window and alarm blockers: admin)\n" +
	"- `/shipbot retry <stage>`: try the stage's failed deployment again (write)\n" +
	"- `/shipbot rollback <stage> [to <version>]`: roll the stage back to its previous successful version, or to any version it ran before (write)\n" +
	"- `/shipbot freeze [reason]`: hold new rollouts of this pipeline (maintain)\n" +
	"- `/shipbot unfreeze`: let rollouts go again (maintain)\n" +
	"- `/shipbot approve <stage>`: let this version into a stage that waits for approval (the stage's approvers, else maintain; never the pull request's author)\n" +
	"- `/shipbot reject <stage> [reason]`: fail a stage that waits for approval (the same people as approve)\n" +
	"- `/shipbot status`: where this pull request's rollout is\n" +
	"- `/shipbot help`: this list"

// ParseError is a /shipbot line shipbot does not understand. Its answer to
// the user is Answer: what was wrong, then Help.
type ParseError struct {
	// Problem says what was wrong, in a few words ("unknown command").
	Problem string
}

func (e *ParseError) Error() string { return "shipbot command: " + e.Problem }

// Answer is the reply to a command that did not parse.
func (e *ParseError) Answer() string {
	return "I did not understand that (" + e.Problem + ").\n\n" + Help
}

// Parse finds the command in a comment body: the first line that starts
// with /shipbot (after at most three spaces) and that GitHub shows as a
// line of its own, outside code, quotes and HTML comments (see
// commandLine). line is that line as shown (HTML comments cut out),
// trimmed, for quoting; found is false when there is none, and then the
// comment is none of shipbot's business. A command line that does not
// parse gives a *ParseError.
func Parse(body string) (cmd Command, line string, found bool, err error) {
	line, found = commandLine(body)
	if !found {
		return Command{}, "", false, nil
	}
	cmd, err = parseLine(line)
	return cmd, line, true, err
}

// commentMarkdown parses comment bodies as GitHub does, as far as finding
// commands needs: CommonMark's blocks with GitHub's tables (a table row is
// no line of its own), and of the inlines only code spans and raw HTML,
// which decide where HTML comments are. Only the structure is used, never
// a rendering. Links and emphasis are left out: they change neither, and
// their bracket matching costs a hostile comment's author seconds of CPU
// where these take milliseconds.
var commentMarkdown = goldmark.New(
	goldmark.WithParser(parser.NewParser(
		parser.WithBlockParsers(parser.DefaultBlockParsers()...),
		parser.WithInlineParsers(
			// Default priorities: a code span wins over raw HTML.
			util.Prioritized(parser.NewCodeSpanParser(), 100),
			util.Prioritized(parser.NewRawHTMLParser(), 400),
		),
		parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...),
	)),
	goldmark.WithExtensions(extension.Table),
)

// commandLine returns the first /shipbot line of body, as shown, trimmed.
//
// What people see decides, not the raw text: a command inside a fenced or
// indented code block is an example, one in a block quote is someone else's
// words, and one inside an HTML comment is invisible, so that a comment
// cannot carry a command its readers (and reviewers) do not see. Hence a
// real CommonMark parser rather than line heuristics: fences closed only by
// a fence of the same character and at least the same length, fences inside
// list items, the lazy continuation of a quote ("> a" then "b" is one
// quote) and the rest are its job. A line counts when it belongs to a
// paragraph outside any block quote, starts with at most three spaces (four
// or a tab is code, or reads as such), does not start inside an HTML
// comment, and starts with /shipbot once comments are cut out.
func commandLine(body string) (string, bool) {
	if !containsFold(body, Prefix) {
		return "", false // most comments: no need to parse them
	}
	if nestingOver(body, maxNesting) {
		// The parser's time grows with the square of the nesting; no one
		// nests that deep, except to make shipbot spin.
		return "", false
	}
	// CommonMark's line endings are \n, \r\n and \r; one kind keeps the
	// line arithmetic below simple.
	src := []byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n"))
	doc := commentMarkdown.Parser().Parse(text.NewReader(src))

	var (
		lines []int // starts of paragraph lines outside quotes, in order
		raw   spans // text the rendering passes through as HTML
		code  spans // code blocks: rendered escaped, so never HTML
	)
	quoted := 0 // depth of block quotes around the node
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if _, ok := n.(*ast.Blockquote); ok {
			if entering {
				quoted++
			} else {
				quoted--
			}
		}
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Paragraph, *ast.TextBlock:
			if quoted > 0 {
				break
			}
			for i := range n.Lines().Len() {
				lines = append(lines, lineStart(src, n.Lines().At(i).Start))
			}
		case *ast.HTMLBlock:
			raw = raw.addLines(n.Lines())
			if n.HasClosure() {
				raw = append(raw, span{n.ClosureLine.Start, n.ClosureLine.Stop})
			}
		case *ast.RawHTML:
			raw = raw.addLines(n.Segments)
		case *ast.CodeBlock, *ast.FencedCodeBlock:
			code = code.addLines(n.Lines())
		}
		return ast.WalkContinue, nil
	})
	byStart := func(a, b span) int { return cmp.Compare(a.start, b.start) }
	slices.SortFunc(raw, byStart)
	slices.SortFunc(code, byStart)
	hidden := comments(src, raw, code)

	lines = slices.Compact(lines)
	for _, start := range lines {
		end := bytes.IndexByte(src[start:], '\n')
		if end < 0 {
			end = len(src) - start
		}
		if indentColumns(src[start:start+end]) >= 4 || hidden.contains(start) {
			continue
		}
		l := strings.TrimSpace(string(hidden.cut(src, start, start+end)))
		if len(l) < len(Prefix) || !strings.EqualFold(l[:len(Prefix)], Prefix) {
			continue
		}
		if rest := l[len(Prefix):]; rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			continue // "/shipbotx" is another word
		}
		return l, true
	}
	return "", false
}

// maxNesting bounds the block quotes and list items a line may open.
const maxNesting = 32

// nestingOver reports whether a line of body opens more than max block
// quotes and list items ("> > - 1. text" opens four).
func nestingOver(body string, max int) bool {
	for line := range strings.Lines(body) {
		n := 0
		for i := 0; i < len(line); {
			switch c := line[i]; {
			case c == ' ' || c == '\t':
				i++
				continue
			case c == '>':
				i++
			case c == '-' || c == '*' || c == '+':
				i++
				if i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' {
					i = len(line) // "-x" is text
					continue
				}
			case c >= '0' && c <= '9':
				j := i
				for j < len(line) && line[j] >= '0' && line[j] <= '9' {
					j++
				}
				if j == len(line) || (line[j] != '.' && line[j] != ')') {
					i = len(line)
					continue
				}
				i = j + 1
			default:
				i = len(line)
				continue
			}
			if n++; n > max {
				return true
			}
		}
	}
	return false
}

// containsFold reports whether s contains sub, ASCII case folded.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// lineStart is the offset of the start of the line holding offset i.
func lineStart(src []byte, i int) int {
	return bytes.LastIndexByte(src[:i], '\n') + 1
}

// indentColumns is the width of line's leading blanks, a tab reaching the
// next multiple of four as in CommonMark.
func indentColumns(line []byte) int {
	n := 0
	for _, c := range line {
		switch c {
		case ' ':
			n++
		case '\t':
			n += 4 - n%4
		default:
			return n
		}
	}
	return n
}

// span is the byte range [start, stop) of a comment body.
type span struct{ start, stop int }

// spans are sorted and disjoint.
type spans []span

func (ss spans) addLines(segs *text.Segments) spans {
	for i := range segs.Len() {
		s := segs.At(i)
		ss = append(ss, span{s.Start, s.Stop})
	}
	return ss
}

// contains reports whether offset i lies in one of ss.
func (ss spans) contains(i int) bool { return ss.covers(i, i+1) }

// covers reports whether [i, j) lies within one of ss.
func (ss spans) covers(i, j int) bool {
	// The first span ending after i is the only one that can hold it.
	k, _ := slices.BinarySearchFunc(ss, i, func(s span, i int) int { return cmp.Compare(s.stop, i+1) })
	return k < len(ss) && ss[k].start <= i && j <= ss[k].stop
}

// cut returns src[from:to] without the parts in ss.
func (ss spans) cut(src []byte, from, to int) []byte {
	var out []byte
	for i := from; i < to; i++ {
		if !ss.contains(i) {
			out = append(out, src[i])
		}
	}
	return out
}

// comments finds the parts of src a browser would hold inside an HTML
// comment. It errs towards hiding: a <!-- anywhere but in a code block
// opens one (even in a code span or an attribute, where it would not), and
// one closes only at a --> the rendering passes through as HTML (a --> in
// paragraph text is escaped to --&gt;, which closes nothing, so
// "<div><!--" in an HTML block hides all that follows). An unclosed comment
// runs to the end. Mistaking text for a comment only ignores a command;
// the opposite would run one nobody can see.
func comments(src []byte, raw, code spans) spans {
	const open, shut = "<!--", "-->"
	var out spans
	for pos := 0; pos < len(src); {
		i := bytes.Index(src[pos:], []byte(open))
		if i < 0 {
			break
		}
		i += pos
		if code.contains(i) {
			pos = i + 1
			continue
		}
		end := len(src)
		for from := i + len(open); from < len(src); {
			j := bytes.Index(src[from:], []byte(shut))
			if j < 0 {
				break
			}
			j += from
			if raw.covers(j, j+len(shut)) {
				end = j + len(shut)
				break
			}
			from = j + 1
		}
		out = append(out, span{i, end})
		pos = end
	}
	return out
}

// parseLine parses a trimmed line that starts with /shipbot.
func parseLine(line string) (Command, error) {
	rest := strings.TrimSpace(line[len(Prefix):])
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return Command{}, &ParseError{Problem: "no command given"}
	}
	verb := strings.ToLower(fields[0])
	var args []string
	forces := 0
	for _, a := range fields[1:] {
		if strings.EqualFold(a, flagForce) {
			forces++
			continue
		}
		args = append(args, a)
	}
	switch verb {
	case VerbDeploy, VerbRetry, VerbRollback, VerbFreeze, VerbUnfreeze, VerbStatus, VerbHelp, VerbApprove, VerbReject:
	default:
		return Command{}, &ParseError{Problem: "unknown command"}
	}
	switch {
	case forces > 0 && verb != VerbDeploy:
		return Command{}, &ParseError{Problem: "`--force` only goes with deploy"}
	case forces > 1:
		return Command{}, &ParseError{Problem: "`--force` given twice"}
	}
	switch verb {
	case VerbDeploy, VerbRetry, VerbRollback, VerbApprove, VerbReject:
		if len(args) == 0 {
			return Command{}, &ParseError{Problem: verb + " needs a stage"}
		}
		var to string
		if verb == VerbRollback && len(args) == 3 && strings.EqualFold(args[1], "to") {
			if to = args[2]; !ValidVersion(to) {
				return Command{}, &ParseError{Problem: "a version is a tag or a semantic version, e.g. `v1.2.0` or `1.2.0`"}
			}
			args = args[:1]
		}
		if len(args) > 1 && verb == VerbRollback {
			return Command{}, &ParseError{Problem: "rollback takes a stage, then optionally `to <version>`"}
		}
		if len(args) > 1 && verb != VerbReject {
			return Command{}, &ParseError{Problem: verb + " takes one stage"}
		}
		if !ValidStage(args[0]) {
			return Command{}, &ParseError{Problem: "a stage name is letters, digits, - and _ (`<pipeline>/<stage>` with several pipelines)"}
		}
		c := Command{Verb: verb, Stage: args[0], Force: forces == 1, To: to}
		if verb == VerbReject {
			// The reason is the rest of the line after the stage, as
			// written.
			after := strings.TrimSpace(rest[len(fields[0]):])
			c.Reason = strings.TrimSpace(after[len(args[0]):])
		}
		return c, nil
	case VerbFreeze:
		// The reason is the rest of the line as written.
		return Command{Verb: verb, Reason: strings.TrimSpace(rest[len(fields[0]):])}, nil
	default: // unfreeze, status, help
		if len(args) > 0 {
			return Command{}, &ParseError{Problem: verb + " takes no arguments"}
		}
		return Command{Verb: verb}, nil
	}
}

// ValidStage reports whether s names a stage: a plain name (letters,
// digits, - and _), or in a repository with several pipelines
// "<pipeline>/<stage>", two such names around one "/". Whether the
// pipeline has such a stage is the operator's to say.
func ValidStage(s string) bool {
	if p, st, ok := strings.Cut(s, "/"); ok {
		return validName(p) && validName(st)
	}
	return validName(s)
}

// ValidVersion reports whether s may name a version: a release tag or a
// version without its prefix (letters, digits, and . - _ / +), as the
// stage's history knows them; which versions exist is the operator's to
// say.
func ValidVersion(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".-_/+", r):
		default:
			return false
		}
	}
	return true
}

// validName reports whether s is a plain name: letters, digits, - and _.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// String is the command in its canonical form, e.g. "/shipbot deploy prod
// --force".
func (c Command) String() string {
	s := Prefix + " " + c.Verb
	if c.Stage != "" {
		s += " " + c.Stage
	}
	if c.Force {
		s += " " + flagForce
	}
	if c.To != "" {
		s += " to " + c.To
	}
	if c.Reason != "" {
		s += " " + c.Reason
	}
	return s
}
