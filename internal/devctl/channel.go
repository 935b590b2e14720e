package devctl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/privfs"
)

// DirName is the control directory inside a dev cluster's data dir.
const DirName = "control"

// ErrNoDev: no `shale dev` serves the data dir — none recorded its pid, the
// recorded one is not running or runs something else, or it died while a
// request waited.
var ErrNoDev = errors.New("no shale dev is serving")

// ErrFailed: the dev took the request and could not do it (a node that did
// not start, a cluster file it could not write, meta it could not reach).
var ErrFailed = errors.New("shale dev could not do it")

// Request is one request to the dev; exactly one field is set.
type Request struct {
	AddNode *AddNode `json:"add_node,omitempty"`
}

// Reply answers a Request: the node started, or an error.
type Reply struct {
	Node  *devcluster.Node `json:"node,omitempty"`
	Code  string           `json:"code,omitempty"` // "invalid", "taken" or "failed"
	Error string           `json:"error,omitempty"`
}

// Handler does a request the server took. Its error should wrap ErrInvalid
// or ErrTaken when the request is at fault; any other error is a failure.
type Handler func(ctx context.Context, r Request) (devcluster.Node, error)

const (
	requestSuffix = ".request.json"
	replySuffix   = ".reply.json"
)

// names of request files: a client's random 16 hex digits.
var requestName = regexp.MustCompile(`^[0-9a-f]{16}\.request\.json$`)

// leftover matches what Open clears: requests, replies and their
// temporary files (privfs writes "."+name+".tmp…" and renames), nothing
// else.
var leftover = regexp.MustCompile(`^\.?[0-9A-Za-z_-]+\.(request|reply)\.json(\.tmp.*)?$`)

// Dir is the control directory of the dev cluster in data.
func Dir(data string) string { return filepath.Join(data, DirName) }

// Open makes data's control directory (0700) and empties it of what an
// earlier dev left: requests no dev took and replies nobody read. No
// client waits on them — a client gives up once the dev it addressed is
// gone. Call it before the cluster file names the new dev.
func Open(data string) error {
	dir := Dir(data)
	if err := os.Mkdir(dir, privfs.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// A real directory of ours, not a symlink to one (whose files this
	// would chmod and delete) nor another user's.
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || (ok && int(st.Uid) != os.Geteuid()) {
		return fmt.Errorf("%s is not a directory of this user (a symlink, or another's): refusing to use it as the control channel", dir)
	}
	if err := os.Chmod(dir, privfs.DirMode); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if leftover.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Serve answers the requests in data's control directory, polling it every
// interval, until ctx is done; then it returns nil. It takes the requests
// one at a time, oldest first: removes the file, calls h, publishes the
// reply. A request that does not parse is answered as invalid. It returns
// an error when the directory cannot be read or a reply cannot be written.
func Serve(ctx context.Context, data string, every time.Duration, h Handler) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := serveOnce(ctx, data, h); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// maxRequest bounds a request file: a node add's few fields fit many times.
const maxRequest = 64 << 10

func serveOnce(ctx context.Context, data string, h Handler) error {
	dir := Dir(data)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("control channel: %w", err)
	}
	type pending struct {
		name string
		at   time.Time
	}
	var reqs []pending
	for _, e := range ents {
		if !requestName.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // taken back by its client
		}
		reqs = append(reqs, pending{e.Name(), fi.ModTime()})
	}
	sort.Slice(reqs, func(i, j int) bool {
		if !reqs[i].at.Equal(reqs[j].at) {
			return reqs[i].at.Before(reqs[j].at)
		}
		return reqs[i].name < reqs[j].name
	})
	for _, p := range reqs {
		if ctx.Err() != nil {
			return nil
		}
		path := filepath.Join(dir, p.name)
		var b []byte
		fi, err := os.Lstat(path)
		switch {
		case err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxRequest):
			err = fmt.Errorf("not a regular file of at most %d bytes", maxRequest)
		case err == nil:
			b, err = privfs.ReadFile(path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // taken back by its client
		}
		var rep Reply
		if err == nil {
			err = os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // taken back between the read and the removal
			}
		}
		if err == nil {
			rep = handle(ctx, b, h)
		} else {
			rep = Reply{Code: "invalid", Error: fmt.Sprintf("%v: read %s: %v", ErrInvalid, p.name, err)}
			_ = os.Remove(path)
		}
		out, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		replyPath := filepath.Join(dir, strings.TrimSuffix(p.name, requestSuffix)+replySuffix)
		if err := privfs.WriteFile(replyPath, append(out, '\n')); err != nil {
			return fmt.Errorf("control channel: reply: %w", err)
		}
	}
	return nil
}

