package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The crash test: a child process (this test binary, re-executed) writes and
// deletes shards in a loop and prints each acknowledged operation; the
// parent SIGKILLs it after some acks, reopens the store and checks that
// every acknowledged write reads back intact, nothing torn is visible and the
// index matches the files. Three rounds on the same directory.

const (
	crashDirEnv   = "SHALE_STORAGE_CRASH_DIR"
	crashStartEnv = "SHALE_STORAGE_CRASH_START"
	crashIDs      = 29
	// crashInlineMax keeps about half the shards inline and half in files,
	// so overwrites cross between the two kinds.
	crashInlineMax = 12 << 10
)

// crashOp is operation i of the child's deterministic sequence: a delete of
// id(i) when i%9 == 4, else a put of version i under id(i).
func crashOp(i int) (id string, del bool) {
	return fmt.Sprintf("k%02d", i%crashIDs), i%9 == 4
}

func crashContent(t testing.TB, i int) []byte {
	return shardStream(t, int64(i), 1+(i*7919)%(24<<10))
}

// TestCrashChild is the child's body; it does nothing unless started by
// TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("crash-test child; run by TestCrashRecovery")
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDisk(DiskConfig{Dir: dir, InlineMax: crashInlineMax})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := start; i < start+2000; i++ { // bounded in case the parent is gone
		id, del := crashOp(i)
		if del {
			err = d.Delete(ctx, id)
		} else {
			_, err = d.Put(ctx, id, bytes.NewReader(crashContent(t, i)))
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", i) // os.Stdout is unbuffered
	}
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	// state[id] = version stored under id, or -1 when absent.
	state := map[string]int{}
	for i := 0; i < crashIDs; i++ {
		state[fmt.Sprintf("k%02d", i)] = -1
	}
	next := 0
	for round := 0; round < 3; round++ {
		acks := 12 + 9*round
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		last := next - 1
		sc := bufio.NewScanner(out)
		ack := func() bool {
			line := sc.Text()
			v, ok := strings.CutPrefix(line, "ack ")
			if !ok {
				return false
			}
			i, err := strconv.Atoi(v)
			if err != nil || i != last+1 {
				t.Fatalf("child acked %q after %d", line, last)
			}
			last = i
			return true
		}
		for n := 0; n < acks && sc.Scan(); {
			if ack() {
				n++
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The child goes on between the acks read so far and the kill (by
		// many ops when this process is descheduled): every ack it printed
		// is still in the pipe, which ends when it dies. Only the op after
		// the last of them may have been in flight.
		for sc.Scan() {
			ack()
		}
		_ = cmd.Wait()
		if last < next+acks-1 {
			t.Fatalf("round %d: child stopped after op %d (wanted %d acks); stderr:\n%s", round, last, acks, stderr.String())
		}
		for i := next; i <= last; i++ {
			id, del := crashOp(i)
			if del {
				state[id] = -1
			} else {
				state[id] = i
			}
		}
		// Op last+1 was in flight: either outcome is allowed for its id.
		inflight, inflightDel := crashOp(last + 1)
		d, err := OpenDisk(DiskConfig{Dir: dir, InlineMax: crashInlineMax})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if !d.Recovery().Unclean {
			t.Fatalf("round %d: a SIGKILLed store opened as cleanly closed", round)
		}
		for id, v := range state {
			got, err := get(d, id, 0, -1)
			if id == inflight {
				switch {
				case inflightDel && errors.Is(err, ErrNotFound):
					state[id] = -1
					continue
				case !inflightDel && err == nil && bytes.Equal(got, crashContent(t, last+1)):
					state[id] = last + 1
					continue
				}
			}
			switch {
			case v < 0 && !errors.Is(err, ErrNotFound):
				t.Fatalf("round %d: %s was deleted (acked) but Get = %v, %d bytes", round, id, err, len(got))
			case v >= 0 && err != nil:
				t.Fatalf("round %d: acked %s (op %d) unreadable: %v", round, id, v, err)
			case v >= 0 && !bytes.Equal(got, crashContent(t, v)):
				t.Fatalf("round %d: acked %s (op %d) reads back different bytes", round, id, v)
			}
		}
		checkIndexMatchesFiles(t, d)
		t.Logf("round %d: killed after op %d; recovery %+v", round, last, d.Recovery())
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		next = last + 2
	}
}
