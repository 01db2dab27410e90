package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/shipbot/shipbot/internal/config"
)

// errHelpShown ends a command that printed its usage because it was asked
// to (-h, --help): main exits 0 without another word.
var errHelpShown = errors.New("help shown")

// usageError is a mistake on the command line: main prints it, then the
// command's usage, and exits 2, as the flag package's own commands do.
type usageError struct {
	err   error
	usage string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// newFlags returns a flag set whose errors parseFlags reports: the flag
// package's own printing is off, because it writes the usage before the
// error and to stderr even for --help.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args with fs. -h or --help prints usage (with the
// flags' defaults) to stdout and returns errHelpShown; an unknown flag or a
// bad value returns a usageError naming it ("flag provided but not defined:
// -bogus"). With maxArgs >= 0, more positional arguments than that is a
// usageError too.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int, usage string, stdout io.Writer) error {
	full := usageText(fs, usage)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, full)
		return errHelpShown
	case err != nil:
		return usageError{err, full}
	case maxArgs >= 0 && fs.NArg() > maxArgs:
		if maxArgs == 0 {
			return usageError{fmt.Errorf("takes no arguments, got %q", fs.Args()), full}
		}
		return usageError{fmt.Errorf("too many arguments: %q", fs.Args()), full}
	}
	return nil
}

// usageText is usage followed by the flags fs defines, if any.
func usageText(fs *flag.FlagSet, usage string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(usage, "\n"))
	b.WriteString("\n")
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

// envHelp lists the service's environment variables for `bot serve
// --help`, from the same table as README's, so the two cannot drift.
func envHelp() string {
	width := 0
	for _, v := range config.EnvVars {
		width = max(width, len(v.Name))
	}
	var b strings.Builder
	for _, v := range config.EnvVars {
		def := plain(v.Default)
		if strings.HasPrefix(v.Default, "`") || v.Default == "none" {
			def = "default: " + def
		}
		text := plain(v.Meaning) + " (" + def + ")"
		for i, line := range wrap(text, 76-width) {
			name := ""
			if i == 0 {
				name = v.Name
			}
			fmt.Fprintf(&b, "  %-*s  %s\n", width, name, line)
		}
	}
	return b.String()
}

// plain turns the table's Markdown into terminal text.
func plain(md string) string { return strings.ReplaceAll(md, "`", "") }

// wrap breaks s into lines of at most width characters, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width:
			lines = append(lines, line)
			line = w
		default:
			line += " " + w
		}
	}
	return append(lines, line)
}
