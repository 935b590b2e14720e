package erasure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// errLongInput: EncodeSize's input went on past the declared size.
var errLongInput = errors.New("input longer than the declared size")

// stripe is one stripe's buffer during Encode: k+m slots, each a record
// (header followed by a block of up to slot-RecordHeaderSize bytes). The
// input is read straight into the data slots and parity is computed straight
// into the parity slots, so every record is written with a single Write and
// no copy. A pooled stripe has full-size slots; a stripe made for one small
// object of known size has slots just large enough for its blocks.
type stripe struct {
	buf     []byte   // (k+m) × slot
	slot    int      // bytes per shard slot: RecordHeaderSize + the largest block it holds
	blocks  [][]byte // per shard: the block part of its slot, length bl
	num     int64    // stripe number
	bl      int      // block length of this stripe
	pending atomic.Int32
}

// newStripe returns a stripe whose slots hold blocks of up to maxBlock bytes.
func (c *Codec) newStripe(maxBlock int) *stripe {
	n := c.k + c.m
	rs := RecordHeaderSize + maxBlock
	return &stripe{buf: make([]byte, n*rs), slot: rs, blocks: make([][]byte, n)}
}

// slot is shard i's whole slot (header + block room).
func (c *Codec) slot(st *stripe, i int) []byte {
	return st.buf[i*st.slot : (i+1)*st.slot]
}

// setBlockLen points st.blocks at blocks of length bl.
func (c *Codec) setBlockLen(st *stripe, bl int) {
	st.bl = bl
	for i := range st.blocks {
		st.blocks[i] = c.slot(st, i)[RecordHeaderSize : RecordHeaderSize+bl]
	}
}

// record is shard i's record in st (header + block).
func (c *Codec) record(st *stripe, i int) []byte {
	return c.slot(st, i)[:RecordHeaderSize+st.bl]
}

// smallBlock is the block length of an object of known size that fits in
// one stripe and whose blocks are at most half the block size: its buffers
// (encode stripe, decode records) are sized to it rather than taken from the
// pools of full-size ones. 0 when the object is not small.
func (c *Codec) smallBlock(size int64) int {
	if size <= 0 || size >= c.stripeData() {
		return 0
	}
	if bl := c.lastBlockLen(size); bl <= c.blockSize/2 {
		return bl
	}
	return 0
}

// recordSlot is the record buffer size Encode and Decode use for an object
// of size bytes (size < 0: unknown).
func (c *Codec) recordSlot(size int64) int {
	if bl := c.smallBlock(size); bl > 0 {
		return RecordHeaderSize + bl
	}
	return RecordHeaderSize + c.blockSize
}

// encodeMemory implements EncodeMemory.
func (c *Codec) encodeMemory(size int64) int64 {
	n := int64(c.k + c.m)
	if size < 0 {
		return int64(c.cfg.Depth) * n * c.recordSize()
	}
	return min(int64(c.cfg.Depth), c.Stripes(size)) * n * int64(c.recordSlot(size))
}

// decodeMemory implements DecodeMemory.
func (c *Codec) decodeMemory(size, off, length int64) int64 {
	if size <= 0 || length <= 0 || off < 0 || off >= size {
		return 0
	}
	sd := c.stripeData()
	end := min(off+length, size)
	stripes := (end-1)/sd - off/sd + 1
	per := min(stripes, int64(c.cfg.ReadAhead)+2)
	return int64(c.k+c.m) * per * int64(c.recordSlot(size))
}

