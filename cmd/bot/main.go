// Command bot is shipbot: a GitHub App that turns merging a pull request
// into a gated, versioned, staged rollout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "", "run the webhook service (GitHub App mode)", runServe},
		{"demo", "", "play merges against a simulated GitHub and print what the bot does", runDemo},
		{"run", "", "one-shot mode for the GitHub Action: gate, release and rollout of this workflow's push", runAction},
		{"plan", "...", "dry run: print what merging a pull request would do now", runPlan},
		{"check-config", "FILE", "validate a .github/shipbot.yml or a targets file; errors name line and column", runCheckConfig},
		{"migrate", "", "apply database migrations to SHIPBOT_DB and exit", runMigrate},
		{"version", "", "print the version (also: bot --version)", runVersion},
	}
}

const versionUsage = `usage: bot version

Prints the version of this bot binary. bot --version does the same.`

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if err := parseFlags(newFlags("version"), args, 0, versionUsage, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "shipbot", version)
	return nil
}

// exitError carries a specific exit status: check-config reports an invalid
// file with 1, usage errors are 2.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bot <command> [arguments]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %-6s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "bot <command> --help shows a command's usage and flags; bot serve --help lists")
	fmt.Fprintln(w, "the SHIPBOT_* environment variables that configure the service. See README.md.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode is the exit status of command name that returned err, which
// it prints.
func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return 0
	}
	// One line, so a failing start is read at a glance in any log.
	fmt.Fprintf(stderr, "bot %s: %v\n", name, err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "\n%s", ue.usage)
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "bot help plan" is "bot plan --help".
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return exitCode(c.name, c.run(ctx, args[1:], stdout, stderr), stderr)
	}
	fmt.Fprintf(stderr, "bot: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
