package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/shipbot/shipbot/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hold := fs.Bool("hold", false, "keep the service and its dashboard up after the demo, until Ctrl-C")
	verbose := fs.Bool("v", false, "also print the service's logs")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitError{2, fmt.Errorf("usage: bot demo [--hold] [-v]")}
	}
	opts := demo.Options{Hold: *hold}
	if *verbose {
		opts.Log = stderr
	}
	return demo.Run(ctx, stdout, opts)
}
