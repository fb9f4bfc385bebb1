package psync

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// DefaultBacklogSize is the backlog capacity used when a config leaves it
// zero: 1 MiB, Redis's repl-backlog-size default.
const DefaultBacklogSize = 1 << 20

// Backlog is a fixed-capacity ring holding the most recent bytes of the
// replication stream, so that a replica that reconnects can be sent what it
// missed (a partial resync) instead of a whole snapshot.
//
// Offsets follow Redis: the stream's bytes are numbered from 1, Offset is the
// number of the last byte written (master_repl_offset), and First the number
// of the oldest byte still held (repl_backlog_first_byte_offset). A replica
// that processed n bytes asks for n+1, which the backlog can serve when
// First() <= n+1 <= Offset()+1.
//
// Readers that follow the stream (a master's senders) read through a Cursor.
// With SetRetention, bytes leaving the ring that an open Cursor has not read
// yet are kept aside, up to a limit, instead of being lost: one copy shared
// by every lagging cursor, as Redis 7 shares its replication buffer between
// the backlog and the replicas' output buffers. While bytes are retained the
// backlog holds more than Size, and First and Covers count them.
//
// Concurrency: one writer (Write, Reset) and any number of concurrent readers
// (ReadAt, Covers, Wait, cursors and the accessors). Write never waits for a
// reader longer than one bounded copy (readers hold the lock only while
// copying into their own buffer), and it allocates only to retain bytes for a
// lagging cursor, one fixed-size block at a time.
type Backlog struct {
	mu      sync.Mutex
	buf     []byte
	pos     int   // index in buf where the next byte goes
	histlen int   // bytes held in buf, <= len(buf)
	end     int64 // offset of the last byte written; guarded by mu, mirrored in last

	// Retention: bytes evicted from the ring that a cursor still needs. They
	// are the offsets just before the ring's first byte: held[0][hoff:],
	// held[1], ..., the last block filled up to its length.
	held      [][]byte
	hoff      int   // index in held[0] of the oldest retained byte
	hlen      int64 // bytes retained
	limit     int64 // most bytes retained; 0 retains nothing
	cursors   map[*Cursor]struct{}
	pin       atomic.Int64 // <= every open cursor's next; MaxInt64 with none
	sinceScan int64        // bytes retained since pin was last recomputed

	// Read by waiting goroutines without the lock: kept off the cache line
	// Write locks and updates.
	_      [64]byte
	last   atomic.Int64 // == end, readable without the lock
	notify notifier
}

// retainBlock is the size of the blocks retained bytes are kept in.
const retainBlock = 64 << 10

var blockPool = sync.Pool{New: func() any { return new([retainBlock]byte) }}

// NewBacklog returns an empty backlog of size bytes (DefaultBacklogSize if
// size <= 0) whose next byte will be offset+1.
func NewBacklog(size int, offset int64) *Backlog {
	if size <= 0 {
		size = DefaultBacklogSize
	}
	b := &Backlog{buf: make([]byte, size), end: offset, cursors: make(map[*Cursor]struct{})}
	b.last.Store(offset)
	b.pin.Store(math.MaxInt64)
	return b
}

// SetRetention sets how many bytes beyond Size the backlog may keep for
// cursors that have not read them yet (0, the default, keeps none). When a
// cursor falls further behind than Size+limit, its oldest bytes are dropped
// and its next Read fails with ErrNotInBacklog. Lowering the limit drops
// retained bytes at once.
func (b *Backlog) SetRetention(limit int64) {
	if limit < 0 {
		limit = 0
	}
	b.mu.Lock()
	b.limit = limit
	b.dropOldest(b.hlen - limit)
	b.mu.Unlock()
}

// Size returns the capacity of the ring in bytes.
func (b *Backlog) Size() int { return len(b.buf) }

// Offset returns the offset of the last byte written: the master offset.
func (b *Backlog) Offset() int64 { return b.last.Load() }

// First returns the offset of the oldest byte held, or Offset()+1 when the
// backlog is empty.
func (b *Backlog) First() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first()
}

func (b *Backlog) first() int64 { return b.end - int64(b.histlen) - b.hlen + 1 }

// Len returns the number of bytes held (Redis's repl_backlog_histlen),
// retained bytes included.
func (b *Backlog) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.histlen + int(b.hlen)
}

// Retained returns the number of bytes held beyond the ring for lagging
// cursors.
func (b *Backlog) Retained() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hlen
}

// Covers reports whether a replica asking for offset next (its processed
// offset + 1) can be served from the backlog: First() <= next <= Offset()+1.
func (b *Backlog) Covers(next int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.covers(next)
}

func (b *Backlog) covers(next int64) bool {
	return next >= b.first() && next <= b.end+1
}

