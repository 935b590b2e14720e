package s3auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	sha256 "github.com/minio/sha256-simd"
)

// Limits of the aws-chunked framing. A chunk header or trailer line longer
// than maxLine, or more than maxTrailers trailer lines, is ErrMalformedChunk.
const (
	maxLine     = 4096
	maxTrailers = 16
	// maxChunkHexDigits bounds the chunk size field: 15 hex digits is
	// 2^60 bytes, far above any S3 object.
	maxChunkHexDigits = 15
)

// String-to-sign algorithm lines of chunk and trailer signatures.
const (
	algorithmPayload = "AWS4-HMAC-SHA256-PAYLOAD"
	algorithmTrailer = "AWS4-HMAC-SHA256-TRAILER"
)

// chunkState is where a chunkReader is in the framing.
type chunkState int

const (
	stateHeader   chunkState = iota // before a chunk header line
	stateData                       // inside chunk data
	stateDataCRLF                   // after chunk data, before its CRLF
	stateTrailers                   // after the final (0) chunk
	stateEnd                        // after the last CRLF: only EOF may follow
	stateDone                       // EOF returned
)

// chunkReader decodes an aws-chunked body:
//
//	hex(size)[;chunk-signature=sig]\r\n data \r\n … 0[;chunk-signature=sig]\r\n
//
// followed, without trailers, by "\r\n", or with trailers by
// "name:value\r\n"… [x-amz-trailer-signature:sig\r\n] "\r\n" (see
// readTrailers for the line-end leniency). With signing
// key set, every chunk signature (chained from the seed signature) and the
// trailer signature are verified; a chunk's signature is checked when its
// data has been read, so its bytes reach the caller before the check but
// the failure always precedes io.EOF. Memory is bounded by its bufio
// buffer whatever the chunk size.
type chunkReader struct {
	br *bufio.Reader

	// Signing state; key == nil for STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	key     []byte
	amzDate string
	scope   string
	prevSig string

	withTrailer bool            // a trailer section follows the 0 chunk
	declared    map[string]bool // lower-case names from x-amz-trailer
	trailers    [][2]string     // received trailers, lower-case name and value, in order
	limit       int64           // decoded bytes allowed; -1 unknown
	decoded     int64

	state     chunkState
	remaining int64     // bytes of data left in the current chunk
	chunkSig  string    // signature announced by the current chunk
	chunkHash hash.Hash // SHA-256 of the current chunk's data (signed only)
	err       error
}

// newChunkReader returns a decoder of src. sig is nil for the unsigned
// form; declared lists the trailer names announced in x-amz-trailer.
func newChunkReader(src io.Reader, sig *signed, withTrailer bool, declared []string, limit int64) *chunkReader {
	c := &chunkReader{
		br:          bufio.NewReaderSize(src, maxLine),
		withTrailer: withTrailer,
		declared:    make(map[string]bool, len(declared)),
		limit:       limit,
	}
	for _, d := range declared {
		c.declared[d] = true
	}
	if sig != nil {
		c.key, c.amzDate, c.scope, c.prevSig = sig.key, sig.amzDate, sig.scope, sig.seed
		c.chunkHash = sha256.New()
	}
	return c
}

// Trailers returns the received trailers (lower-case names); complete
// after Read returned io.EOF.
func (c *chunkReader) Trailers() [][2]string { return c.trailers }

// Read implements io.Reader over the decoded bytes.
func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		switch c.state {
		case stateHeader:
			c.err = c.readHeader()
		case stateData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.remaining {
				p = p[:c.remaining]
			}
			n, err := c.br.Read(p)
			c.remaining -= int64(n)
			c.decoded += int64(n)
			if c.chunkHash != nil {
				c.chunkHash.Write(p[:n])
			}
			if c.remaining == 0 {
				c.state = stateDataCRLF
			}
			if err != nil {
				c.err = c.readErr("chunk data", err)
			}
			if n > 0 {
				return n, nil
			}
		case stateDataCRLF:
			c.err = c.readDataCRLF()
		case stateTrailers:
			c.err = c.readTrailers()
		case stateEnd:
			c.err = c.readEnd()
		case stateDone:
			return 0, io.EOF
		}
	}
}

