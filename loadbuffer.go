package psync

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// This file holds the replica's buffer for the stream that arrives while it
// loads a snapshot. During a full resync the replica opens a second link that
// continues partially from the snapshot's offset at once, and buffers that
// stream locally until the snapshot is loaded. The master then never holds
// more than its backlog for it, however long the snapshot takes to write and
// load: the endless full-sync loop of a fixed output buffer cannot happen.

// ErrLoadBufferFull: the stream that arrived while a snapshot was loading
// outgrew ReplicaConfig.LoadBufferSize.
var ErrLoadBufferFull = errors.New("psync: stream buffered during load over limit")

// errHandedOff ends the buffer once the link reader has handed the
// connection over to the stream reader.
var errHandedOff = errors.New("psync: buffered stream handed off")

// loadBuffer is an unbounded-looking, bounded pipe: one writer appends what
// it reads from the link, one reader consumes it in order. It keeps up to
// memLimit bytes in memory and, when a directory is given, spills the rest
// to a temporary file.
type loadBuffer struct {
	mu       sync.Mutex
	cond     sync.Cond
	chunks   [][]byte // in memory, oldest first
	head     int      // read position in chunks[0]
	mem      int64    // bytes held in chunks
	file     *os.File // spill file, once spilling
	fw, fr   int64    // spill file write and read positions
	total    int64    // bytes written in all
	limit    int64    // bytes allowed unread at once
	memLimit int64
	dir      string
	err      error // set when the writer is done
}

func newLoadBuffer(limit, memLimit int64, dir string) *loadBuffer {
	b := &loadBuffer{limit: limit, memLimit: memLimit, dir: dir}
	b.cond.L = &b.mu
	return b
}

func (b *loadBuffer) unread() int64 { return b.mem + (b.fw - b.fr) }

// write appends a copy of p.
func (b *loadBuffer) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unread()+int64(len(p)) > b.limit {
		return fmt.Errorf("%w: %d bytes", ErrLoadBufferFull, b.limit)
	}
	if b.file == nil && b.dir != "" && b.mem+int64(len(p)) > b.memLimit {
		f, err := os.CreateTemp(b.dir, "psync-stream-*")
		if err != nil {
			return fmt.Errorf("psync: load buffer: %w", err)
		}
		os.Remove(f.Name()) // unlinked: gone with the last descriptor
		b.file = f
	}
	if b.file != nil {
		if _, err := b.file.WriteAt(p, b.fw); err != nil {
			return fmt.Errorf("psync: load buffer: %w", err)
		}
		b.fw += int64(len(p))
	} else {
		b.chunks = append(b.chunks, append([]byte(nil), p...))
		b.mem += int64(len(p))
	}
	b.total += int64(len(p))
	b.cond.Broadcast()
	return nil
}

// finish marks the end of what the writer will append.
func (b *loadBuffer) finish(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Read returns buffered bytes in order, blocking while there are none; once
// the writer finished and everything was read it returns the writer's error.
func (b *loadBuffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.unread() == 0 && b.err == nil {
		b.cond.Wait()
	}
	if len(b.chunks) > 0 {
		n := copy(p, b.chunks[0][b.head:])
		b.head += n
		b.mem -= int64(n)
		if b.head == len(b.chunks[0]) {
			b.chunks[0] = nil
			b.chunks = b.chunks[1:]
			b.head = 0
		}
		return n, nil
	}
	if b.fw > b.fr {
		n := int(min(int64(len(p)), b.fw-b.fr))
		m, err := b.file.ReadAt(p[:n], b.fr)
		b.fr += int64(m)
		if err != nil && m == 0 {
			return 0, fmt.Errorf("psync: load buffer: %w", err)
		}
		return m, nil
	}
	return 0, b.err
}

func (b *loadBuffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.file != nil {
		b.file.Close()
	}
	b.chunks = nil
}

// handoffReader reads the buffered stream, then the link itself once the
// buffer's writer handed it over.
type handoffReader struct {
	buf  *loadBuffer
	link io.Reader
	live bool
}

func (h *handoffReader) Read(p []byte) (int, error) {
	if !h.live {
		n, err := h.buf.Read(p)
		if n > 0 || err == nil {
			return n, nil
		}
		if err != errHandedOff {
			return 0, err
		}
		h.live = true
		h.buf.close()
	}
	return h.link.Read(p)
}
