package object

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/shale-store/shale/internal/md5lanes"
)

// TestConcurrentPutsWithMD5Lanes: PUTs and part uploads whose ETags are
// hashed in SIMD lanes side by side (Config.MD5 from md5lanes, every body
// in a lane) get the ETag of their own bytes, and every lane is given
// back, including by a PUT that fails.
func TestConcurrentPutsWithMD5Lanes(t *testing.T) {
	lanes := md5lanes.New(1)
	defer lanes.Close()
	h := newHarness(t, 6, Config{K: 4, M: 2, BlockSize: 4096, MD5: lanes.New})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := pattern(uint64(i), 3*4*4096+i*977)
			key := fmt.Sprintf("k%d", i)
			m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
			if err != nil || m.ETag != md5hex(data) {
				errs <- fmt.Errorf("put %s: %v, etag %s, want %s", key, err, m.ETag, md5hex(data))
			}
		}()
	}
	// A body shorter than declared fails; its lane comes back too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "short", Body: bytes.NewReader(make([]byte, 10)), Size: 5000})
		if err == nil {
			errs <- fmt.Errorf("a short body was accepted")
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := lanes.Active(); n != 0 {
		t.Fatalf("%d hashes not given back", n)
	}
}
