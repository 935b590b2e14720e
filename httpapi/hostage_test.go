package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/storage"
)

// These tests run the S3 handler over a real object.Coordinator: a real
// meta.Store on an in-memory filesystem and six in-memory shard stores,
// served by net/http on loopback, so the memory budget, the client
// deadlines and the connection handling are the production ones.

// memNodes hands the coordinator its in-memory shard stores.
type memNodes map[cluster.NodeID]*storage.Mem

func (m memNodes) Store(n cluster.Node) (object.ShardStore, error) {
	s, ok := m[n.ID]
	if !ok {
		return nil, fmt.Errorf("no node %s", n.ID)
	}
	return s, nil
}

// realGateway is a testEnv over a real coordinator; active counts the
// requests inside the handler.
type realGateway struct {
	*testEnv
	co     *object.Coordinator
	active atomic.Int64
}

func newRealGateway(t *testing.T, ocfg object.Config, hcfg Config) *realGateway {
	t.Helper()
	md, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	nodes := memNodes{}
	for i := range 6 {
		id := cluster.NodeID(fmt.Sprintf("n%d", i))
		nodes[id] = storage.NewMem(storage.MemConfig{})
		if err := md.Heartbeat(t.Context(), meta.NodeReport{ID: id, Addr: string(id),
			Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r", Host: string(id)}, Capacity: 1 << 40, Free: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	co, err := object.New(ocfg, md, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.CreateBucket(t.Context(), "hostage", ""); err != nil {
		t.Fatal(err)
	}
	hcfg.Credentials = map[string]string{testAK: testSK}
	g := &realGateway{co: co}
	api := New(hcfg, object.NewService(co))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.active.Add(1)
		defer g.active.Add(-1)
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.testEnv = &testEnv{t: t, srv: srv, payloads: map[string]int{}}
	return g
}

// put stores data at key with an ordinary signed PUT and returns how long
// it took; so does get, which also checks the bytes.
func (g *realGateway) put(c *http.Client, key string, data []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Do(g.request("PUT", "/hostage/"+key, data, nil, testSK))
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("PUT %s: status %d: %s", key, resp.StatusCode, b)
	}
	return time.Since(start), nil
}

func (g *realGateway) get(c *http.Client, key string, want []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Do(g.request("GET", "/hostage/"+key, nil, nil, testSK))
	if err != nil {
		return 0, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		return 0, fmt.Errorf("GET %s: status %d, %d bytes, err %v", key, resp.StatusCode, len(got), err)
	}
	return time.Since(start), nil
}

// stalledReader sends a signed GET of key on its own connection, reads the
// status line and stops reading: the server's writes soon block.
func (g *realGateway) stalledReader(t *testing.T, key string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if err := g.request("GET", "/hostage/"+key, nil, nil, testSK).Write(conn); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("HTTP/1.1 200"))
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(conn, line); err != nil || string(line) != "HTTP/1.1 200" {
		t.Fatalf("stalled reader: %q, %v", line, err)
	}
	return conn
}

// trickler starts a PUT of key declaring size bytes on its own
// connection, sends head bytes at once and then one byte every interval
// until the server answers or cuts it; done receives what it saw.
func (g *realGateway) trickler(t *testing.T, key string, size, head int, interval time.Duration, done chan<- string) net.Conn {
	t.Helper()
	req := g.request("PUT", "/hostage/"+key, nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, testSK)
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), req.Host, size)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(conn, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprint(conn, "\r\n")
	if _, err := conn.Write(make([]byte, head)); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "cut: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for sent := head; sent < size; sent++ {
			select {
			case s := <-answered:
				done <- s
				return
			case <-t.C:
			}
			if _, err := conn.Write([]byte{'x'}); err != nil {
				done <- "cut: " + (<-answered)
				return
			}
		}
		done <- <-answered
	}()
	return conn
}

// p99 is the nearest-rank 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

