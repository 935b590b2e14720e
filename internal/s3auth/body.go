package s3auth

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	sha256 "github.com/minio/sha256-simd"
)

// sumState is one x-amz-checksum-* algorithm computed over the body.
type sumState struct {
	alg    *checksumAlg
	h      hash.Hash
	want   []byte // client's value; nil if none (yet)
	source string // "header" or "trailer"; "" if only named by x-amz-sdk-checksum-algorithm
}

// verifier passes the decoded body through and checks, when it ends, the
// length and every digest the client declared. The first failure is
// returned instead of io.EOF and then by every later Read.
type verifier struct {
	src  io.Reader
	want int64 // declared decoded length; -1 unknown
	n    int64

	sha     hash.Hash // x-amz-content-sha256 digest, if signed single-chunk
	wantSHA []byte
	md5     hash.Hash
	wantMD5 []byte
	sums    []*sumState
	chunks  *chunkReader // source of trailers, if aws-chunked

	err    error
	result map[string]string // set on successful EOF
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.src.Read(p)
	if v.want >= 0 && v.n+int64(n) > v.want {
		n = int(v.want - v.n)
		err = fmt.Errorf("body longer than declared %d bytes: %w", v.want, ErrIncompleteBody)
	}
	v.n += int64(n)
	if n > 0 {
		b := p[:n]
		if v.sha != nil {
			v.sha.Write(b)
		}
		if v.md5 != nil {
			v.md5.Write(b)
		}
		for _, s := range v.sums {
			s.h.Write(b)
		}
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if ferr := v.final(); ferr != nil {
			v.err = ferr
			return n, ferr
		}
		v.err = io.EOF
		return n, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		v.err = fmt.Errorf("body ends after %d of %d bytes: %w", v.n, v.want, ErrIncompleteBody)
	default:
		v.err = err
	}
	return n, v.err
}

// final runs the end-of-body checks in a fixed order: length, content
// SHA-256, Content-MD5, x-amz-checksum-*.
func (v *verifier) final() error {
	if v.want >= 0 && v.n != v.want {
		return fmt.Errorf("body has %d bytes, declared %d: %w", v.n, v.want, ErrIncompleteBody)
	}
	if v.sha != nil {
		if got := v.sha.Sum(nil); !bytes.Equal(got, v.wantSHA) {
			return fmt.Errorf("body sha256 %x, x-amz-content-sha256 %x: %w", got, v.wantSHA, ErrContentSHA256Mismatch)
		}
	}
	if v.md5 != nil {
		if got := v.md5.Sum(nil); !bytes.Equal(got, v.wantMD5) {
			return fmt.Errorf("body md5 %s, Content-MD5 %s: %w",
				base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(v.wantMD5), ErrBadDigest)
		}
	}
	if v.chunks != nil {
		for _, t := range v.chunks.Trailers() {
			alg := algFromHeader(t[0])
			if alg == nil {
				continue // declared names were checked in Authenticate
			}
			want, err := decodeChecksum(alg, t[1])
			if err != nil {
				return fmt.Errorf("trailer: %w", err)
			}
			for _, s := range v.sums {
				if s.alg == alg {
					s.want, s.source = want, "trailer"
				}
			}
		}
	}
	res := make(map[string]string, len(v.sums))
	for _, s := range v.sums {
		got := s.h.Sum(nil)
		if s.want != nil && !bytes.Equal(got, s.want) {
			return &ChecksumError{
				Algorithm: s.alg.name,
				Source:    s.source,
				Want:      base64.StdEncoding.EncodeToString(s.want),
				Got:       base64.StdEncoding.EncodeToString(got),
			}
		}
		res[s.alg.name] = base64.StdEncoding.EncodeToString(got)
	}
	v.result = res
	return nil
}

// checksums returns a copy of the verified checksums, nil before EOF.
func (v *verifier) checksums() map[string]string {
	if v.result == nil {
		return nil
	}
	m := make(map[string]string, len(v.result))
	for k, x := range v.result {
		m[k] = x
	}
	return m
}

