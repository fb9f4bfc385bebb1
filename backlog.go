package psync

import (
	"context"
	"fmt"
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
// Concurrency: one writer (Write, Reset) and any number of concurrent readers
// (ReadAt, Covers, Wait, and the accessors). Write never allocates and never
// waits for a reader longer than one bounded copy: readers hold the lock only
// while copying into their own buffer.
type Backlog struct {
	mu      sync.RWMutex
	buf     []byte
	pos     int   // index in buf where the next byte goes
	histlen int   // bytes held, <= len(buf)
	end     int64 // offset of the last byte written; guarded by mu, mirrored in last

	last   atomic.Int64 // == end, readable without the lock
	notify notifier
}

// NewBacklog returns an empty backlog of size bytes (DefaultBacklogSize if
// size <= 0) whose next byte will be offset+1.
func NewBacklog(size int, offset int64) *Backlog {
	if size <= 0 {
		size = DefaultBacklogSize
	}
	b := &Backlog{buf: make([]byte, size), end: offset}
	b.last.Store(offset)
	return b
}

// Size returns the capacity in bytes.
func (b *Backlog) Size() int { return len(b.buf) }

// Offset returns the offset of the last byte written: the master offset.
func (b *Backlog) Offset() int64 { return b.last.Load() }

// First returns the offset of the oldest byte held, or Offset()+1 when the
// backlog is empty.
func (b *Backlog) First() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.end - int64(b.histlen) + 1
}

// Len returns the number of bytes held (Redis's repl_backlog_histlen).
func (b *Backlog) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.histlen
}

// Covers reports whether a replica asking for offset next (its processed
// offset + 1) can be served from the backlog: First() <= next <= Offset()+1.
func (b *Backlog) Covers(next int64) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.covers(next)
}

func (b *Backlog) covers(next int64) bool {
	return next >= b.end-int64(b.histlen)+1 && next <= b.end+1
}

// Write appends p to the stream, evicting the oldest bytes when full, and
// returns the new offset. A p larger than the backlog leaves only its tail.
// Write never allocates.
func (b *Backlog) Write(p []byte) int64 {
	b.mu.Lock()
	size := len(b.buf)
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

// Reset empties the backlog and restarts it at offset: the next byte written
// is offset+1. Readers waiting or reading find their offsets gone.
func (b *Backlog) Reset(offset int64) {
	b.mu.Lock()
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
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.covers(next) {
		return 0, fmt.Errorf("%w: offset %d, backlog holds [%d, %d]",
			ErrNotInBacklog, next, b.end-int64(b.histlen)+1, b.end)
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
