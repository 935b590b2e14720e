package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
	storageremote "github.com/shale-store/shale/storage/remote"
	"github.com/shale-store/shale/storage/storetest"
)

// fakeMeta records what a node tells meta.
type fakeMeta struct {
	mu    sync.Mutex
	beats []meta.NodeReport
	bad   []meta.BadShard
	ch    chan struct{} // poked on every call
}

func (m *fakeMeta) Heartbeat(ctx context.Context, r meta.NodeReport) error {
	m.mu.Lock()
	m.beats = append(m.beats, r)
	m.mu.Unlock()
	m.poke()
	return nil
}

func (m *fakeMeta) ReportBad(ctx context.Context, b meta.BadShard) error {
	m.mu.Lock()
	m.bad = append(m.bad, b)
	m.mu.Unlock()
	m.poke()
	return nil
}

func (m *fakeMeta) check(cond func() bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cond()
}

func (m *fakeMeta) poke() {
	select {
	case m.ch <- struct{}{}:
	default:
	}
}

// waitFor polls cond each time meta hears from the node, failing the test
// after a generous deadline (a hang guard, not a timing assertion).
func (m *fakeMeta) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m.check(cond) {
			return
		}
		select {
		case <-m.ch:
		case <-deadline:
			t.Fatalf("node never %s", what)
		}
	}
}

func TestNodeServesHeartbeatsScrubsAndStops(t *testing.T) {
	data := t.TempDir()
	secret := bytes.Repeat([]byte{3}, 32)
	fm := &fakeMeta{ch: make(chan struct{}, 1)}
	f := nodeFlags{
		data: data, listen: "127.0.0.1:0", id: "n1", zone: "z1", rack: "r1", host: "h1",
		heartbeat: 10 * time.Millisecond, scrubInterval: 20 * time.Millisecond, capacity: 1 << 30,
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runNode(ctx, pw, io.Discard, f, secret, fm)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v (node: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	const prefix = "node n1 listening on "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("first line %q, want %q…", line, prefix)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, prefix))

	c := storageremote.NewClient("http://"+addr, "n1", secret, nil)
	sh := storetest.Stream(t, 1, 4)
	if _, err := c.Put(ctx, "obj.0", bytes.NewReader(sh)); err != nil {
		t.Fatalf("Put through the node: %v", err)
	}
	rc, err := c.Get(ctx, "obj.0", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, sh) {
		t.Fatalf("Get through the node: %d bytes, %v", len(got), err)
	}
	if _, err := storageremote.NewClient("http://"+addr, "n1", bytes.Repeat([]byte{4}, 32), nil).Stat(ctx, "obj.0"); err == nil {
		t.Fatal("the node answered a client with the wrong secret")
	}

	fm.waitFor(t, "heartbeated its usage", func() bool {
		for _, b := range fm.beats {
			if b.Used == int64(len(sh)) {
				if b.ID != "n1" || b.Addr != addr || b.Domain.Zone != "z1" || b.Domain.Rack != "r1" ||
					b.Domain.Host != "h1" || b.Capacity != 1<<30 || b.PID != os.Getpid() {
					t.Fatalf("heartbeat %+v", b)
				}
				return true
			}
		}
		return false
	})

	// Rot a byte of the shard file; the scrubber's next pass must report it.
	var path string
	_ = filepath.WalkDir(filepath.Join(data, "shards"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "obj.0" {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatal("shard file not found under DATA/shards")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fm.waitFor(t, "reported the rotten shard", func() bool {
		for _, r := range fm.bad {
			if r.ShardID == "obj.0" && r.Node == "n1" && r.Reason == "corrupt" {
				return true
			}
		}
		return false
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop after its context was cancelled")
	}
	// The store was closed: it opens again, and still holds the shard.
	d, err := storage.OpenDisk(storage.DiskConfig{Dir: data})
	if err != nil {
		t.Fatalf("reopen after stop: %v", err)
	}
	defer d.Close()
	if _, err := d.Stat(context.Background(), "obj.0"); err != nil {
		t.Fatalf("shard after restart: %v", err)
	}
}

func TestNodeRefusesBadFlags(t *testing.T) {
	secret := bytes.Repeat([]byte{3}, 32)
	for _, f := range []nodeFlags{
		{data: t.TempDir(), listen: "127.0.0.1:0", id: ""},
		{data: t.TempDir(), listen: "127.0.0.1:0", id: "bad/id"},
		{data: "", listen: "127.0.0.1:0", id: "n1"},
		{data: t.TempDir(), listen: "127.0.0.1:0", id: "n1", capacity: -1},
	} {
		if err := runNode(t.Context(), io.Discard, io.Discard, f, secret, &fakeMeta{ch: make(chan struct{}, 1)}); err == nil {
			t.Errorf("runNode(%+v) succeeded", f)
		}
	}
}

func TestLoadSecretFlag(t *testing.T) {
	if _, err := loadSecretFlag(""); err == nil {
		t.Fatal("empty path accepted")
	}
	p := filepath.Join(t.TempDir(), "secret")
	s1, err := loadSecretFlag(p)
	if err != nil || len(s1) < 32 {
		t.Fatalf("create: %v", err)
	}
	s2, err := loadSecretFlag(p)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("load: %v", err)
	}
	if err := os.WriteFile(p, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSecretFlag(p); err == nil {
		t.Fatal("short secret accepted")
	}
}

// usageStore is a storage.Store whose Usage the test sets.
type usageStore struct {
	storage.Store
	u storage.Usage
}

func (s *usageStore) Usage(context.Context) (storage.Usage, error) { return s.u, nil }

// A node without --capacity reports its device's size, rounded to GiB,
// which stays put while the device fills (other writers included): a
// capacity that followed Used+Free would change the placement weights, and
// make the rebalancer move shards, with every GiB written anywhere.
func TestHeartbeatCapacityIsTheDeviceSize(t *testing.T) {
	fm := &fakeMeta{ch: make(chan struct{}, 16)}
	st := &usageStore{}
	for _, u := range []storage.Usage{
		{Used: 0, Free: 90 << 30, Capacity: 100<<30 + 5},
		{Used: 3 << 30, Free: 80 << 30, Capacity: 100<<30 + 5}, // others wrote 7 GiB meanwhile
	} {
		st.u = u
		if err := heartbeatOnce(context.Background(), st, fm, meta.NodeReport{ID: "n1"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	st.u = storage.Usage{Used: 1 << 30, Free: 2<<30 + 7} // a store that does not know its device
	if err := heartbeatOnce(context.Background(), st, fm, meta.NodeReport{ID: "n1"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := heartbeatOnce(context.Background(), st, fm, meta.NodeReport{ID: "n1"}, 5<<30); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, b := range fm.beats {
		got = append(got, b.Capacity>>30)
	}
	if fmt.Sprint(got) != "[100 100 3 5]" {
		t.Fatalf("capacities reported (GiB): %v, want [100 100 3 5]", got)
	}
}
