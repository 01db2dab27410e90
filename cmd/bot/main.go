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
		{"check-config", "FILE", "validate a .github/shipbot.yml; errors name line and column", runCheckConfig},
		{"migrate", "", "apply database migrations to SHIPBOT_DB and exit", runMigrate},
		{"version", "", "print the version", func(_ context.Context, _ []string, out, _ io.Writer) error {
			fmt.Fprintln(out, "shipbot", version)
			return nil
		}},
	}
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
	fmt.Fprintln(w, "Configuration comes from SHIPBOT_* environment variables; see README.md.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		if err == nil {
			return 0
		}
		// One line, so a failing start is read at a glance in any log.
		fmt.Fprintf(stderr, "bot %s: %v\n", c.name, err)
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "bot: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
