package netnstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Cleanup waits after SIGTERM before SIGKILL, and
// then for the killed process to be reaped.
const stopGrace = 5 * time.Second

// Process is a command running inside a node's namespace.
type Process struct {
	Name string
	// Log is the file that receives its stdout and stderr.
	Log string

	cmd  *exec.Cmd
	done chan struct{} // closed once Wait returned
	err  error         // Wait's result; read after done
}

// Start runs argv inside the node's namespace (`ip netns exec`), in its own
// process group, with stdout and stderr appended to name.log under
// t.TempDir(). t's Cleanup stops it (Stop) and, if t failed, prints the
// log's tail. Should the test binary die, the process gets SIGKILL.
func (nd *Node) Start(t testing.TB, name string, argv ...string) *Process {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("netnstest: Start without a command")
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", nd.NS}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// `ip netns exec` execs the command in place, so the pid, the process
	// group and the parent-death signal are the command's own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("netnstest: start %s in %s: %v", name, nd.NS, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(stopGrace)
		if t.Failed() {
			t.Logf("%s in %s (%s), last lines of %s:\n%s", name, nd.NS, p.state(), logPath, p.Tail(40))
		}
	})
	return p
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil: exit status 0); valid after Done.
func (p *Process) Err() error { <-p.done; return p.err }

func (p *Process) state() string {
	select {
	case <-p.done:
		if p.err != nil {
			return "exited: " + p.err.Error()
		}
		return "exited"
	default:
		return "running"
	}
}

// Kill sends SIGKILL to the process group and waits (bounded) for the
// process to be reaped: a crash, not a shutdown.
func (p *Process) Kill() { p.Stop(0) }

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group and waits up to stopGrace for the process to be reaped. It is
// idempotent; grace 0 means SIGKILL at once.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
	}
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
