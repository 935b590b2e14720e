package s3auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Test-only signing side of aws-chunked bodies, written independently of
// the verifier (standard crypto/sha256, its own string building).

func tHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, s)
	return m.Sum(nil)
}

func tSigningKey(secret, date, region string) []byte {
	k := tHMAC([]byte("AWS4"+secret), date)
	k = tHMAC(k, region)
	k = tHMAC(k, "s3")
	return tHMAC(k, "aws4_request")
}

type tChunkSigner struct {
	key         []byte
	amzDate     string
	scope       string
	prev        string
	unsigned    bool
	trailerName string // "" for no trailer
	trailerVal  string
}

func (s *tChunkSigner) chunkSig(data []byte) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", s.amzDate, s.scope, s.prev, sha256Hex(nil), sha256Hex(data)}, "\n")
	s.prev = hex.EncodeToString(tHMAC(s.key, sts))
	return s.prev
}

// body frames data in chunks of chunkSize.
func (s *tChunkSigner) body(data []byte, chunkSize int) []byte {
	var b bytes.Buffer
	frame := func(p []byte) {
		if s.unsigned {
			fmt.Fprintf(&b, "%x\r\n", len(p))
		} else {
			fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(p), s.chunkSig(p))
		}
		if len(p) > 0 || s.trailerName == "" {
			b.Write(p)
			b.WriteString("\r\n")
		}
	}
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		frame(data[:n])
		data = data[n:]
	}
	frame(nil)
	if s.trailerName != "" {
		line := s.trailerName + ":" + s.trailerVal
		b.WriteString(line + "\r\n")
		if !s.unsigned {
			sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", s.amzDate, s.scope, s.prev, sha256Hex([]byte(line + "\n"))}, "\n")
			b.WriteString("x-amz-trailer-signature:" + hex.EncodeToString(tHMAC(s.key, sts)) + "\r\n")
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func seedOf(t *testing.T, r *http.Request) string {
	t.Helper()
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "Signature=")
	if i < 0 {
		t.Fatalf("no signature in %q", auth)
	}
	return auth[i+len("Signature="):]
}

// The published AWS example "Transferring Payload in Multiple Chunks":
// 66560 bytes of 'a' in a 64 KiB and a 1 KiB chunk.
func TestChunkedAWSExample(t *testing.T) {
	at := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	data := bytes.Repeat([]byte{'a'}, 66560)
	r, err := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/examplebucket/chunkObject.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.ContentLength = 66824
	signHeader(t, r, streamingPayload, testAK, testSK, "us-east-1", at)
	seed := seedOf(t, r)
	if want := "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"; seed != want {
		t.Fatalf("seed signature %s, AWS publishes %s\n%v", seed, want, r.Header)
	}
	s := &tChunkSigner{key: tSigningKey(testSK, "20130524", "us-east-1"), amzDate: "20130524T000000Z",
		scope: "20130524/us-east-1/s3/aws4_request", prev: seed}
	body := s.body(data, 64*1024)
	if len(body) != 66824 {
		t.Fatalf("framed length %d, AWS example has 66824", len(body))
	}
	// The chunk signatures AWS publishes for this example.
	for _, sig := range []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	} {
		if !bytes.Contains(body, []byte("chunk-signature="+sig+"\r\n")) {
			t.Errorf("framed body lacks published chunk signature %s", sig)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	a := New(Config{Region: "us-east-1", Lookup: func(string) (string, bool) { return testSK, true }, Now: func() time.Time { return at }})
	q, err := a.Authenticate(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	got, err := drain(t, q.Body)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	if q.Size != 66560 || q.Streaming != streamingPayload {
		t.Fatalf("size %d streaming %q", q.Size, q.Streaming)
	}
}

// chunkedCase builds a signed request with an aws-chunked body.
type chunkedCase struct {
	payload     string // x-amz-content-sha256
	data        []byte
	chunkSize   int
	trailerAlg  string // "" or e.g. "CRC32C"
	trailerData []byte // data the trailer checksum is computed over; nil = data
	decodedLen  int64  // -1 = len(data)
	mutate      func(body []byte) []byte
}

func (c chunkedCase) request(t *testing.T) *http.Request {
	t.Helper()
	s := &tChunkSigner{key: tSigningKey(testSK, testTime.Format("20060102"), testRegion),
		amzDate: testTime.Format(iso8601Basic), scope: testTime.Format("20060102") + "/" + testRegion + "/s3/aws4_request",
		unsigned: c.payload == streamingUnsignedTrailer}
	r := newClientRequest(t, http.MethodPut, "/bucket/chunked%20key", "", nil)
	if c.trailerAlg != "" {
		s.trailerName = "x-amz-checksum-" + strings.ToLower(c.trailerAlg)
		h, _ := NewChecksum(c.trailerAlg)
		td := c.trailerData
		if td == nil {
			td = c.data
		}
		h.Write(td)
		s.trailerVal = base64.StdEncoding.EncodeToString(h.Sum(nil))
		r.Header.Set("X-Amz-Trailer", s.trailerName)
		r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", c.trailerAlg)
	}
	dl := c.decodedLen
	if dl < 0 {
		dl = int64(len(c.data))
	}
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(dl, 10))
	probe := *s
	probe.prev = strings.Repeat("0", 64)
	pb := probe.body(c.data, c.chunkSize)
	if c.mutate != nil {
		pb = c.mutate(pb) // length-changing mutations are signed as sent
	}
	r.ContentLength = int64(len(pb))
	signHeader(t, r, c.payload, testAK, testSK, testRegion, testTime)
	s.prev = seedOf(t, r)
	body := s.body(c.data, c.chunkSize)
	if c.mutate != nil {
		body = c.mutate(body)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

func testData(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestChunkedFormsDecode(t *testing.T) {
	a := newTestAuth(testTime)
	for _, payload := range []string{streamingPayload, streamingPayloadTrailer, streamingUnsignedTrailer} {
		for _, n := range []int{0, 1, 8191, 8192, 100000} {
			for _, alg := range []string{"", "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"} {
				if (alg == "") != (payload == streamingPayload) {
					continue
				}
				name := fmt.Sprintf("%s/%d/%s", payload, n, alg)
				data := testData(n)
				r := chunkedCase{payload: payload, data: data, chunkSize: 8192, trailerAlg: alg, decodedLen: -1}.request(t)
				q, err := a.Authenticate(toServer(t, r))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := drain(t, q.Body)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: decoded %d of %d bytes: %v", name, len(got), n, err)
				}
				if alg != "" {
					h, _ := NewChecksum(alg)
					h.Write(data)
					if want := base64.StdEncoding.EncodeToString(h.Sum(nil)); q.Checksums()[alg] != want {
						t.Fatalf("%s: Checksums %v, want %s", name, q.Checksums(), want)
					}
				}
			}
		}
	}
}

func TestChunkedRejects(t *testing.T) {
	a := newTestAuth(testTime)
	data := testData(20000)
	flipSig := func(i int) func([]byte) []byte { // flip a hex digit of the i-th chunk signature
		return func(b []byte) []byte {
			b = bytes.Clone(b)
			at := 0
			for range i + 1 {
				at += bytes.Index(b[at:], []byte("chunk-signature=")) + len("chunk-signature=")
			}
			b[at] = "01"[b2i(b[at] == '0')]
			return b
		}
	}
	cases := []struct {
		name string
		c    chunkedCase
		want error
	}{
		{"bad-first-chunk-sig", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: flipSig(0)}, ErrSignatureMismatch},
		{"bad-middle-chunk-sig", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: flipSig(1)}, ErrSignatureMismatch},
		{"bad-final-chunk-sig", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: flipSig(3)}, ErrSignatureMismatch},
		{"data-flipped", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: func(b []byte) []byte {
			b = bytes.Clone(b)
			b[200] ^= 0x40
			return b
		}}, ErrSignatureMismatch},
		{"truncated", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: func(b []byte) []byte { return b[:len(b)-500] }}, ErrIncompleteBody},
		{"truncated-unsigned", chunkedCase{payload: streamingUnsignedTrailer, trailerAlg: "CRC32", chunkSize: 8192, mutate: func(b []byte) []byte { return b[:9000] }}, ErrIncompleteBody},
		{"decoded-length-too-big", chunkedCase{payload: streamingPayload, chunkSize: 8192, decodedLen: 20001}, ErrIncompleteBody},
		{"decoded-length-too-small", chunkedCase{payload: streamingPayload, chunkSize: 8192, decodedLen: 19999}, ErrIncompleteBody},
		{"garbage-after-end", chunkedCase{payload: streamingPayload, chunkSize: 8192, mutate: func(b []byte) []byte { return append(bytes.Clone(b), 'x') }}, ErrMalformedChunk},
		{"missing-crlf", chunkedCase{payload: streamingUnsignedTrailer, trailerAlg: "CRC32", chunkSize: 8192, mutate: func(b []byte) []byte {
			return bytes.Replace(b, []byte("\r\n2000\r\n"), []byte("XX2000\r\n"), 1)
		}}, ErrMalformedChunk},
		{"bad-trailer-checksum-signed", chunkedCase{payload: streamingPayloadTrailer, trailerAlg: "CRC32C", trailerData: []byte("other"), chunkSize: 8192}, ErrChecksumMismatch},
		{"bad-trailer-checksum-unsigned", chunkedCase{payload: streamingUnsignedTrailer, trailerAlg: "CRC64NVME", trailerData: []byte("other"), chunkSize: 8192}, ErrChecksumMismatch},
		{"bad-trailer-signature", chunkedCase{payload: streamingPayloadTrailer, trailerAlg: "SHA256", chunkSize: 8192, mutate: func(b []byte) []byte {
			b = bytes.Clone(b)
			i := bytes.Index(b, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
			b[i] = "01"[b2i(b[i] == '0')]
			return b
		}}, ErrSignatureMismatch},
		{"trailer-value-tampered", chunkedCase{payload: streamingPayloadTrailer, trailerAlg: "CRC32", chunkSize: 8192, mutate: func(b []byte) []byte {
			h := crc32.NewIEEE()
			h.Write([]byte("evil"))
			i := bytes.Index(b, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
			return append(append(bytes.Clone(b[:i]), base64.StdEncoding.EncodeToString(h.Sum(nil))...), b[i+8:]...)
		}}, ErrSignatureMismatch},
		{"trailer-missing", chunkedCase{payload: streamingUnsignedTrailer, trailerAlg: "CRC32", chunkSize: 8192, mutate: func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-checksum-crc32:"))
			return append(bytes.Clone(b[:i]), "\r\n"...)
		}}, ErrMalformedChunk},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.data = data
			if c.c.decodedLen == 0 {
				c.c.decodedLen = -1
			}
			q, err := a.Authenticate(toServer(t, c.c.request(t)))
			if err != nil {
				wantErr(t, err, c.want)
				return
			}
			_, err = drain(t, q.Body)
			wantErr(t, err, c.want)
			if q.Checksums() != nil {
				t.Fatalf("Checksums after failure: %v", q.Checksums())
			}
		})
	}
}