// readErr converts an error of the underlying reader: an early end of the
// body is ErrIncompleteBody; anything else passes through.
func (c *chunkReader) readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("aws-chunked body ends in %s after %d decoded bytes: %w", what, c.decoded, ErrIncompleteBody)
	}
	return fmt.Errorf("read aws-chunked %s: %w", what, err)
}

// readLine returns the next line without its CRLF.
func (c *chunkReader) readLine(what string) (string, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("aws-chunked %s longer than %d bytes: %w", what, maxLine, ErrMalformedChunk)
		}
		return "", c.readErr(what, err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("aws-chunked %s %.60q: not CRLF-terminated: %w", what, line, ErrMalformedChunk)
	}
	return string(line[:len(line)-2]), nil
}

// readHeader parses "hex(size)[;chunk-signature=sig]".
func (c *chunkReader) readHeader() error {
	line, err := c.readLine("chunk header")
	if err != nil {
		return err
	}
	sizeStr, ext, hasExt := strings.Cut(line, ";")
	if sizeStr == "" || len(sizeStr) > maxChunkHexDigits {
		return fmt.Errorf("aws-chunked header %.60q: bad size: %w", line, ErrMalformedChunk)
	}
	for i := 0; i < len(sizeStr); i++ {
		if !isHex(sizeStr[i]) {
			return fmt.Errorf("aws-chunked header %.60q: bad size: %w", line, ErrMalformedChunk)
		}
	}
	size, err := strconv.ParseInt(sizeStr, 16, 64)
	if err != nil {
		return fmt.Errorf("aws-chunked header %.60q: bad size: %w", line, ErrMalformedChunk)
	}
	if c.key != nil {
		v, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !hasExt || !ok {
			return fmt.Errorf("aws-chunked header %.60q: no chunk-signature: %w", line, ErrMalformedChunk)
		}
		if _, err := parseSignature(v); err != nil {
			return fmt.Errorf("aws-chunked header %.60q: bad chunk-signature: %w", line, ErrMalformedChunk)
		}
		c.chunkSig = v
		c.chunkHash.Reset()
	}
	// Extensions of unsigned chunks carry nothing we use; they are ignored.
	if c.limit >= 0 && size > c.limit-c.decoded {
		return fmt.Errorf("aws-chunked chunk of %d bytes after %d exceeds decoded length %d: %w",
			size, c.decoded, c.limit, ErrIncompleteBody)
	}
	if size == 0 {
		if err := c.checkChunkSig(); err != nil {
			return err
		}
		if c.withTrailer {
			c.state = stateTrailers
		} else {
			c.state = stateEnd
		}
		return nil
	}
	c.remaining = size
	c.state = stateData
	return nil
}

func isHex(b byte) bool { return isLowerHex(b) || b >= 'A' && b <= 'F' }

// readDataCRLF consumes the CRLF after chunk data and checks the chunk's
// signature.
func (c *chunkReader) readDataCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return c.readErr("chunk end", err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("aws-chunked data not followed by CRLF after %d decoded bytes: %w", c.decoded, ErrMalformedChunk)
	}
	if err := c.checkChunkSig(); err != nil {
		return err
	}
	c.state = stateHeader
	return nil
}

// checkChunkSig verifies the signature of the chunk just read (signed
// forms only) and advances the chain.
func (c *chunkReader) checkChunkSig() error {
	if c.key == nil {
		return nil
	}
	sum := hex.EncodeToString(c.chunkHash.Sum(nil))
	want := signString(c.key, algorithmPayload, c.amzDate, c.scope, c.prevSig+"\n"+emptySHA256+"\n"+sum)
	if !hmac.Equal([]byte(want), []byte(c.chunkSig)) {
		return fmt.Errorf("chunk signature after %d decoded bytes: %w", c.decoded, ErrSignatureMismatch)
	}
	c.prevSig = c.chunkSig
	return nil
}

