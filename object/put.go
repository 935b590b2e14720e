package object

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/placement"
)

// newMD5 returns the hash of one body's MD5 (Config.MD5, else crypto/md5)
// and the func that gives it back after its last use.
func (c *Coordinator) newMD5(size int64) (hash.Hash, func()) {
	if c.cfg.MD5 != nil {
		return c.cfg.MD5.New(size)
	}
	return md5.New(), func() {}
}

// bodyReader is the PUT body as the encoder sees it: it hashes the bytes
// (MD5, the ETag) as they pass, unless the stagedBody below it hashes them
// a stripe at a time, enforces the declared size and remembers the body's
// own error so it is reported as such, whatever the encoder wraps.
type bodyReader struct {
	r         io.Reader
	md5       hash.Hash // nil: the body is hashed below
	remaining int64     // bytes still expected; < 0: size unknown
	n         int64     // bytes read
	err       error     // first error other than io.EOF
}

// newBodyReader reads r (nil: an empty body) of size bytes (< 0: unknown),
// writing what it reads to h unless h is nil.
func newBodyReader(r io.Reader, size int64, h hash.Hash) *bodyReader {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	return &bodyReader{r: r, md5: h, remaining: size}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining == 0 {
		// The declared size is reached: the body must end here.
		var one [1]byte
		n, err := io.ReadFull(b.r, one[:])
		if n > 0 {
			b.err = fmt.Errorf("%w: more than %d bytes", ErrIncompleteBody, b.n)
			return 0, b.err
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			b.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if b.remaining > 0 && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	if b.md5 != nil {
		b.md5.Write(p[:n])
	}
	b.n += int64(n)
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	switch {
	case err == io.EOF && b.remaining > 0:
		b.err = fmt.Errorf("%w: body ended after %d bytes, %d missing", ErrIncompleteBody, b.n, b.remaining)
		return n, b.err
	case err == io.EOF && b.remaining == 0:
		// Reached exactly the declared size; the next Read confirms EOF.
		return n, nil
	case err != nil && err != io.EOF:
		b.err = err
	}
	return n, err
}

// stagedBody hands a client's PUT body to the encoder a stripe at a time:
// the first byte of a stripe is not returned before the whole stripe (or
// the rest of the body) has arrived, in a buffer that grows with what the
// client sent. Since the encoder takes a stripe buffer only once the
// stripe's first byte is there (erasure.Codec.EncodeSize), a PUT waiting
// on its client holds the bytes it has of the next stripe — at most one
// stripe of object data, 1 MiB at the defaults — and the stripes still on
// their way to the nodes (bounded by Config.WriteStall), not its encoder's
// buffers. The price is one more copy of every byte. It hashes each stripe
// whole once staged (md5), so a hash in SIMD lanes gets large writes: the
// bytes hashed are those it returns, up to the declared size (the
// bodyReader above it fails a body that goes on).
type stagedBody struct {
	r         io.Reader
	md5       hash.Hash
	stripe    int64      // object bytes per stripe
	remaining int64      // declared bytes not yet staged; < 0: size unknown
	bufs      *sizedBufs // where buf comes from and goes back to
	buf       []byte
	off       int   // next byte of buf to return
	err       error // the body's error, returned once buf is drained
}

// release gives the staging buffer back; the body is not read again.
func (s *stagedBody) release() {
	if s.buf != nil {
		s.bufs.put(s.buf)
		s.buf, s.off, s.err = nil, 0, errStagedReleased
	}
}

func (s *stagedBody) Read(p []byte) (int, error) {
	if s.off == len(s.buf) {
		if s.err != nil {
			return 0, s.err
		}
		if s.remaining == 0 {
			return s.r.Read(p) // past the declared size: the caller checks for the end
		}
		s.stage()
		if len(s.buf) == 0 || (s.err != nil && s.err != io.EOF) {
			// A failed body fails the PUT: report it at once, not after
			// the bytes staged before it (the encoder might first see the
			// request's context, which the failure cancels).
			return 0, s.err
		}
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// stage reads the next stripe into buf, stopping early only at an error.
func (s *stagedBody) stage() {
	want := s.stripe
	if s.remaining > 0 {
		want = min(want, s.remaining)
	}
	s.buf, s.off = s.buf[:0], 0
	for int64(len(s.buf)) < want && s.err == nil {
		if len(s.buf) == cap(s.buf) {
			nb := s.bufs.get(min(want, max(2*int64(cap(s.buf)), stageMin)))[:len(s.buf)]
			copy(nb, s.buf)
			if s.buf != nil {
				s.bufs.put(s.buf)
			}
			s.buf = nb
		}
		n, err := s.r.Read(s.buf[len(s.buf):min(int64(cap(s.buf)), want)])
		s.buf = s.buf[:len(s.buf)+n]
		s.err = err
	}
	if s.remaining > 0 {
		s.remaining -= int64(len(s.buf))
	}
	s.md5.Write(s.buf)
}

// segmentWrite is the outcome of coding one segment onto nodes.
type segmentWrite struct {
	seg meta.Segment
	md5 []byte
	fan *fanout
}

// putSegment codes body into one segment's shards (ids "<version>.<number>.<i>")
// on nodes chosen by placement, and returns once at least the write quorum of
// them is durable. On any error it has already queued every shard it may have
// written as garbage. On success, the caller commits and then calls
// settle with the commit's outcome.
func (c *Coordinator) putSegment(ctx context.Context, version string, number int, body io.Reader, size int64, expectMD5 []byte, mem memory) (*segmentWrite, error) {
	if size < -1 {
		return nil, fmt.Errorf("%w: declared size %d", ErrIncompleteBody, size)
	}
	k, m, quorum := c.cfg.scheme(size)
	bs := c.cfg.BlockSize
	cd, err := c.codec(k, m, bs)
	if err != nil {
		return nil, err
	}
	// Reserve the stripe buffers before anything else, so a PUT waiting
	// for memory holds no connections to nodes either.
	l, err := c.lease(ctx, cd.EncodeMemory(size), mem)
	if err != nil {
		return nil, fmt.Errorf("put segment %d of %s: %w", number, version, err)
	}
	defer l.end()
	g := c.guard(ctx, l, mem, int64(k)*int64(bs))
	defer g.stop()
	h, release := c.newMD5(size)
	defer release() // after the last Sum, on every path
	hashRead := h   // the bodyReader's hash, unless the stagedBody hashes
	if g != nil && body != nil {
		sb := &stagedBody{r: guardedReader{r: body, g: g}, md5: h, bufs: &c.bufs, stripe: int64(k) * int64(bs), remaining: size}
		defer sb.release()
		body = sb
		hashRead = nil
	}
	mp, err := c.clusterMap(ctx)
	if err != nil {
		return nil, err
	}
	objID := fmt.Sprintf("%s.%d", version, number)
	targets, err := placement.PlaceDegraded(mp, objID, k, m, quorum)
	if err != nil {
		if errors.Is(err, placement.ErrTooFewNodes) {
			return nil, fmt.Errorf("place %s: %w: %w", objID, ErrNoPlacement, err)
		}
		return nil, fmt.Errorf("place %s: %w", objID, err)
	}
	ids := make([]string, k+m)
	for i := range ids {
		ids[i] = shardID(version, number, i)
	}
	fan := c.startFanout(ctx, mp, targets, ids)
	br := newBodyReader(body, size, hashRead)

	fail := func(cause error) (*segmentWrite, error) {
		fan.cancel(cause)
		return nil, errJoin([]error{cause, c.queueGarbage(ctx, fan.attempted())})
	}

	res, err := cd.EncodeSize(ctx, br, size, fan.writers(), quorum)
	g.stop()
	l.end() // the stripe buffers are back in the codec's pool
	switch {
	case br.err != nil:
		return fail(fmt.Errorf("read body of %s: %w", objID, br.err))
	case err != nil && errors.Is(err, erasure.ErrTooFewShards):
		return fail(fmt.Errorf("encode %s: %w: %w", objID, ErrQuorum, errJoin(append([]error{err}, res.ShardErrs...))))
	case err != nil:
		return fail(fmt.Errorf("encode %s: %w", objID, err))
	case size >= 0 && res.Size != size:
		return fail(fmt.Errorf("encode %s: %w: %d bytes, declared %d", objID, ErrIncompleteBody, res.Size, size))
	}
	sum := h.Sum(nil)
	if len(expectMD5) > 0 && !bytes.Equal(sum, expectMD5) {
		return fail(fmt.Errorf("put %s: %w: body %x, expected %x", objID, ErrBadDigest, sum, expectMD5))
	}
	shardSize := cd.ShardSize(res.Size)
	fan.finish(res.ShardErrs)
	good := fan.wait(quorum, shardSize, res.Summaries)
	if good < quorum {
		cause := fmt.Errorf("put %s: %w: %d of %d shards durable, need %d: %w", objID, ErrQuorum, good, k+m, quorum, fan.errs())
		return nil, errJoin([]error{cause, c.queueGarbage(ctx, fan.attempted())})
	}
	seg := meta.Segment{
		Number: number, Size: res.Size, ETag: hex.EncodeToString(sum),
		K: k, M: m, BlockSize: bs,
		Shards: make([]meta.ShardRef, k+m),
	}
	for i := range seg.Shards {
		seg.Shards[i].Index = i
		if s := fan.sinks[i]; s != nil && s.ok() {
			seg.Shards[i] = meta.ShardRef{Index: i, Node: s.node, ID: s.id, Size: s.info.Size, Checksum: s.info.Checksum}
		}
	}
	return &segmentWrite{seg: seg, md5: sum, fan: fan}, nil
}

// settle finishes a segment write after its commit was attempted. committed
// reports whether the segment is now referenced by meta. If it is, only the
// shards that failed (but may have landed) become garbage; if not, every
// shard that may have been written does.
func (c *Coordinator) settle(ctx context.Context, sw *segmentWrite, committed bool) error {
	if committed {
		return c.queueGarbage(ctx, sw.fan.failedAttempted())
	}
	return c.queueGarbage(ctx, sw.fan.attempted())
}

// PutObject stores in.Body as a new version of in.Bucket/in.Key and commits
// its manifest. It streams: memory is bounded by the codec's stripes in
// flight, which it reserves from Config.MemoryBudget first, waiting
// (bounded by ctx and Config.BudgetWait, then ErrBusy) while the budget is
// spent, and gives back while its body is slow to come. It needs
// Config.WriteQuorum durable shards; with fewer placeable or writable nodes
// than k+m (but at least the quorum) it commits a degraded version that
// meta queues for repair. Errors: ErrNoPlacement, ErrQuorum,
// ErrBadDigest, ErrIncompleteBody, ErrBusy, the body's own read error, and
// meta.ErrNoSuchBucket (all wrapped); with in.If, meta.ErrPreconditionFailed
// or meta.ErrNoSuchKey (see Precondition), before the body is read when
// the key's state already refuses it. On error nothing is committed and
// any shard written is queued as garbage.
func (c *Coordinator) PutObject(ctx context.Context, in PutInput) (meta.Manifest, error) {
	return c.putObject(ctx, in, ownMemory)
}

func (c *Coordinator) putObject(ctx context.Context, in PutInput, mem memory) (meta.Manifest, error) {
	if err := c.checkBucket(ctx, in.Bucket); err != nil {
		return meta.Manifest{}, fmt.Errorf("put %s/%s: %w", in.Bucket, in.Key, err)
	}
	if err := c.precheck(ctx, in.Bucket, in.Key, in.If); err != nil {
		return meta.Manifest{}, fmt.Errorf("put %s/%s: %w", in.Bucket, in.Key, err)
	}
	version, err := c.newID()
	if err != nil {
		return meta.Manifest{}, err
	}
	sw, err := c.putSegment(ctx, version, 1, in.Body, in.Size, in.ExpectMD5, mem)
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("put %s/%s: %w", in.Bucket, in.Key, err)
	}
	man := meta.Manifest{
		Bucket: in.Bucket, Key: in.Key, VersionID: version,
		Size: sw.seg.Size, ETag: sw.seg.ETag,
		ContentType: in.ContentType, Headers: in.Headers, UserMeta: in.UserMeta, Checksums: in.Checksums,
		Created:  c.cfg.Now().UTC(),
		Segments: []meta.Segment{sw.seg},
	}
	return c.commit(ctx, man, []*segmentWrite{sw}, func(cctx context.Context) (meta.Manifest, error) {
		if in.If.IsZero() {
			return c.md.Commit(cctx, man)
		}
		return c.md.CommitIf(cctx, man, in.If.condition())
	})
}

// condition is p as meta checks it.
func (p Precondition) condition() meta.CommitCondition {
	return meta.CommitCondition{Absent: p.Absent, ETag: normETag(p.ETag)}
}

// precheck refuses a conditional write early, before its body is stored,
// when the key's current version already fails p. It is only a saving:
// the key may change before the commit, and meta's check at the commit
// decides. meta.ErrInvalidArgument for a condition with both parts.
func (c *Coordinator) precheck(ctx context.Context, bucket, key string, p Precondition) error {
	if p.IsZero() {
		return nil
	}
	if p.Absent && p.ETag != "" {
		return fmt.Errorf("%w: a write is conditional on the key's absence or on its ETag, not both", meta.ErrInvalidArgument)
	}
	cur, err := c.md.Get(ctx, bucket, key)
	switch {
	case errors.Is(err, meta.ErrNoSuchKey) && p.Absent:
		return nil
	case err != nil:
		return err
	case p.Absent:
		return fmt.Errorf("%w: the key exists (etag %s)", meta.ErrPreconditionFailed, cur.ETag)
	case normETag(cur.ETag) != normETag(p.ETag):
		return fmt.Errorf("%w: etag %s, not %s", meta.ErrPreconditionFailed, cur.ETag, p.ETag)
	}
	return nil
}

// commit runs do (a manifest commit) and settles the segment writes. When do
// fails ambiguously (not a definite refusal), it asks meta whether the
// version became visible before queuing its shards as garbage: orphans can
// be collected later, but collecting a committed version's shards loses data.
func (c *Coordinator) commit(ctx context.Context, man meta.Manifest, sws []*segmentWrite, do func(context.Context) (meta.Manifest, error)) (meta.Manifest, error) {
	got, err := do(ctx)
	committed := err == nil
	if err != nil && !definiteRefusal(err) {
		cctx, cancel := c.cleanupCtx(ctx)
		cur, gerr := c.md.Get(cctx, man.Bucket, man.Key)
		cancel()
		switch {
		case gerr == nil && cur.VersionID == man.VersionID:
			committed, got, err = true, cur, nil
		case gerr != nil && !errors.Is(gerr, meta.ErrNoSuchKey) && !errors.Is(gerr, meta.ErrNoSuchBucket):
			// Unknown outcome: leave the shards as orphans rather than risk
			// collecting a committed version.
			return meta.Manifest{}, fmt.Errorf("commit %s/%s (outcome unknown, shards left in place): %w", man.Bucket, man.Key, err)
		}
	}
	var gerrs []error
	for _, sw := range sws {
		gerrs = append(gerrs, c.settle(ctx, sw, committed))
	}
	if !committed {
		return meta.Manifest{}, errJoin(append([]error{fmt.Errorf("commit %s/%s: %w", man.Bucket, man.Key, err)}, gerrs...))
	}
	// A degraded commit whose failed shards could not be queued as garbage
	// is still a success: the counters record the orphans.
	return got, nil
}

// definiteRefusal reports whether a meta error means the mutation certainly
// did not happen.
func definiteRefusal(err error) bool {
	for _, e := range []error{meta.ErrNoSuchBucket, meta.ErrNoSuchKey, meta.ErrNoSuchUpload, meta.ErrInvalidArgument, meta.ErrConflict, meta.ErrBucketExists, meta.ErrPreconditionFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CopyObject copies the version src to in.Bucket/in.Key with in's metadata
// (in.Body and in.Size are ignored). It streams src through a pipe into a
// new PUT, so it works on the same key (src's shards stay until garbage
// collection) and never holds the object in memory. A single-part source's
// MD5 is checked end to end. in.If makes it conditional, as PutObject.
func (c *Coordinator) CopyObject(ctx context.Context, src meta.Manifest, in PutInput) (meta.Manifest, error) {
	if err := c.precheck(ctx, in.Bucket, in.Key, in.If); err != nil {
		// Refused before the source is read (the write checks again).
		return meta.Manifest{}, fmt.Errorf("copy %s/%s to %s/%s: %w", src.Bucket, src.Key, in.Bucket, in.Key, err)
	}
	in.Size = src.Size
	in.ExpectMD5 = nil
	if len(src.Segments) == 1 {
		if sum, err := hex.DecodeString(src.ETag); err == nil && len(sum) == md5.Size {
			in.ExpectMD5 = sum
		}
	}
	var man meta.Manifest
	err := c.pipeRead(ctx, src, 0, src.Size, func(ctx context.Context, r io.Reader) error {
		in.Body = r
		var err error
		man, err = c.putObject(ctx, in, heldMemory)
		return err
	})
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("copy %s/%s to %s/%s: %w", src.Bucket, src.Key, in.Bucket, in.Key, err)
	}
	return man, nil
}

// pipeRead runs a read of [off, off+length) of src into a pipe whose
// reading end is consumed by put, which must run its write with heldMemory:
// the memory of both sides is reserved here at once. Both sides have
// returned when it returns; a read failure wins over the put error it
// causes.
func (c *Coordinator) pipeRead(ctx context.Context, src meta.Manifest, off, length int64, put func(context.Context, io.Reader) error) error {
	l, err := c.lease(ctx, c.copyMemory(src, off, length), ownMemory)
	if err != nil {
		return fmt.Errorf("copy %s/%s: %w", src.Bucket, src.Key, err)
	}
	defer l.end()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		err := c.readObject(rctx, pw, src, off, length, heldMemory)
		pw.CloseWithError(err)
		readErr <- err
	}()
	perr := put(ctx, pr)
	pr.CloseWithError(errCopyEnded)
	cancel()
	rerr := <-readErr
	// The read's own failure wins over the put error it causes; but a read
	// cut short by the cancel above (the put gave up first: no such
	// bucket or upload, a refused condition) is not a failure of its own.
	cutShort := errors.Is(rerr, context.Canceled) && ctx.Err() == nil
	if rerr != nil && !errors.Is(rerr, errCopyEnded) && !cutShort && perr != nil {
		return rerr
	}
	return perr
}

// errCopyEnded ends a copy's reading side once the writing side returned.
var errCopyEnded = errors.New("copy destination finished")

// errStagedReleased is what a staged body read after its PUT ended returns.
var errStagedReleased = errors.New("staged body released")

// copyMemory is the codec memory a copy of [off, off+length) of src holds
// at most: the largest read of one of its segments plus the write of the
// new segment.
func (c *Coordinator) copyMemory(src meta.Manifest, off, length int64) int64 {
	var read int64
	var segStart int64
	for _, seg := range src.Segments {
		lo, hi := max(off, segStart), min(off+length, segStart+seg.Size)
		if lo < hi {
			if cd, err := c.codec(seg.K, seg.M, seg.BlockSize); err == nil {
				read = max(read, cd.DecodeMemory(seg.Size, lo-segStart, hi-lo))
			}
		}
		segStart += seg.Size
	}
	var write int64
	k, m, _ := c.cfg.scheme(length)
	if cd, err := c.codec(k, m, c.cfg.BlockSize); err == nil {
		write = cd.EncodeMemory(length)
	}
	return read + write
}

// bucketCache remembers the buckets PutObject found to exist in the last
// MapRefresh, so a stream of PUTs into one bucket asks meta once a period
// rather than once a PUT. It only saves a wasted upload: meta's commit
// checks the bucket again, so a PUT into a bucket deleted meanwhile still
// fails with meta.ErrNoSuchBucket (its shards become garbage).
type bucketCache struct {
	mu   sync.Mutex // guards seen
	seen map[string]time.Time
}

// maxCachedBuckets bounds bucketCache; past it the cache starts over.
const maxCachedBuckets = 4096

// checkBucket fails fast with meta.ErrNoSuchBucket when the bucket is not
// there, asking meta unless it confirmed the bucket within MapRefresh.
func (c *Coordinator) checkBucket(ctx context.Context, bucket string) error {
	now := c.cfg.Now()
	b := &c.buckets
	b.mu.Lock()
	at, ok := b.seen[bucket]
	b.mu.Unlock()
	if ok && now.Sub(at) < c.cfg.MapRefresh && !now.Before(at) {
		return nil
	}
	if _, err := c.md.HeadBucket(ctx, bucket); err != nil {
		return err
	}
	b.mu.Lock()
	if b.seen == nil || len(b.seen) >= maxCachedBuckets {
		b.seen = map[string]time.Time{}
	}
	b.seen[bucket] = now
	b.mu.Unlock()
	return nil
}