// Write appends p to the stream, evicting the oldest bytes when full, and
// returns the new offset. A p larger than the backlog leaves only its tail.
func (b *Backlog) Write(p []byte) int64 {
	b.mu.Lock()
	size := len(b.buf)
	if evict := b.histlen + len(p) - size; evict > 0 {
		if b.limit > 0 && b.pin.Load() < b.end-int64(b.histlen)+1+int64(evict) {
			b.retain(p, int64(evict))
		} else {
			// Every cursor is past the evicted bytes, so past the retained
			// ones too (retained bytes always precede the ring's).
			b.dropOldest(b.hlen)
		}
	}
	if len(p) >= size {
		copy(b.buf, p[len(p)-size:])
		b.pos = 0
		b.histlen = size
	} else {
		n := copy(b.buf[b.pos:], p)
		if n < len(p) {
			copy(b.buf, p[n:])
		}
		b.pos += len(p)
		if b.pos >= size {
			b.pos -= size
		}
		b.histlen += len(p)
		if b.histlen > size {
			b.histlen = size
		}
	}
	b.end += int64(len(p))
	end := b.end
	b.last.Store(end)
	b.mu.Unlock()
	b.notify.wake()
	return end
}

// retain keeps the bytes that writing p is about to evict (the ring's oldest
// bytes, then p's head when p alone overflows the ring) from the lowest
// cursor's position on. Called with mu held.
func (b *Backlog) retain(p []byte, evict int64) {
	if b.hlen == 0 || b.sinceScan >= retainBlock {
		b.rescan()
	}
	ringFirst := b.end - int64(b.histlen) + 1
	from, upto := ringFirst, ringFirst+evict // evicted offsets [from, upto)
	if b.hlen == 0 {
		// Nothing retained yet: start at the lowest cursor. With bytes
		// retained, the new ones must follow them without a gap.
		from = max(from, b.pin.Load())
	}
	if from >= upto {
		return
	}
	// The ring's bytes first: offset o is at index pos-(end+1-o) mod size.
	if ringEnd := min(upto, b.end+1); from < ringEnd {
		size := len(b.buf)
		i := b.pos - int(b.end+1-from)
		if i < 0 {
			i += size
		}
		n := int(ringEnd - from)
		c := min(n, size-i)
		b.appendHeld(b.buf[i : i+c])
		b.appendHeld(b.buf[:n-c])
		from = ringEnd
	}
	if from < upto { // then the head of p
		b.appendHeld(p[from-(b.end+1) : upto-(b.end+1)])
	}
	b.dropOldest(b.hlen - b.limit)
}

func (b *Backlog) appendHeld(p []byte) {
	b.hlen += int64(len(p))
	b.sinceScan += int64(len(p))
	for len(p) > 0 {
		if n := len(b.held); n > 0 && len(b.held[n-1]) < retainBlock {
			last := b.held[n-1]
			c := copy(last[len(last):retainBlock], p)
			b.held[n-1] = last[:len(last)+c]
			p = p[c:]
			continue
		}
		b.held = append(b.held, blockPool.Get().(*[retainBlock]byte)[:0])
	}
}

// dropOldest forgets the n oldest retained bytes (n <= 0: none).
func (b *Backlog) dropOldest(n int64) {
	n = min(n, b.hlen)
	if n <= 0 {
		return
	}
	b.hlen -= n
	for n > 0 {
		avail := int64(len(b.held[0]) - b.hoff)
		if n < avail {
			b.hoff += int(n)
			break
		}
		n -= avail
		blockPool.Put((*[retainBlock]byte)(b.held[0][:retainBlock]))
		b.held[0] = nil
		b.held = b.held[1:]
		b.hoff = 0
	}
	if b.hlen == 0 {
		for i, blk := range b.held {
			blockPool.Put((*[retainBlock]byte)(blk[:retainBlock]))
			b.held[i] = nil
		}
		b.held, b.hoff = b.held[:0], 0
	}
}

// rescan recomputes pin from the open cursors and forgets the retained bytes
// none of them needs any more. Called with mu held.
func (b *Backlog) rescan() {
	pin := int64(math.MaxInt64)
	for c := range b.cursors {
		pin = min(pin, c.next.Load())
	}
	b.pin.Store(pin)
	b.sinceScan = 0
	b.dropOldest(min(pin, b.end+1) - b.first())
}

// Reset empties the backlog and restarts it at offset: the next byte written
// is offset+1. Readers waiting or reading find their offsets gone.
func (b *Backlog) Reset(offset int64) {
	b.mu.Lock()
	b.dropOldest(b.hlen)
	for c := range b.cursors {
		// Their offsets belong to the old history, even where the new one
		// reuses the numbers.
		c.dead = true
		delete(b.cursors, c)
	}
	b.pin.Store(math.MaxInt64)
	b.pos, b.histlen, b.end = 0, 0, offset
	b.last.Store(offset)
	b.mu.Unlock()
	b.notify.wake()
}

// ReadAt copies into p the stream bytes starting at offset next (the first
// byte wanted, as in PSYNC) and returns how many it copied: 0 when next is
// Offset()+1, nothing having been written yet. It fails with an error
// wrapping ErrNotInBacklog when next is outside [First(), Offset()+1].
func (b *Backlog) ReadAt(p []byte, next int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readAt(p, next)
}

