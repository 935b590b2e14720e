package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUndeclaredSizeCapped: a PUT or part whose body has no declared size
// (chunked transfer, UNSIGNED-PAYLOAD) is refused with EntityTooLarge once
// it passes the PUT limit, and nothing is stored; a body at the limit is
// stored. The limit is lowered to keep the test small.
func TestUndeclaredSizeCapped(t *testing.T) {
	const limit = 1000
	store := newFakeStore()
	api := New(Config{Credentials: map[string]string{testAK: testSK}}, store).(*handler)
	api.maxPut = limit
	e := &testEnv{t: t, store: store, payloads: map[string]int{}}
	e.srv = httptest.NewServer(api)
	t.Cleanup(e.srv.Close)

	// put sends body with chunked transfer encoding: no Content-Length.
	put := func(path string, body []byte) *http.Response {
		t.Helper()
		req := e.request("PUT", path, nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, testSK)
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body))) // hides the length
		req.ContentLength, req.GetBody = 0, nil
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	must(t, store.CreateBucket(t.Context(), "capped", testRegion))

	resp := put("/capped/big", pattern(limit+1, 1))
	if resp.StatusCode != http.StatusBadRequest || readErr(t, resp).Code != "EntityTooLarge" {
		t.Errorf("PUT of %d undeclared bytes: status %d, want 400 EntityTooLarge", limit+1, resp.StatusCode)
	}
	if _, objects, _, _ := store.stored(); objects != 0 {
		t.Errorf("%d objects stored after the refused PUT", objects)
	}

	up, err := store.CreateUpload(t.Context(), testUpload("capped", "mp"))
	must(t, err)
	resp = put("/capped/mp?partNumber=1&uploadId="+up.ID, pattern(3*limit, 2))
	if resp.StatusCode != http.StatusBadRequest || readErr(t, resp).Code != "EntityTooLarge" {
		t.Errorf("part of %d undeclared bytes: status %d, want 400 EntityTooLarge", 3*limit, resp.StatusCode)
	}
	if _, _, _, parts := store.stored(); parts != 0 {
		t.Errorf("%d parts stored after the refused part", parts)
	}

	resp = put("/capped/fits", pattern(limit, 3))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT of exactly %d undeclared bytes: status %d, want 200", limit, resp.StatusCode)
	}
	o, err := store.get("capped", "fits")
	must(t, err)
	if !bytes.Equal(o.data, pattern(limit, 3)) {
		t.Errorf("stored %d bytes, want the %d sent", len(o.data), limit)
	}
}