// TestHostage: N clients that never read their GET responses and N that
// trickle their PUT bodies a byte at a time do not slow ordinary clients:
// while they are all connected, the p99 of ordinary 1 MiB PUTs and of 1
// MiB GETs stays within 3× of the same p99 measured idle, in the same test.
// The stalled clients would hold the whole memory budget if they kept
// their reservations (N × a GET's or PUT's decode/encode memory is twice
// the budget), so without the fix the ordinary requests wait for good.
//
// The idle value is measured on a second, identical gateway in the same
// process, each sample taken right beside its loaded twin (alternating
// which goes first), so whatever else the machine does weighs on both
// alike.
func TestHostage(t *testing.T) {
	const (
		n       = 8
		samples = 100 // nearest-rank p99 of 100 drops the single worst
		bs      = 64 << 10
	)
	ocfg := object.Config{K: 4, M: 2, BlockSize: bs, ClientYield: 20 * time.Millisecond, BudgetWait: 20 * time.Second}
	codec := 6 * 4 * int64(bs+24) // EncodeMemory of a large PUT; DecodeMemory of a large GET is the same
	ocfg.MemoryBudget = n * codec / 2
	// The stalled clients must still be connected when the measurement
	// ends: generous deadlines here; other tests show the cut-offs.
	hcfg := Config{WriteStall: time.Minute, MinBodyRate: 1 << 10, BodyRateGrace: 30 * time.Second}
	idle, loaded := newRealGateway(t, ocfg, hcfg), newRealGateway(t, ocfg, hcfg)
	client := &http.Client{Timeout: 30 * time.Second}
	big := pattern(16<<20, 1)
	if _, err := loaded.put(client, "big", big); err != nil {
		t.Fatal(err)
	}
	small := pattern(1<<20, 2)

	type lat struct{ puts, gets []time.Duration }
	measure := func(phase string, samples int) (idleLat, loadLat lat) {
		for i := range samples {
			key := fmt.Sprintf("%s-%d", phase, i)
			order := []*realGateway{idle, loaded}
			if i%2 == 1 {
				order = []*realGateway{loaded, idle}
			}
			for _, g := range order {
				l := &idleLat
				if g == loaded {
					l = &loadLat
				}
				d, err := g.put(client, key, small)
				if err != nil {
					t.Fatalf("%s: %v", phase, err)
				}
				l.puts = append(l.puts, d)
				d, err = g.get(client, key, small)
				if err != nil {
					t.Fatalf("%s: %v", phase, err)
				}
				l.gets = append(l.gets, d)
			}
		}
		return idleLat, loadLat
	}
	measure("warm-up", 10)

	var wg sync.WaitGroup
	done := make(chan string, n)
	for i := range n {
		wg.Add(2)
		go func() { defer wg.Done(); loaded.stalledReader(t, "big") }()
		go func() {
			defer wg.Done()
			loaded.trickler(t, fmt.Sprintf("trickle-%d", i), 16<<20, 256<<10, 100*time.Millisecond, done)
		}()
	}
	wg.Wait()
	// Let the stalled writes block and the trickles run dry.
	time.Sleep(300 * time.Millisecond)
	if a := loaded.active.Load(); a != 2*n {
		t.Fatalf("%d requests in the handler before measuring, want the %d stalled ones", a, 2*n)
	}
	st := loaded.co.Stats()
	t.Logf("stalled clients hold %d bytes of the %d-byte budget, %d waiting", st.MemoryReserved, ocfg.MemoryBudget, st.MemoryWaiting)
	il, ll := measure("measure", samples)
	if a := loaded.active.Load(); a != 2*n {
		t.Fatalf("%d requests in the handler after measuring: the stalled clients were not all there throughout", a)
	}
	select {
	case s := <-done:
		t.Fatalf("a trickling PUT ended during the measurement: %s", s)
	default:
	}
	idlePut, idleGet, loadPut, loadGet := p99(il.puts), p99(il.gets), p99(ll.puts), p99(ll.gets)
	t.Logf("1 MiB PUT p99: idle %v, with %d stalled readers and %d tricklers %v (%.1f×)", idlePut, n, n, loadPut, float64(loadPut)/float64(idlePut))
	t.Logf("1 MiB GET p99: idle %v, loaded %v (%.1f×)", idleGet, loadGet, float64(loadGet)/float64(idleGet))
	if loadPut > 3*idlePut || loadGet > 3*idleGet {
		t.Fatalf("stalled clients raised the p99 beyond 3×: PUT %v → %v, GET %v → %v", idlePut, loadPut, idleGet, loadGet)
	}
}