// readTrailers reads the trailer section up to the end of the body and
// verifies the trailer signature of the signed form. It is lenient about
// line ends, as real clients differ: AWS SDKs send "name:value\r\n" then
// "\r\n"; minio-go sends "name:value\n\r\n" and, signed, then
// "x-amz-trailer-signature:sig\r\n\r\n". So lines may end in LF or CRLF,
// empty lines are skipped, and the section ends at the end of the body,
// whose last line must be empty.
func (c *chunkReader) readTrailers() error {
	var trailerSig string
	var canon bytes.Buffer
	lastEmpty := false
	for lines := 0; ; lines++ {
		if lines > 2*maxTrailers+4 {
			return fmt.Errorf("aws-chunked: more than %d trailer lines: %w", 2*maxTrailers+4, ErrMalformedChunk)
		}
		raw, err := c.br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(raw) == 0 {
			break
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return fmt.Errorf("aws-chunked trailer longer than %d bytes: %w", maxLine, ErrMalformedChunk)
			}
			return c.readErr("trailer", err)
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		lastEmpty = line == ""
		if lastEmpty {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("aws-chunked trailer %.60q: no ':': %w", line, ErrMalformedChunk)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			if trailerSig != "" {
				return fmt.Errorf("aws-chunked: two trailer signatures: %w", ErrMalformedChunk)
			}
			if _, err := parseSignature(value); err != nil {
				return fmt.Errorf("aws-chunked trailer signature %.70q: %w", value, ErrMalformedChunk)
			}
			trailerSig = value
			continue
		}
		if trailerSig != "" {
			return fmt.Errorf("aws-chunked trailer %.60q after the trailer signature: %w", name, ErrMalformedChunk)
		}
		if !c.declared[name] {
			return fmt.Errorf("aws-chunked trailer %.60q not declared in x-amz-trailer: %w", name, ErrMalformedChunk)
		}
		for _, t := range c.trailers {
			if t[0] == name {
				return fmt.Errorf("aws-chunked trailer %.60q repeated: %w", name, ErrMalformedChunk)
			}
		}
		c.trailers = append(c.trailers, [2]string{name, value})
		canon.WriteString(name + ":" + value + "\n")
	}
	if !lastEmpty {
		return fmt.Errorf("aws-chunked: body ends without the final empty line: %w", ErrIncompleteBody)
	}
	if len(c.trailers) != len(c.declared) {
		return fmt.Errorf("aws-chunked: %d of %d declared trailers received: %w", len(c.trailers), len(c.declared), ErrMalformedChunk)
	}
	if c.key != nil {
		if trailerSig == "" {
			return fmt.Errorf("aws-chunked: x-amz-trailer-signature missing: %w", ErrMalformedChunk)
		}
		want := signString(c.key, algorithmTrailer, c.amzDate, c.scope, c.prevSig+"\n"+hashHex(canon.Bytes()))
		if !hmac.Equal([]byte(want), []byte(trailerSig)) {
			return fmt.Errorf("aws-chunked trailer signature: %w", ErrSignatureMismatch)
		}
	}
	c.state = stateDone
	return nil
}

// readEnd consumes the CRLF that ends a body without trailers.
func (c *chunkReader) readEnd() error {
	line, err := c.readLine("final CRLF")
	if err != nil {
		return err
	}
	if line != "" {
		return fmt.Errorf("aws-chunked: %.60q after the final chunk: %w", line, ErrMalformedChunk)
	}
	c.state = stateDone
	return c.expectEOF()
}

// expectEOF checks that nothing follows the end of the framing.
func (c *chunkReader) expectEOF() error {
	var b [1]byte
	n, err := io.ReadFull(c.br, b[:])
	if n > 0 {
		return fmt.Errorf("aws-chunked: data after the end of the body: %w", ErrMalformedChunk)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read aws-chunked end: %w", err)
	}
	return nil
}
