package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shipbot/shipbot/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return exitError{2, fmt.Errorf("takes no arguments, got %q", args)}
	}
	return demo.Run(ctx, stdout, demo.Options{})
}
