package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/pflag"
)

// registerProcs adds --procs, the processors the Go scheduler runs
// goroutines on (GOMAXPROCS). Left at 0 a process uses every core, which is
// right for one process per machine; `shale dev` packs many on one machine,
// where every process's idle processors spin looking for work on the same
// cores (docs/bench/profile-issue13.md).
func registerProcs(fl *pflag.FlagSet, p *int) {
	fl.IntVar(p, "procs", 0, "processors the Go scheduler uses (GOMAXPROCS; 0: every core, or $GOMAXPROCS)")
}

// applyProcs sets GOMAXPROCS to n when n > 0; a negative n is refused.
func applyProcs(n int) error {
	if n < 0 {
		return fmt.Errorf("--procs %d: give a number of processors, or 0 for every core", n)
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return nil
}