// waitUntil polls cond every few milliseconds for up to d.
func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestStalledReaderCutByWriteStall: a client that stops reading a GET's
// response is cut once a write has waited WriteStall, and the reservation
// its GET held is released. ClientYield is off here, so only the cut can
// release it.
func TestStalledReaderCutByWriteStall(t *testing.T) {
	const stall = 500 * time.Millisecond
	g := newRealGateway(t, object.Config{K: 4, M: 2, BlockSize: 64 << 10, ClientYield: -1}, Config{WriteStall: stall})
	client := &http.Client{Timeout: 30 * time.Second}
	big := pattern(16<<20, 3)
	if _, err := g.put(client, "big", big); err != nil {
		t.Fatal(err)
	}
	g.stalledReader(t, "big")
	if !waitUntil(10*time.Second, func() bool { return g.co.Stats().MemoryReserved > 0 }) {
		t.Fatal("the stalled GET never reserved memory")
	}
	start := time.Now()
	if !waitUntil(stall+10*time.Second, func() bool { return g.active.Load() == 0 }) {
		t.Fatalf("the stalled GET is still in the handler %v later (WriteStall %v)", time.Since(start), stall)
	}
	t.Logf("stalled GET ended %v after it held memory", time.Since(start).Round(time.Millisecond))
	if st := g.co.Stats(); st.MemoryReserved != 0 {
		t.Fatalf("%d bytes still reserved after the stalled GET was cut", st.MemoryReserved)
	}
	// The server closed the connection; what the client gets now is the
	// rest of the kernel's send buffer, short of the object.
}

// TestTricklingWriterCutByMinRate: a PUT whose body arrives a byte at a
// time — never stalling long enough for BodyStall — is cut once its
// average rate falls below MinBodyRate after BodyRateGrace, gets 400
// RequestTimeout or a closed connection, stores nothing and holds no
// memory afterwards.
func TestTricklingWriterCutByMinRate(t *testing.T) {
	g := newRealGateway(t, object.Config{K: 4, M: 2, BlockSize: 64 << 10},
		Config{BodyStall: time.Minute, MinBodyRate: 4 << 10, BodyRateGrace: 300 * time.Millisecond})
	done := make(chan string, 1)
	start := time.Now()
	g.trickler(t, "trickle", 1<<20, 4<<10, 20*time.Millisecond, done)
	select {
	case s := <-done:
		t.Logf("trickler after %v: %.120s", time.Since(start).Round(time.Millisecond), s)
		if !strings.HasPrefix(s, "cut") && !strings.Contains(s, "RequestTimeout") {
			t.Fatalf("trickling PUT answered %q", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a PUT trickling 50 bytes/s is still being read after 20s (MinBodyRate 4 KiB/s, grace 300ms)")
	}
	if !waitUntil(10*time.Second, func() bool { return g.active.Load() == 0 }) {
		t.Fatal("the trickling PUT is still in the handler")
	}
	if st := g.co.Stats(); st.MemoryReserved != 0 {
		t.Fatalf("%d bytes still reserved after the trickler was cut", st.MemoryReserved)
	}
	if _, err := g.co.HeadObject(t.Context(), "hostage", "trickle"); err == nil {
		t.Fatal("the trickled PUT was stored")
	}
}

// TestBudgetWaitIsSlowDown: with the memory budget held by a GET whose
// client does not read (ClientYield off, WriteStall long), an ordinary GET
// waits BudgetWait for memory and then gets 503 SlowDown with Retry-After,
// instead of waiting forever.
func TestBudgetWaitIsSlowDown(t *testing.T) {
	const wait = 200 * time.Millisecond
	bs := 64 << 10
	g := newRealGateway(t, object.Config{K: 4, M: 2, BlockSize: bs, ClientYield: -1, BudgetWait: wait, MemoryBudget: 6 * 4 * int64(bs+24)},
		Config{WriteStall: time.Minute})
	client := &http.Client{Timeout: 30 * time.Second}
	big := pattern(16<<20, 4)
	if _, err := g.put(client, "big", big); err != nil {
		t.Fatal(err)
	}
	g.stalledReader(t, "big")
	if !waitUntil(10*time.Second, func() bool { return g.co.Stats().MemoryReserved > 0 }) {
		t.Fatal("the stalled GET never reserved memory")
	}
	start := time.Now()
	resp, err := client.Do(g.request("GET", "/hostage/big", nil, nil, testSK))
	if err != nil {
		t.Fatalf("GET while the budget is held: %v", err)
	}
	took := time.Since(start)
	if e := readErr(t, resp); resp.StatusCode != http.StatusServiceUnavailable || e.Code != "SlowDown" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET while the budget is held: %d %s", resp.StatusCode, e.Code)
	}
	if took < wait {
		t.Fatalf("refused after %v, before BudgetWait %v", took, wait)
	}
	t.Logf("refused with SlowDown after %v", took.Round(time.Millisecond))
}
