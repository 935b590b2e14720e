// Command shale runs every role of the shale object store: meta, node,
// gateway, a whole dev cluster, and the operator and benchmark tools.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands holds the constructors of every subcommand; each file of this
// package adds its own in an init function.
var commands []func() *cobra.Command

func main() {
	root := &cobra.Command{
		Use:           "shale",
		Short:         "shale — an erasure-coded, S3-compatible object store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "shale:", err)
		// A command whose failure has a status of its own (shale chaos:
		// data lost, repair unfinished) exits with it.
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(1)
	}
}
