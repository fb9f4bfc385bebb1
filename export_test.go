package psync

import "io"

// This file exposes unexported pieces of the package to the external tests
// (package psync_test), which cannot import them directly.

// NewCommandReaderSize is NewCommandReader with an initial buffer of size
// bytes, so tests can force refills, compaction and growth.
func NewCommandReaderSize(rd io.Reader, lim Limits, inline bool, size int) *CommandReader {
	return newCommandReader(rd, lim, inline, size)
}

// ReadSnapshotHeader exposes readSnapshotHeader.
func (c *CommandReader) ReadSnapshotHeader(maxSize int64) (int64, []byte, error) {
	return c.readSnapshotHeader(maxSize)
}

// SnapshotBody returns the reader a replica hands its Loader after
// ReadSnapshotHeader: a lenReader for size >= 0, an eofReader with mark.
func (c *CommandReader) SnapshotBody(size int64, mark []byte) io.Reader {
	if mark != nil {
		return &eofReader{c: c, mark: mark}
	}
	return &lenReader{c: c, left: size}
}

// PSYNCReply is psyncReply with exported fields.
type PSYNCReply struct {
	Full   bool
	ID     ReplID
	Offset int64
}

// ParsePSYNCReply exposes parsePSYNCReply.
func ParsePSYNCReply(line []byte) (PSYNCReply, error) {
	r, err := parsePSYNCReply(line)
	return PSYNCReply{Full: r.full, ID: r.id, Offset: r.offset}, err
}

var (
	AppendSnapshotHeader = appendSnapshotHeader
	AppendFullResync     = appendFullResync
	AppendContinue       = appendContinue
	EOFMarkLen           = eofMarkLen
)
