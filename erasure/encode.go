package erasure

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// stripe is one stripe's buffer during Encode: k+m slots, each a record
// (header followed by a block of up to BlockSize bytes). The input is read
// straight into the data slots and parity is computed straight into the
// parity slots, so every record is written with a single Write and no copy.
type stripe struct {
	buf     []byte   // (k+m) × (RecordHeaderSize+BlockSize)
	blocks  [][]byte // per shard: the block part of its slot, length bl
	num     int64    // stripe number
	bl      int      // block length of this stripe
	pending atomic.Int32
}

func (c *Codec) newStripe() *stripe {
	n := c.k + c.m
	rs := RecordHeaderSize + c.blockSize
	return &stripe{buf: make([]byte, n*rs), blocks: make([][]byte, n)}
}

// slot is shard i's whole slot (header + full-size block).
func (c *Codec) slot(st *stripe, i int) []byte {
	rs := RecordHeaderSize + c.blockSize
	return st.buf[i*rs : (i+1)*rs]
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

// fill reads the next stripe's object bytes from r into st's data slots and
// returns how many it read (0 at the end of the input). A stripe shorter than
// k×BlockSize is the last one; its bytes are laid out in blocks of
// lastBlockLen and zero-padded.
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

// encode implements Encode. Three kinds of goroutine cooperate:
//   - the caller's goroutine reads stripes into free buffers and hands the
//     data blocks to the data writers and the stripe to the encoder;
//   - one encoder goroutine computes parity and hands it to parity writers;
//   - one goroutine per writer fills in each record's header (hashing the
//     block, so checksums run in parallel with encoding) and writes it.
//
// A stripe buffer returns to the free list when every writer is done with
// it; at most Depth buffers exist per call, taken from and returned to the
// codec's pool.
func (c *Codec) encode(ctx context.Context, r io.Reader, shards []io.Writer, minShards int) (EncodeResult, error) {
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
		alive    atomic.Int32 // writers not dropped
		wg       sync.WaitGroup
		free     = make(chan *stripe, c.cfg.Depth)
		toEnc    = make(chan *stripe, c.cfg.Depth)
		jobs     = make([]chan *stripe, n)
		sums     = make([]summer, n)
		encErr   error // set by the encoder goroutine before it exits
		released = func(st *stripe) {
			if st.pending.Add(-1) == 0 {
				free <- st
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

	allocated := 0
	var pool []*stripe // every buffer this call took, returned to the pool at the end
	get := func() (*stripe, error) {
		select {
		case st := <-free:
			return st, nil
		default:
		}
		if allocated < c.cfg.Depth {
			allocated++
			st, _ := c.stripes.Get().(*stripe)
			if st == nil {
				st = c.newStripe()
			}
			pool = append(pool, st)
			return st, nil
		}
		select {
		case st := <-free:
			return st, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	var loopErr error
	for num := int64(0); ; num++ {
		if err := ctx.Err(); err != nil {
			loopErr = fmt.Errorf("encode: stripe %d: %w", num, err)
			break
		}
		st, err := get()
		if err != nil {
			loopErr = fmt.Errorf("encode: stripe %d: %w", num, err)
			break
		}
		got, err := c.fill(r, st)
		if err != nil {
			free <- st
			loopErr = fmt.Errorf("encode: read input at stripe %d: %w", num, err)
			break
		}
		if got == 0 {
			free <- st
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
		if got < c.stripeData() {
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
	for _, st := range pool {
		c.stripes.Put(st)
	}
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
