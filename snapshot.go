package psync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// This file holds the storage contracts a host implements, and the two
// framings a snapshot takes on the wire:
//
//	$<len>\r\n<len bytes>                    (disk form)
//	$EOF:<40 chars>\r\n<bytes><same 40 chars> (diskless form, only to replicas
//	                                          that sent REPLCONF capa eof)

// Snapshotter is the master side of a full resync: it captures the host's
// dataset at an exact point of the replication stream.
//
// Contract: the host applies each write to its dataset and feeds it to
// Master.Feed under one lock of its own, and Snapshot takes that same lock
// while it captures a point-in-time handle and reads Master.Offset(). Then no
// write is lost or applied twice between the snapshot and the stream that
// follows it. Snapshot is called without any psync lock held, possibly from
// several goroutines at once, and must be cheap (a copy-on-write handle, a
// shallow copy): writes are paused while it runs.
type Snapshotter interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a captured dataset waiting to be written out.
//
// WriteTo is called at most once, concurrently with new writes to the live
// dataset, and must write the same bytes whatever happens meanwhile. Release
// is always called exactly once, after WriteTo returns or instead of it, so
// the host can drop its handle.
type Snapshot interface {
	// Offset is the master offset of the last write the snapshot contains.
	Offset() int64
	// WriteTo writes the snapshot's bytes to w.
	WriteTo(w io.Writer) (int64, error)
	// Release frees the snapshot.
	Release()
}

// SnapshotSizer is an optional interface of a Snapshot that knows its exact
// size before it is written. With it the master sends the $<len> framing to
// every replica without spooling the snapshot to a temporary file first.
type SnapshotSizer interface {
	Len() int64
}

// SnapshotInfo describes a snapshot a replica is about to load.
type SnapshotInfo struct {
	// ReplID and Offset are the position the dataset is at once loaded (from
	// the master's +FULLRESYNC reply).
	ReplID ReplID
	Offset int64
	// Size is the snapshot's length in bytes, or -1 with the diskless EOF-mark
	// framing.
	Size int64
}

// Loader is the replica side of a full resync.
//
// Load reads a whole snapshot from r, which returns io.EOF exactly at its
// end, and builds a new dataset from it without changing the live one. psync
// then verifies the transfer (length or EOF mark) and calls Commit on the
// result to install it, or Discard if anything failed, so a failed full
// resync leaves the host's data intact. Load must not retain r. Load, Commit
// and Discard are never called concurrently with Apply.
type Loader interface {
	Load(ctx context.Context, r io.Reader, info SnapshotInfo) (LoadedSnapshot, error)
}

// LoadedSnapshot is a dataset loaded from a snapshot and not yet live.
type LoadedSnapshot interface {
	// Commit atomically replaces the live dataset with this one.
	Commit()
	// Discard drops it; the live dataset stays as it was.
	Discard()
}

// Applier receives the replication stream on a replica: every whole command,
// in order, once. cmd.Args and cmd.Raw are valid only during the call;
// cmd.Offset is the replica's offset once the command is applied, so a host
// can persist it atomically with the change. PING and REPLCONF GETACK are
// handled by psync and not passed on. An error stops the replica (Run
// returns it wrapped in ErrApply); return nil for a command the host chooses
// to skip.
//
// Transactions: as in Redis, a MULTI ... EXEC block counts as processed
// only once whole (the replica's Offset and acknowledgements stay before
// MULTI until EXEC, and sub-replicas get the block at EXEC). The host queues
// the block's commands between MULTI and EXEC. If the link ends inside a
// block, psync calls Apply with a DISCARD command (Raw empty, Offset the
// replica's offset before MULTI) so the host drops the queue; the block is
// then received again from its start.
type Applier interface {
	Apply(cmd Command) error
}

// A BatchApplier is an Applier that wants to know where psync's batches of
// commands start and end, for example to take its write lock once per batch
// rather than once per command. A batch is the commands applied from one
// read of the link, at most about 64 KiB of them. psync calls BeginBatch
// before the first Apply of a batch and EndBatch after its last one, on the
// goroutine that calls Apply; between the two it applies commands and does
// nothing that waits (no network read or write, no wait for another
// goroutine), and it makes the batch's offsets visible (Replica.Offset,
// WaitOffset, ACKs) only after EndBatch. Apply may also come outside a batch
// (the DISCARD of a cut transaction).
type BatchApplier interface {
	Applier
	BeginBatch()
	EndBatch()
}

// eofMarkLen is the length of a diskless snapshot's end mark.
const eofMarkLen = 40