// fill reads the next stripe's object bytes from r into st's data slots and
// returns how many it read (0 at the end of the input). A stripe shorter than
// k×BlockSize is the last one; its bytes are laid out in blocks of
// lastBlockLen and zero-padded. st must have full-size slots.
func (c *Codec) fill(r io.Reader, st *stripe) (int64, error) {
	c.setBlockLen(st, c.blockSize)
	var rem int64
	for i := 0; i < c.k; i++ {
		n, err := io.ReadFull(r, st.blocks[i])
		rem += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if rem == 0 || rem == c.stripeData() {
		return rem, nil
	}
	// Partial stripe: move byte x from (slot x/B, offset x%B) to
	// (slot x/bl, offset x%bl). With bl ≤ B every byte moves to a higher
	// address, so moving runs from the highest down never clobbers a byte
	// not yet moved.
	bl := c.lastBlockLen(rem)
	B := int64(c.blockSize)
	data := func(i int64) []byte { return c.slot(st, int(i))[RecordHeaderSize:] }
	for x := rem; x > 0; {
		q, q2 := (x-1)/B, (x-1)/int64(bl)
		start := max(q*B, q2*int64(bl))
		copy(data(q2)[start-q2*int64(bl):x-q2*int64(bl)], data(q)[start-q*B:x-q*B])
		x = start
	}
	c.setBlockLen(st, bl)
	for i := 0; i < c.k; i++ {
		lo := min(max(rem-int64(i*bl), 0), int64(bl))
		clear(st.blocks[i][lo:])
	}
	return rem, nil
}

// fillSized reads stripe num of an object of known size from r straight
// into its final layout (blocks of blockLen(num, size), the last one
// zero-padded) and returns how many bytes it read. The input ending early is
// an error wrapping io.ErrUnexpectedEOF.
func (c *Codec) fillSized(r io.Reader, st *stripe, num, size int64) (int64, error) {
	bl := c.blockLen(num, size)
	c.setBlockLen(st, bl)
	want := min(c.stripeData(), size-num*c.stripeData())
	var got int64
	for i := 0; i < c.k; i++ {
		b := st.blocks[i]
		take := min(int64(bl), max(want-got, 0))
		if take > 0 {
			n, err := io.ReadFull(r, b[:take])
			got += int64(n)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return got, fmt.Errorf("input ended after %d of %d bytes: %w", num*c.stripeData()+got, size, io.ErrUnexpectedEOF)
			}
			if err != nil {
				return got, err
			}
		}
		clear(b[take:])
	}
	return got, nil
}

// peekReader lets encode wait for a stripe's first byte before it takes a
// buffer for the stripe.
type peekReader struct {
	r   io.Reader
	b   [1]byte
	has bool  // b holds a byte not yet returned
	err error // the error that came with or instead of it
}

// peek reads one byte ahead, unless one is held or an error was seen.
func (p *peekReader) peek() {
	if p.has || p.err != nil {
		return
	}
	for {
		n, err := p.r.Read(p.b[:])
		p.has, p.err = n == 1, err
		if n == 1 || err != nil {
			return
		}
	}
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.has {
		b[0] = p.b[0]
		p.has = false
		return 1, nil
	}
	if p.err != nil {
		err := p.err
		p.err = nil
		return 0, err
	}
	return p.r.Read(b)
}