// handle decodes one request and runs h on it.
func handle(ctx context.Context, b []byte, h Handler) Reply {
	var r Request
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Reply{Code: "invalid", Error: fmt.Sprintf("%v: %v", ErrInvalid, err)}
	}
	if r.AddNode == nil {
		return Reply{Code: "invalid", Error: fmt.Sprintf("%v: no request this dev knows", ErrInvalid)}
	}
	n, err := h(ctx, r)
	switch {
	case err == nil:
		return Reply{Node: &n}
	case errors.Is(err, ErrInvalid):
		return Reply{Code: "invalid", Error: err.Error()}
	case errors.Is(err, ErrTaken):
		return Reply{Code: "taken", Error: err.Error()}
	default:
		return Reply{Code: "failed", Error: err.Error()}
	}
}

// replyError is a Reply's error on the client's side: the dev's message,
// wrapping the sentinel its code names.
type replyError struct {
	sentinel error
	msg      string
}

func (e *replyError) Error() string { return e.msg }
func (e *replyError) Unwrap() error { return e.sentinel }

func (r Reply) err() error {
	switch r.Code {
	case "":
		if r.Node == nil {
			return &replyError{ErrFailed, "shale dev answered with neither a node nor an error"}
		}
		return nil
	case "invalid":
		return &replyError{ErrInvalid, r.Error}
	case "taken":
		return &replyError{ErrTaken, r.Error}
	default:
		return &replyError{ErrFailed, r.Error}
	}
}

// Submit publishes r in data's control directory and waits for the reply,
// checking every interval that the dev is alive (alive: nil while it is;
// DevAlive for a real cluster). It returns the node the dev started, or an
// error: the dev's (wrapping ErrInvalid, ErrTaken or ErrFailed), alive's
// (ErrNoDev), or — at ctx's end — one wrapping ctx.Err() that says whether
// the dev had taken the request. A request no dev took is withdrawn.
func Submit(ctx context.Context, data string, r Request, every time.Duration, alive func() error) (devcluster.Node, error) {
	if err := alive(); err != nil {
		return devcluster.Node{}, err
	}
	dir := Dir(data)
	if _, err := os.Stat(dir); err != nil {
		return devcluster.Node{}, fmt.Errorf("%w %s: %v (a shale dev from before the control channel?)", ErrNoDev, data, err)
	}
	var tag [8]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return devcluster.Node{}, err
	}
	name := hex.EncodeToString(tag[:])
	reqPath, replyPath := filepath.Join(dir, name+requestSuffix), filepath.Join(dir, name+replySuffix)
	b, err := json.Marshal(r)
	if err != nil {
		return devcluster.Node{}, err
	}
	if err := privfs.WriteFile(reqPath, append(b, '\n')); err != nil {
		return devcluster.Node{}, fmt.Errorf("send request: %w", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b, err := privfs.ReadFile(replyPath)
		switch {
		case err == nil:
			_ = os.Remove(replyPath)
			var rep Reply
			if err := json.Unmarshal(b, &rep); err != nil {
				return devcluster.Node{}, fmt.Errorf("%w: reply: %v", ErrFailed, err)
			}
			if err := rep.err(); err != nil {
				return devcluster.Node{}, err
			}
			return *rep.Node, nil
		case !errors.Is(err, fs.ErrNotExist):
			_ = os.Remove(reqPath)
			return devcluster.Node{}, fmt.Errorf("read reply: %w", err)
		}
		if err := alive(); err != nil {
			_ = os.Remove(reqPath)
			return devcluster.Node{}, err
		}
		select {
		case <-ctx.Done():
			if err := os.Remove(reqPath); err == nil {
				return devcluster.Node{}, fmt.Errorf("shale dev did not take the request: %w", ctx.Err())
			}
			return devcluster.Node{}, fmt.Errorf("shale dev took the request but did not answer in time (it may still do it; see shale admin status): %w", ctx.Err())
		case <-t.C:
		}
	}
}

// DevAlive returns nil when the dev the cluster file f of data names
// (f.DevPID) is running `shale dev`, and an error wrapping ErrNoDev that
// says why not otherwise. It reads /proc, so it is Linux's, like dev.
func DevAlive(data string, f devcluster.File) error {
	if f.DevPID <= 0 {
		return fmt.Errorf("%w %s (its cluster file names no shale dev; is one still starting?)", ErrNoDev, data)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(f.DevPID) + "/cmdline")
	if err != nil {
		return fmt.Errorf("%w %s (shale dev pid %d, which its cluster file names, is not running)", ErrNoDev, data, f.DevPID)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 2 || args[1] != "dev" {
		return fmt.Errorf("%w %s (pid %d, which its cluster file names, runs %q, not shale dev)", ErrNoDev, data, f.DevPID, strings.Join(args, " "))
	}
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(f.DevPID) + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(st), ')'); i >= 0 && i+2 < len(st) && st[i+2] == 'Z' {
			return fmt.Errorf("%w %s (shale dev pid %d has exited)", ErrNoDev, data, f.DevPID)
		}
	}
	return nil
}