func newEOFMark() []byte {
	var b [eofMarkLen / 2]byte
	_, _ = rand.Read(b[:])
	m := make([]byte, eofMarkLen)
	hex.Encode(m, b[:])
	return m
}

func appendSnapshotHeader(dst []byte, size int64, mark []byte) []byte {
	dst = append(dst, '$')
	if mark != nil {
		dst = append(dst, "EOF:"...)
		dst = append(dst, mark...)
	} else {
		dst = strconv.AppendInt(dst, size, 10)
	}
	return append(dst, '\r', '\n')
}

// readSnapshotHeader skips the newline keepalives a master sends while it
// prepares a snapshot and reads the $ line. It returns the size (-1 with an
// EOF mark), the mark, and how many keepalive bytes it skipped.
func (c *CommandReader) readSnapshotHeader(maxSize int64) (size int64, mark []byte, err error) {
	for {
		line, err := c.ReadLine()
		if err != nil {
			return 0, nil, err
		}
		if len(line) == 0 {
			continue // keepalive
		}
		if line[0] == '-' {
			return 0, nil, fmt.Errorf("%w: %q", ErrUnexpectedReply, truncate(string(line), 200))
		}
		if line[0] != '$' {
			return 0, nil, fmt.Errorf("%w: snapshot header %q", ErrProtocol, truncate(string(line), 64))
		}
		if bytes.HasPrefix(line, []byte("$EOF:")) {
			m := line[5:]
			if len(m) != eofMarkLen {
				return 0, nil, fmt.Errorf("%w: mark of %d bytes", ErrEOFMark, len(m))
			}
			return -1, bytes.Clone(m), nil
		}
		n, ok := parseInt(line[1:])
		if !ok || n < 0 {
			return 0, nil, fmt.Errorf("%w: bad snapshot length %q", ErrProtocol, truncate(string(line), 64))
		}
		if maxSize > 0 && n > maxSize {
			return 0, nil, fmt.Errorf("%w: %w: snapshot of %d bytes, limit %d", ErrProtocol, ErrTooLarge, n, maxSize)
		}
		return n, nil, nil
	}
}

// framedReader is a snapshot reader that remembers why the transfer failed,
// so the replica reports that rather than what the loader made of it.
type framedReader interface {
	io.Reader
	framingErr() error
}

// lenReader yields exactly left bytes of the link, then io.EOF.
type lenReader struct {
	c    *CommandReader
	left int64
	err  error
}

func (l *lenReader) framingErr() error { return l.err }

func (l *lenReader) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	c := l.c
	if c.r == c.w {
		if len(p) >= len(c.buf) && c.err == nil {
			// Large read with nothing buffered: skip the copy.
			n, err := c.rd.Read(p)
			l.left -= int64(n)
			c.consumed += int64(n)
			if err != nil {
				c.err = err
				if l.left > 0 && n == 0 {
					l.err = fmt.Errorf("%w: %d bytes missing: %w", ErrSnapshotTruncated, l.left, err)
					return 0, l.err
				}
			}
			return n, nil
		}
		c.r, c.w = 0, 0
		if err := c.fill(); err != nil {
			l.err = fmt.Errorf("%w: %d bytes missing: %w", ErrSnapshotTruncated, l.left, err)
			return 0, l.err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	c.consumed += int64(n)
	l.left -= int64(n)
	return n, nil
}

// eofReader yields the bytes of the link up to the EOF mark, then io.EOF
// once the mark has been consumed.
type eofReader struct {
	c     *CommandReader
	mark  []byte
	clean int // bytes at c.buf[c.r:] known to precede the mark
	done  bool
	total int64
	err   error
}

func (e *eofReader) framingErr() error { return e.err }

func (e *eofReader) Read(p []byte) (int, error) {
	c := e.c
	for {
		if e.done {
			return 0, io.EOF
		}
		if e.clean > 0 {
			n := copy(p, c.buf[c.r:c.r+e.clean])
			c.r += n
			c.consumed += int64(n)
			e.clean -= n
			e.total += int64(n)
			return n, nil
		}
		b := c.buf[c.r:c.w]
		if i := bytes.Index(b, e.mark); i == 0 {
			c.r += eofMarkLen
			c.consumed += eofMarkLen
			e.done = true
			continue
		} else if i > 0 {
			e.clean = i
			continue
		}
		if len(b) >= eofMarkLen {
			e.clean = len(b) - (eofMarkLen - 1)
			continue
		}
		if c.r > 0 && c.r == c.w {
			c.r, c.w = 0, 0
		}
		if err := c.fill(); err != nil {
			e.err = fmt.Errorf("%w: EOF mark not seen after %d bytes: %w", ErrSnapshotTruncated, e.total, err)
			return 0, e.err
		}
	}
}
