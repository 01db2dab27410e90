package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file, positioned so that an editor,
// `bot check-config` and a check run annotation can point at it.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
}

// Error formats as "file:line:column: msg", leaving out the parts that are
// unknown.
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// ErrorList is every problem found in one file, in file order. Reporting all
// of them at once spares the author a fix-push-fail loop per mistake.
type ErrorList []*Error

// Error returns one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns the list sorted by position, or a true nil when it is empty
// (a nil ErrorList in an error interface would not compare equal to nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
	return l
}

// Warning is a problem that does not stop a file from being used, such as
// a target whose ${VAR} is unset: only what uses that target fails. It is
// positioned like Error.
type Warning struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
}

// String formats as "file:line:column: msg", like Error.
func (w Warning) String() string {
	return (&Error{File: w.File, Line: w.Line, Column: w.Column, Msg: w.Msg}).Error()
}
