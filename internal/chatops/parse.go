// Package chatops carries out /shipbot commands written as comments on
// merged pull requests: parsing (Parse), permission checks (Authorize) and
// the issue_comment webhook handler (Handler) that reacts, asks the
// Operator and answers with one reply.
package chatops

import "strings"

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
)

// flagForce is deploy's one flag.
const flagForce = "--force"

// Help is the answer to /shipbot help and to any command shipbot does not
// understand: every command, one line each.
const Help = "shipbot commands, for a comment on a merged pull request:\n" +
	"- `/shipbot deploy <stage>`: deploy a stage a label skipped, in version order (write; add `--force` to pass window and alarm blockers: admin)\n" +
	"- `/shipbot retry <stage>`: try the stage's failed deployment again (write)\n" +
	"- `/shipbot rollback <stage>`: roll the stage back to its previous successful version (write)\n" +
	"- `/shipbot freeze [reason]`: hold new rollouts of this pipeline (maintain)\n" +
	"- `/shipbot unfreeze`: let rollouts go again (maintain)\n" +
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
// with /shipbot (after optional leading whitespace, outside fenced code
// blocks). line is that line, trimmed, for quoting; found is false when
// there is none, and then the comment is none of shipbot's business. A
// command line that does not parse gives a *ParseError.
func Parse(body string) (cmd Command, line string, found bool, err error) {
	line, found = commandLine(body)
	if !found {
		return Command{}, "", false, nil
	}
	cmd, err = parseLine(line)
	return cmd, line, true, err
}

// commandLine returns the first /shipbot line of body, trimmed.
func commandLine(body string) (string, bool) {
	fence := ""
	for raw := range strings.Lines(body) {
		l := strings.TrimSpace(raw)
		if fence != "" {
			if strings.HasPrefix(l, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~") {
			fence = l[:3]
			continue
		}
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
	case VerbDeploy, VerbRetry, VerbRollback, VerbFreeze, VerbUnfreeze, VerbStatus, VerbHelp:
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
	case VerbDeploy, VerbRetry, VerbRollback:
		if len(args) == 0 {
			return Command{}, &ParseError{Problem: verb + " needs a stage"}
		}
		if len(args) > 1 {
			return Command{}, &ParseError{Problem: verb + " takes one stage"}
		}
		if !ValidStage(args[0]) {
			return Command{}, &ParseError{Problem: "a stage name is letters, digits, - and _"}
		}
		return Command{Verb: verb, Stage: args[0], Force: forces == 1}, nil
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

// ValidStage reports whether s is a plain stage name: letters, digits, -
// and _. Whether the pipeline has such a stage is the operator's to say.
func ValidStage(s string) bool {
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
	if c.Reason != "" {
		s += " " + c.Reason
	}
	return s
}
