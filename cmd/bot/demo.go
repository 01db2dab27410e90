package main

import (
	"context"
	"io"

	"github.com/shipbot/shipbot/internal/demo"
)

const demoUsage = `usage: bot demo [--hold] [-v]

Plays merges against the real service wired to a built-in simulated GitHub
and a simulated Spinnaker, and prints each rollout as it happens: a merge
going qa -> prod, one labelled no-deploy-to-prod that a maintainer then sends
to prod with /shipbot deploy prod, an unapproved one refused, and two merges
in quick succession deployed in order. Needs no account, no network and no
set-up; exits 0 when done.`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo")
	hold := fs.Bool("hold", false, "keep the service, its dashboard and the simulated GitHub's pages up after the demo, until Ctrl-C")
	verbose := fs.Bool("v", false, "also print the service's logs")
	if err := parseFlags(fs, args, 0, demoUsage, stdout); err != nil {
		return err
	}
	opts := demo.Options{Hold: *hold}
	if *verbose {
		opts.Log = stderr
	}
	return demo.Run(ctx, stdout, opts)
}