// bodyFor builds the decoding, verifying body of an authenticated request.
func (a *Authenticator) bodyFor(r *http.Request, sig *signed) (*Request, error) {
	q := &Request{AccessKey: sig.accessKey, Size: -1}
	src := io.Reader(r.Body)
	if r.Body == nil {
		src = http.NoBody
	}
	v := &verifier{want: -1}

	if cm := r.Header.Values("Content-Md5"); len(cm) > 0 {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cm[0]))
		if len(cm) > 1 || err != nil || len(b) != md5.Size {
			return nil, fmt.Errorf("Content-MD5 %.40q: %w", cm[0], ErrInvalidDigest)
		}
		q.MD5 = b
		v.md5, v.wantMD5 = md5.New(), b
	}

	var trailerNames []string
	streaming := strings.HasPrefix(sig.payloadHash, "STREAMING-")
	if streaming {
		q.Streaming = sig.payloadHash
		if sig.payloadHash != streamingPayload {
			for _, t := range r.Header.Values("X-Amz-Trailer") {
				for n := range strings.SplitSeq(t, ",") {
					if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
						trailerNames = append(trailerNames, n)
					}
				}
			}
		}
	}
	if err := v.setupChecksums(r, trailerNames); err != nil {
		return nil, err
	}

	if streaming {
		if dl := r.Header.Get("X-Amz-Decoded-Content-Length"); dl != "" {
			n, err := strconv.ParseInt(dl, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("x-amz-decoded-content-length %.40q: %w", dl, ErrMalformedAuth)
			}
			q.Size = n
		}
		var chunkSig *signed
		if sig.payloadHash != streamingUnsignedTrailer {
			chunkSig = sig
		}
		v.chunks = newChunkReader(src, chunkSig, sig.payloadHash != streamingPayload, trailerNames, q.Size)
		v.src = v.chunks
	} else {
		if r.ContentLength >= 0 {
			q.Size = r.ContentLength
		}
		if sig.payloadHash != unsignedPayload {
			want, err := hex.DecodeString(sig.payloadHash)
			if err != nil {
				return nil, fmt.Errorf("x-amz-content-sha256 %.70q: %w", sig.payloadHash, ErrMalformedAuth)
			}
			v.sha, v.wantSHA = sha256.New(), want
		}
		v.src = src
	}
	v.want = q.Size
	q.Body, q.body = v, v
	return q, nil
}

// setupChecksums collects x-amz-checksum-* headers, the trailer
// declarations and x-amz-sdk-checksum-algorithm. At most one checksum
// value may be sent (header or trailer), and the declared algorithm must
// agree with it.
func (v *verifier) setupChecksums(r *http.Request, trailerNames []string) error {
	given := 0
	add := func(alg *checksumAlg) *sumState {
		for _, s := range v.sums {
			if s.alg == alg {
				return s
			}
		}
		s := &sumState{alg: alg, h: alg.new()}
		v.sums = append(v.sums, s)
		return s
	}
	for name, vals := range r.Header {
		alg := algFromHeader(name)
		if alg == nil {
			continue
		}
		if len(vals) != 1 {
			return fmt.Errorf("%s given %d times: %w", name, len(vals), ErrInvalidChecksum)
		}
		want, err := decodeChecksum(alg, vals[0])
		if err != nil {
			return err
		}
		s := add(alg)
		s.want, s.source = want, "header"
		given++
	}
	for _, n := range trailerNames {
		alg := algFromHeader(n)
		if alg == nil {
			return fmt.Errorf("x-amz-trailer %q is not an x-amz-checksum-* name: %w", n, ErrInvalidChecksum)
		}
		add(alg)
		given++
	}
	if given > 1 {
		return fmt.Errorf("%d checksums given, S3 accepts one: %w", given, ErrInvalidChecksum)
	}
	if sdk := r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"); sdk != "" {
		alg := findAlg(strings.TrimSpace(sdk))
		if alg == nil {
			return fmt.Errorf("x-amz-sdk-checksum-algorithm %.40q: %w", sdk, ErrInvalidChecksum)
		}
		if len(v.sums) > 0 && v.sums[0].alg != alg {
			return fmt.Errorf("x-amz-sdk-checksum-algorithm %s but checksum %s given: %w", alg.name, v.sums[0].alg.name, ErrInvalidChecksum)
		}
		add(alg)
	}
	return nil
}
