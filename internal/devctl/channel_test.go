package devctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/devcluster"
)

const poll = 10 * time.Millisecond

func alive() error { return nil }

// serve runs Serve with h until the test ends.
func serve(t *testing.T, data string, h Handler) {
	t.Helper()
	if err := Open(data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, data, poll, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// controlFiles lists what is left in the control directory.
func controlFiles(t *testing.T, data string) []string {
	t.Helper()
	ents, err := os.ReadDir(Dir(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestSubmitServe: a request reaches the handler as sent; the client gets
// the handler's node, or its error with the sentinel the reply's code
// names; no file is left behind either way.
func TestSubmitServe(t *testing.T) {
	data := t.TempDir()
	var mu sync.Mutex
	var got []AddNode
	serve(t, data, func(_ context.Context, r Request) (devcluster.Node, error) {
		mu.Lock()
		got = append(got, *r.AddNode)
		mu.Unlock()
		switch r.AddNode.Zone {
		case "bad":
			return devcluster.Node{}, fmt.Errorf("plan: %w: zone", ErrInvalid)
		case "dup":
			return devcluster.Node{}, fmt.Errorf("plan: %w: node-1", ErrTaken)
		case "boom":
			return devcluster.Node{}, errors.New("node-9 exited before it was ready")
		}
		return devcluster.Node{ID: r.AddNode.ID, Zone: r.AddNode.Zone, Addr: "127.0.0.1:1234", PID: 42}, nil
	})
	if fi, err := os.Stat(Dir(data)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("control dir: %v, mode %v", err, fi.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Submit(ctx, data, Request{AddNode: &AddNode{ID: "node-7", Zone: "zone-1", Capacity: 5}}, poll, alive)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "node-7" || n.Addr != "127.0.0.1:1234" || n.PID != 42 {
		t.Errorf("node %+v", n)
	}
	if len(got) != 1 || got[0] != (AddNode{ID: "node-7", Zone: "zone-1", Capacity: 5}) {
		t.Errorf("handler saw %+v", got)
	}
	for zone, want := range map[string]error{"bad": ErrInvalid, "dup": ErrTaken, "boom": ErrFailed} {
		_, err := Submit(ctx, data, Request{AddNode: &AddNode{Zone: zone}}, poll, alive)
		if !errors.Is(err, want) {
			t.Errorf("zone %s: %v, want an error wrapping %v", zone, err, want)
		}
		if want == ErrFailed && (err == nil || !strings.Contains(err.Error(), "node-9 exited before it was ready")) {
			t.Errorf("the handler's message is lost: %v", err)
		}
	}
	if left := controlFiles(t, data); len(left) != 0 {
		t.Errorf("left in the control dir: %v", left)
	}
}

// TestServeOneAtATime: concurrent clients are served one at a
// time (the handler never runs twice at once) and each gets its own answer.
func TestServeOneAtATime(t *testing.T) {
	data := t.TempDir()
	var mu sync.Mutex
	running, most := 0, 0
	serve(t, data, func(_ context.Context, r Request) (devcluster.Node, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return devcluster.Node{ID: r.AddNode.ID}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("n%d", i)
			n, err := Submit(ctx, data, Request{AddNode: &AddNode{ID: id, Zone: "z"}}, poll, alive)
			if err == nil && n.ID != id {
				err = fmt.Errorf("asked for %s, got %s", id, n.ID)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d requests handled at once", most)
	}
}

// TestServeAnswersGarbage: a request file that does not parse, names no
// request, or that group or others may access (not the dev's owner's own)
// is answered as invalid and removed, without reaching the handler; Serve
// goes on.
func TestServeAnswersGarbage(t *testing.T) {
	data := t.TempDir()
	var handled atomic.Int32
	serve(t, data, func(context.Context, Request) (devcluster.Node, error) {
		handled.Add(1)
		return devcluster.Node{ID: "x"}, nil
	})
	for _, tc := range []struct {
		body string
		mode os.FileMode
	}{{"{", 0o600}, {`{}`, 0o600}, {`{"add_node":{"zone":"z"},"remove_node":{}}`, 0o600}, {`{"add_node":{"zone":"z"}}`, 0o644},
		{`{"add_node":{"zone":"z"}}` + strings.Repeat(" ", maxRequest), 0o600}, // well formed, but over the bound
	} {
		body := tc.body
		name := "0123456789abcdef"
		path := filepath.Join(Dir(data), name+requestSuffix)
		if err := os.WriteFile(path+".tmp", []byte(body), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path+".tmp", tc.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		reply := filepath.Join(Dir(data), name+replySuffix)
		deadline := time.Now().Add(10 * time.Second)
		var b []byte
		for {
			var err error
			if b, err = os.ReadFile(reply); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(poll)
		}
		if !strings.Contains(string(b), `"code":"invalid"`) {
			t.Errorf("request %q (mode %v): reply %q", clipped(body), tc.mode, b)
		}
		os.Remove(reply)
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("the handler saw %d of those requests", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Submit(ctx, data, Request{AddNode: &AddNode{Zone: "z"}}, poll, alive); err != nil {
		t.Errorf("after garbage: %v", err)
	}
}

// TestSubmitWithoutDev: against a data dir whose dev is gone — before the
// request, while it waits, or never answering — Submit fails within its
// bounds and withdraws its request.
func TestSubmitWithoutDev(t *testing.T) {
	data := t.TempDir()
	if err := Open(data); err != nil {
		t.Fatal(err)
	}
	dead := func() error { return fmt.Errorf("%w: test", ErrNoDev) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Submit(ctx, data, Request{AddNode: &AddNode{Zone: "z"}}, poll, dead); !errors.Is(err, ErrNoDev) {
		t.Errorf("dead dev: %v", err)
	}
	var calls atomic.Int32
	dies := func() error {
		if calls.Add(1) > 3 {
			return dead()
		}
		return nil
	}
	if _, err := Submit(ctx, data, Request{AddNode: &AddNode{Zone: "z"}}, poll, dies); !errors.Is(err, ErrNoDev) {
		t.Errorf("dev dying while the request waits: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err := Submit(short, data, Request{AddNode: &AddNode{Zone: "z"}}, poll, alive)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not take") {
		t.Errorf("dev never answering: %v", err)
	}
	if left := controlFiles(t, data); len(left) != 0 {
		t.Errorf("left in the control dir: %v", left)
	}
	// No control dir at all: not a dev with a control channel.
	if _, err := Submit(ctx, t.TempDir(), Request{AddNode: &AddNode{Zone: "z"}}, poll, alive); !errors.Is(err, ErrNoDev) {
		t.Errorf("no control dir: %v", err)
	}
}

// TestOpenClearsLeftovers: a new dev starts with an empty control dir,
// mode 0700 whatever it was.
func TestOpenClearsLeftovers(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0123456789abcdef" + requestSuffix, "0123456789abcdef" + replySuffix, ".x.request.json.tmp1"} {
		if err := os.WriteFile(filepath.Join(Dir(data), n), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Open(data); err != nil {
		t.Fatal(err)
	}
	if left := controlFiles(t, data); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if fi, _ := os.Stat(Dir(data)); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// TestDevAlive: only a running `shale dev` (argv[1] "dev") at the recorded
// pid counts.
func TestDevAlive(t *testing.T) {
	if err := DevAlive("/d", devcluster.File{}); !errors.Is(err, ErrNoDev) {
		t.Errorf("no pid: %v", err)
	}
	if err := DevAlive("/d", devcluster.File{DevPID: os.Getpid()}); !errors.Is(err, ErrNoDev) {
		t.Errorf("a pid running something else: %v", err)
	}
	// A process whose command line is "sh dev": the script dev waits.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dev"), []byte("sleep 30; :\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "dev")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its sleep dies with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Between fork and exec the child's command line is empty: wait
	// (bounded) until it runs the script.
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(b, []byte("dev")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := DevAlive("/d", devcluster.File{DevPID: pid}); err != nil {
		t.Errorf("running dev: %v", err)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if err := DevAlive("/d", devcluster.File{DevPID: pid}); !errors.Is(err, ErrNoDev) {
		t.Errorf("exited dev: %v", err)
	}
}

// Open refuses a control path that is a symlink (whose target it would
// chmod and empty), and clears only the channel's own files.
func TestOpenRefusesSymlinkAndKeepsOtherFiles(t *testing.T) {
	data, elsewhere := t.TempDir(), t.TempDir()
	keep := filepath.Join(elsewhere, ".bashrc")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, Dir(data)); err != nil {
		t.Fatal(err)
	}
	if err := Open(data); err == nil {
		t.Fatal("Open followed a symlinked control dir")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a file behind the symlink was touched: %v", err)
	}
	data2 := t.TempDir()
	if err := Open(data2); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(Dir(data2), ".notes")
	stale := filepath.Join(Dir(data2), "0123456789abcdef.reply.json")
	for _, p := range []string{other, stale} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Open(data2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("Open removed a file that is not the channel's: %v", err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Fatal("Open kept a stale reply")
	}
}

func clipped(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