// expectEOF confirms that r has nothing after the declared size: a reader
// that verifies the stream at its end (a checksum, a signature) sees that
// end before Encode returns.
func expectEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return errLongInput
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// encode implements Encode. Three kinds of goroutine cooperate:
//   - the caller's goroutine reads stripes into free buffers and hands the
//     data blocks to the data writers and the stripe to the encoder;
//   - one encoder goroutine computes parity and hands it to parity writers;
//   - one goroutine per writer fills in each record's header (hashing the
//     block, so checksums run in parallel with encoding) and writes it.
//
// A stripe buffer is taken from the codec's pool (or, for a small object of
// known size, made to its size) only once the stripe's first input byte
// has arrived, and goes back as soon as every writer is done with it; at
// most Depth are in use per call (fewer for an object of known size with
// fewer stripes). An encode waiting for slow input thus holds only the
// stripes still being written. size < 0 means unknown: r is read to EOF.
// Otherwise r must hold exactly size bytes.
func (c *Codec) encode(ctx context.Context, r io.Reader, size int64, shards []io.Writer, minShards int) (EncodeResult, error) {
	n := c.k + c.m
	res := EncodeResult{ShardErrs: make([]error, n), Summaries: make([]uint64, n)}
	if len(shards) != n {
		return res, fmt.Errorf("encode: %d writers for %d shards: %w", len(shards), n, ErrInvalidArgument)
	}
	minShards = max(minShards, c.k)
	live := 0
	for _, w := range shards {
		if w != nil {
			live++
		}
	}
	if live < minShards {
		return res, fmt.Errorf("encode: %d writers, need %d: %w", live, minShards, ErrTooFewShards)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		alive   atomic.Int32 // writers not dropped
		wg      sync.WaitGroup
		slots   chan struct{} // one per stripe buffer in use: at most Depth
		toEnc   = make(chan *stripe, c.cfg.Depth)
		jobs    = make([]chan *stripe, n)
		sums    = make([]summer, n)
		encErr  error // set by the encoder goroutine before it exits
		small   = c.smallBlock(size)
		putBack = func(st *stripe) {
			if small == 0 {
				c.stripes.Put(st)
			}
			<-slots
		}
		released = func(st *stripe) {
			if st.pending.Add(-1) == 0 {
				putBack(st)
			}
		}
	)
	alive.Store(int32(live))
	for i, w := range shards {
		if w == nil {
			continue
		}
		jobs[i] = make(chan *stripe, c.cfg.Depth)
		wg.Add(1)
		go func() {
			defer wg.Done()
			dropped := false
			for st := range jobs[i] {
				if !dropped && ctx.Err() == nil {
					rec := c.record(st, i)
					sum := putHeader(rec, i, st.num)
					if _, err := w.Write(rec); err != nil {
						dropped = true
						res.ShardErrs[i] = &ShardError{Shard: i, Op: "write", Err: fmt.Errorf("stripe %d: %w", st.num, err)}
						if alive.Add(-1) < int32(minShards) {
							cancel()
						}
					} else {
						sums[i].add(sum)
					}
				}
				released(st)
			}
		}()
	}
	var encWG sync.WaitGroup
	encWG.Add(1)
	go func() {
		defer encWG.Done()
		defer func() {
			for i := c.k; i < n; i++ {
				if jobs[i] != nil {
					close(jobs[i])
				}
			}
		}()
		for st := range toEnc {
			if encErr == nil && ctx.Err() == nil && c.m > 0 {
				if err := c.enc.Encode(st.blocks); err != nil {
					encErr = fmt.Errorf("encode stripe %d: %w", st.num, err)
					cancel()
				}
			}
			for i := c.k; i < n; i++ {
				if jobs[i] != nil {
					jobs[i] <- st
				}
			}
		}
	}()

	limit := c.cfg.Depth
	if size >= 0 {
		limit = int(min(int64(limit), max(c.Stripes(size), 1)))
	}
	slots = make(chan struct{}, limit)
	// get takes a stripe buffer once one of the call's limit is free. A
	// buffer goes back to the pool as soon as its writers are done with it,
	// so an encode waiting for input holds only the stripes still being
	// written — not its whole Depth.
	get := func() (*stripe, error) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if small > 0 {
			return c.newStripe(small), nil
		}
		st, _ := c.stripes.Get().(*stripe)
		if st == nil {
			st = c.newStripe(c.blockSize)
		}
		return st, nil
	}
	// Each stripe's first byte is awaited before a buffer is taken for it:
	// a slow input (a client trickling its upload) then keeps no buffer
	// while nothing arrives.
	in := &peekReader{r: r}

	var loopErr error
	stripes := c.Stripes(size)
	for num := int64(0); ; num++ {
		if err := ctx.Err(); err != nil {
			loopErr = fmt.Errorf("encode: stripe %d: %w", num, err)
			break
		}
		if size >= 0 && num == stripes {
			if err := expectEOF(in); err != nil {
				loopErr = fmt.Errorf("encode: read input after %d bytes: %w", size, err)
			}
			break
		}
		in.peek()
		st, err := get()
		if err != nil {
			loopErr = fmt.Errorf("encode: stripe %d: %w", num, err)
			break
		}
		var got int64
		if size >= 0 {
			got, err = c.fillSized(in, st, num, size)
		} else {
			got, err = c.fill(in, st)
		}
		if err != nil {
			putBack(st)
			loopErr = fmt.Errorf("encode: read input at stripe %d: %w", num, err)
			break
		}
		if got == 0 {
			putBack(st)
			break
		}
		res.Size += got
		st.num = num
		st.pending.Store(int32(live))
		for i := 0; i < c.k; i++ {
			if jobs[i] != nil {
				jobs[i] <- st
			}
		}
		toEnc <- st
		if size < 0 && got < c.stripeData() {
			break
		}
	}
	close(toEnc)
	for i := 0; i < c.k; i++ {
		if jobs[i] != nil {
			close(jobs[i])
		}
	}
	encWG.Wait()
	wg.Wait()
	for i := range shards {
		if shards[i] != nil && res.ShardErrs[i] == nil {
			res.Summaries[i] = sums[i].sum()
		}
	}

	if a := int(alive.Load()); a < minShards {
		return res, fmt.Errorf("encode: %d of %d shard writers left, need %d: %w (first: %w)",
			a, n, minShards, ErrTooFewShards, firstErr(res.ShardErrs))
	}
	if encErr != nil {
		return res, encErr
	}
	return res, loopErr
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
