package placement

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestPlaceCPUTime prints the CPU time (not wall time) per placement, which
// stays meaningful on a loaded machine. Run with PLACEMENT_CPUTIME=1.
func TestPlaceCPUTime(t *testing.T) {
	if os.Getenv("PLACEMENT_CPUTIME") == "" {
		t.Skip("set PLACEMENT_CPUTIME=1 to measure")
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, c := range []struct {
		name string
		w    func(int) int64
	}{{"equal", func(int) int64 { return 0 }}, {"1:2", func(i int) int64 { return int64(1+i%2) << 40 }}} {
		p := NewPlanner(mustMap(t, gridNodes(5, 200, c.w)))
		const ops = 50000
		start, wall := cpu(), time.Now()
		for i := range ops {
			if _, err := p.Place("bucket/some/object-"+strconv.Itoa(i), 10, 4); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("1000 nodes, %s weights: %v CPU/op, %v wall/op", c.name, (cpu()-start)/ops, time.Since(wall)/ops)
	}
}