func (b *Backlog) readAt(p []byte, next int64) (int, error) {
	if !b.covers(next) {
		return 0, fmt.Errorf("%w: offset %d, backlog holds [%d, %d]",
			ErrNotInBacklog, next, b.first(), b.end)
	}
	if ringFirst := b.end - int64(b.histlen) + 1; next < ringFirst {
		// Retained bytes: up to the ring's first byte in this call.
		want := min(int64(len(p)), ringFirst-next)
		skip := next - b.first() + int64(b.hoff)
		n := 0
		for i := int(skip / retainBlock); int64(n) < want; i++ {
			blk := b.held[i]
			if i == int(skip/retainBlock) {
				blk = blk[skip%retainBlock:]
			}
			n += copy(p[n:want], blk)
		}
		return n, nil
	}
	avail := b.end + 1 - next
	n := len(p)
	if int64(n) > avail {
		n = int(avail)
	}
	if n == 0 {
		return 0, nil
	}
	size := len(b.buf)
	start := b.pos - int(avail)
	if start < 0 {
		start += size
	}
	c := copy(p[:n], b.buf[start:])
	if c < n {
		copy(p[c:n], b.buf)
	}
	return n, nil
}

// A Cursor reads the stream from a position on, and keeps the bytes it has
// not read yet from being lost while the backlog's retention allows (see
// SetRetention). It is for one goroutine; Close it when done.
type Cursor struct {
	b    *Backlog
	next atomic.Int64
	dead bool // the backlog was Reset; guarded by b.mu
}

// NewCursor opens a cursor whose first Read returns the byte at offset next.
// It fails with an error wrapping ErrNotInBacklog when the backlog does not
// cover next.
func (b *Backlog) NewCursor(next int64) (*Cursor, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.covers(next) {
		return nil, fmt.Errorf("%w: offset %d, backlog holds [%d, %d]",
			ErrNotInBacklog, next, b.first(), b.end)
	}
	c := &Cursor{b: b}
	c.next.Store(next)
	b.cursors[c] = struct{}{}
	if next < b.pin.Load() {
		b.pin.Store(next)
	}
	return c, nil
}

// Next returns the offset of the next byte Read returns.
func (c *Cursor) Next() int64 { return c.next.Load() }

// Read copies the stream bytes from Next() on into p and advances past them.
// It returns 0 and no error when there is nothing new (see Backlog.Wait), and
// an error wrapping ErrNotInBacklog when the bytes it needs were dropped
// (the cursor fell too far behind, or the backlog was Reset).
func (c *Cursor) Read(p []byte) (int, error) {
	b := c.b
	next := c.next.Load()
	b.mu.Lock()
	if c.dead {
		b.mu.Unlock()
		return 0, fmt.Errorf("%w: offset %d belongs to a history the backlog was reset from", ErrNotInBacklog, next)
	}
	n, err := b.readAt(p, next)
	ringFirst := b.end - int64(b.histlen) + 1
	fromHeld := b.hlen > 0 && next < ringFirst
	b.mu.Unlock()
	to := next + int64(n)
	c.next.Store(to)
	if fromHeld && (to >= ringFirst || to/retainBlock != next/retainBlock) {
		// This cursor may have been the one holding the bytes it just
		// passed: let them go once it is back in the ring, and every
		// block on the way.
		b.mu.Lock()
		b.rescan()
		b.mu.Unlock()
	}
	return n, err
}

// Close releases the cursor and the bytes retained for it alone.
func (c *Cursor) Close() {
	b := c.b
	b.mu.Lock()
	if _, ok := b.cursors[c]; ok {
		delete(b.cursors, c)
		b.rescan()
	}
	b.mu.Unlock()
}

// Wait blocks until the backlog's offset passes after (Offset() > after), the
// backlog is Reset, or ctx ends. It returns ctx.Err() in the last case.
func (b *Backlog) Wait(ctx context.Context, after int64) error {
	return b.notify.wait(ctx, func() bool { return b.last.Load() != after })
}

// notifier lets goroutines wait for a condition that a hot path makes true,
// at the cost of one atomic load on that path when nobody waits: waiters
// publish a channel, the next wake closes it.
type notifier struct {
	ch atomic.Pointer[chan struct{}]
}

func (n *notifier) wake() {
	if ch := n.ch.Load(); ch != nil && n.ch.CompareAndSwap(ch, nil) {
		close(*ch)
	}
}

// wait returns nil once done() is true, or ctx.Err().
func (n *notifier) wait(ctx context.Context, done func() bool) error {
	for {
		if done() {
			return nil
		}
		ch := n.ch.Load()
		if ch == nil {
			c := make(chan struct{})
			if !n.ch.CompareAndSwap(nil, &c) {
				continue
			}
			ch = &c
		}
		// Re-check after publishing the channel: a wake that ran before we
		// published would not have closed it.
		if done() {
			return nil
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