// minio-go ends trailer lines with a bare LF followed by an empty CRLF
// line; both signed and unsigned forms must decode.
func TestChunkedMinioTrailerFormat(t *testing.T) {
	a := newTestAuth(testTime)
	data := testData(10000)
	for _, payload := range []string{streamingPayloadTrailer, streamingUnsignedTrailer} {
		r := chunkedCase{payload: payload, data: data, chunkSize: 4096, trailerAlg: "CRC32", decodedLen: -1, mutate: func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:") + 8
			return append(append(bytes.Clone(b[:i]), "\n\r\n"...), b[i+2:]...)
		}}.request(t)
		q, err := a.Authenticate(toServer(t, r))
		if err != nil {
			t.Fatal(err)
		}
		got, err := drain(t, q.Body)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v", payload, len(got), err)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A body cut off by the connection (Content-Length not reached) is
// ErrIncompleteBody too.
func TestChunkedConnectionCut(t *testing.T) {
	r := chunkedCase{payload: streamingPayload, data: testData(30000), chunkSize: 8192, decodedLen: -1}.request(t)
	wire := wireOf(t, r)
	q, err := newTestAuth(testTime).Authenticate(parseServer(t, wire[:len(wire)-3000]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = drain(t, q.Body)
	wantErr(t, err, ErrIncompleteBody)
}

func TestChunkedUnsupportedAndMalformedHeaders(t *testing.T) {
	a := newTestAuth(testTime)
	for _, c := range []struct {
		payload string
		hdr     map[string]string
		want    error
	}{
		{"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", nil, ErrUnsupported},
		{"not-a-hash", nil, ErrMalformedAuth},
		{streamingUnsignedTrailer, map[string]string{"X-Amz-Trailer": "x-amz-meta-foo"}, ErrInvalidChecksum},
		{streamingUnsignedTrailer, map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Checksum-Sha1": "Kq5sNclPz7QV2+lfQIuc6R7oRu0="}, ErrInvalidChecksum},
		{streamingUnsignedTrailer, map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Sdk-Checksum-Algorithm": "CRC32C"}, ErrInvalidChecksum},
		{streamingPayload, map[string]string{"X-Amz-Decoded-Content-Length": "-4"}, ErrMalformedAuth},
	} {
		r := newClientRequest(t, http.MethodPut, "/b/k", "", []byte("0\r\n\r\n"))
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		signHeader(t, r, c.payload, testAK, testSK, testRegion, testTime)
		_, err := a.Authenticate(toServer(t, r))
		if !errorsIs(err, c.want) {
			t.Errorf("%s %v: %v, want %v", c.payload, c.hdr, err, c.want)
		}
	}
	_ = context.Background
}
