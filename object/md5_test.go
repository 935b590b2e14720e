package object

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/shale-store/shale/internal/md5lanes"
	"github.com/shale-store/shale/meta"
)

// TestPutsHashedInLanes: PUTs, a copy and a part upload whose ETags are
// hashed in SIMD lanes side by side (Config.MD5 from md5lanes, every body
// in a lane) get the ETags of their own bytes, a wrong Content-MD5 is
// still caught, and every hash is given back, by failed PUTs too.
func TestPutsHashedInLanes(t *testing.T) {
	lanes, err := md5lanes.New(md5lanes.Config{MinBodies: 1, MinSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lanes.Close()
	cfg := testConfig()
	cfg.MD5 = lanes
	h := newHarness(t, 6, cfg)
	src := pattern(99, 5*4*4096+123)
	srcMan, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "src", Body: bytes.NewReader(src), Size: int64(len(src))})
	if err != nil || srcMan.ETag != md5hex(src) {
		t.Fatalf("put src: %v, etag %s, want %s", err, srcMan.ETag, md5hex(src))
	}
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 12 {
		wg.Go(func() {
			data := pattern(uint64(i), 3*4*4096+i*977)
			size := int64(len(data))
			var body io.Reader = bytes.NewReader(data)
			if i%3 == 0 {
				size = -1 // unknown, in small reads
				body = iotest.HalfReader(body)
			}
			key := fmt.Sprintf("k%d", i)
			m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: body, Size: size})
			if err != nil || m.ETag != md5hex(data) {
				errs <- fmt.Errorf("put %s: %v, etag %s, want %s", key, err, m.ETag, md5hex(data))
			}
		})
	}
	wg.Go(func() { // a copy: its body is hashed as the encoder reads it, not staged
		m, err := h.c.CopyObject(h.ctx, srcMan, PutInput{Bucket: testBucket, Key: "copy"})
		if err != nil || m.ETag != md5hex(src) {
			errs <- fmt.Errorf("copy: %v, etag %s, want %s", err, m.ETag, md5hex(src))
		}
	})
	wg.Go(func() {
		data := pattern(7, 2*4*4096+5)
		p, err := h.c.UploadPart(h.ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil || p.Segment.ETag != md5hex(data) {
			errs <- fmt.Errorf("upload part: %v, etag %s, want %s", err, p.Segment.ETag, md5hex(data))
		}
	})
	wg.Go(func() { // a body shorter than declared fails; its hash comes back too
		_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "short", Body: bytes.NewReader(make([]byte, 10)), Size: 50000})
		if !errors.Is(err, ErrIncompleteBody) {
			errs <- fmt.Errorf("short body: %v, want ErrIncompleteBody", err)
		}
	})
	wg.Go(func() {
		data := pattern(8, 50000)
		wrong := md5.Sum(data[1:])
		_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "bad", Body: bytes.NewReader(data), Size: int64(len(data)), ExpectMD5: wrong[:]})
		if !errors.Is(err, ErrBadDigest) {
			errs <- fmt.Errorf("wrong Content-MD5: %v, want ErrBadDigest", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := lanes.Stats()
	if st.Active != 0 || st.LanesOut != 0 {
		t.Fatalf("hashes not given back: %+v", st)
	}
	if st.Lanes == 0 {
		t.Skip("no lane was used (no AVX2): only crypto/md5 was checked")
	}
}

// recordingMD5 is an MD5Source that records the length of every write.
type recordingMD5 struct {
	mu     sync.Mutex // guards writes, out
	writes []int
	out    int
}

type recordingHash struct {
	hash.Hash
	r *recordingMD5
}

func (h recordingHash) Write(b []byte) (int, error) {
	h.r.mu.Lock()
	h.r.writes = append(h.r.writes, len(b))
	h.r.mu.Unlock()
	return h.Hash.Write(b)
}

func (r *recordingMD5) New(int64) (hash.Hash, func()) {
	r.mu.Lock()
	r.out++
	r.mu.Unlock()
	var once sync.Once
	return recordingHash{Hash: md5.New(), r: r}, func() {
		once.Do(func() {
			r.mu.Lock()
			r.out--
			r.mu.Unlock()
		})
	}
}

// TestPutHashesWholeStripes: a PUT hashes its body a stripe at a time (the
// staged stripe, not the client's reads or the encoder's), so a hash in
// SIMD lanes gets large writes.
func TestPutHashesWholeStripes(t *testing.T) {
	rec := &recordingMD5{}
	cfg := testConfig()
	cfg.MD5 = rec
	h := newHarness(t, 6, cfg)
	stripe := cfg.K * cfg.BlockSize
	data := pattern(5, 3*stripe+777)
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "s", Body: iotest.OneByteReader(bytes.NewReader(data)), Size: int64(len(data))})
	if err != nil || m.ETag != md5hex(data) {
		t.Fatalf("put: %v, etag %s, want %s", err, m.ETag, md5hex(data))
	}
	want := []int{stripe, stripe, stripe, 777}
	if fmt.Sprint(rec.writes) != fmt.Sprint(want) || rec.out != 0 {
		t.Fatalf("hash writes %v, %d hashes out; want %v, none out", rec.writes, rec.out, want)
	}
}
