package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// DefaultListNodeSize is the default WriterOptions.ListNodeSize: 8 KiB, the
// node size Redis uses by default (list-max-listpack-size -2).
const DefaultListNodeSize = 8 << 10

const (
	writeBufSize  = 64 << 10
	directWriteAt = 16 << 10 // strings at least this long bypass the buffer
	lzfMinLen     = 21       // Redis only compresses strings longer than 20 bytes
)

// AuxField is one AUX key/value pair of an RDB header.
type AuxField struct {
	Key, Value string
}

// WriterOptions configure a Writer. The zero value writes a version 10 RDB
// (what Redis 7.0 writes and the newest it loads) with no AUX fields.
type WriterOptions struct {
	// Version is the RDB version written in the header, 10..12. 0 means 10.
	// The value encodings written are the same for every version.
	Version int

	// Aux fields are written right after the header, in order. Redis reads
	// redis-ver, redis-bits, ctime, used-mem, repl-stream-db, repl-id,
	// repl-offset and aof-base; all are optional.
	Aux []AuxField

	// Compress LZF-compresses strings longer than 20 bytes when that saves
	// space, as Redis does with rdbcompression yes. Off by default: it costs
	// CPU and the transfer is usually over a fast link.
	Compress bool

	// ListNodeSize is the largest listpack node written for a list, in
	// bytes; a larger element gets a node of its own. 0 means
	// DefaultListNodeSize.
	ListNodeSize int
}

// Writer encodes an RDB stream. Call WriteAux, SelectDB and WriteEntry in
// file order, then Close. It buffers output; errors from the underlying
// writer are sticky. A Writer is not safe for concurrent use.
type Writer struct {
	w        io.Writer
	buf      []byte
	crc      uint64
	err      error
	closed   bool
	compress bool
	nodeSize int
	lp       []byte
	lzf      []byte
	htab     *[1 << lzfHashLog]int32
}

// NewWriter writes the RDB header and the AUX fields of opt to w and
// returns a Writer for the rest.
func NewWriter(w io.Writer, opt WriterOptions) (*Writer, error) {
	v := opt.Version
	if v == 0 {
		v = 10
	}
	if v < 10 || v > maxVersion {
		return nil, fmt.Errorf("%w: cannot write version %d (10..%d)", ErrVersion, v, maxVersion)
	}
	ns := opt.ListNodeSize
	if ns <= 0 {
		ns = DefaultListNodeSize
	}
	wr := &Writer{w: w, buf: make([]byte, 0, writeBufSize+1024), compress: opt.Compress, nodeSize: ns}
	wr.buf = fmt.Appendf(wr.buf, "REDIS%04d", v)
	for _, a := range opt.Aux {
		if err := wr.WriteAux(a.Key, a.Value); err != nil {
			return nil, err
		}
	}
	return wr, nil
}

// WriteAux writes one AUX field. Integer values are stored in Redis's
// integer encoding when they fit, as Redis does.
func (w *Writer) WriteAux(key, value string) error {
	if err := w.check(); err != nil {
		return err
	}
	w.buf = append(w.buf, opAux)
	w.buf = appendStringEnc(w.buf, []byte(key))
	w.putString([]byte(value))
	return w.maybeFlush()
}

// WriteFunction writes a function library (FUNCTION2 opcode) with the given
// payload, as returned by Reader.Functions. Redis expects functions before
// the first SELECTDB.
func (w *Writer) WriteFunction(payload []byte) error {
	if err := w.check(); err != nil {
		return err
	}
	w.buf = append(w.buf, opFunction2)
	w.putString(payload)
	return w.maybeFlush()
}

// SelectDB starts database db. keys and expires are the number of keys in
// it and how many have an expiry; Redis uses them only to presize its
// tables, so estimates are fine.
func (w *Writer) SelectDB(db int, keys, expires uint64) error {
	if err := w.check(); err != nil {
		return err
	}
	if db < 0 || db > math.MaxInt32 {
		return fmt.Errorf("%w: db %d", ErrInvalidEntry, db)
	}
	w.buf = append(w.buf, opSelectDB)
	w.buf = appendLen(w.buf, uint64(db))
	w.buf = append(w.buf, opResizeDB)
	w.buf = appendLen(w.buf, keys)
	w.buf = appendLen(w.buf, expires)
	return w.maybeFlush()
}

// WriteEntry writes one key with its expiry, IDLE (when Idle > 0) and FREQ
// (when Freq > 0). e.DB is ignored: call SelectDB to change databases.
// Lists are written as quicklist 2 (listpack nodes), sets as type 2, hashes
// as type 4, sorted sets as type 5, which Redis 7.0 converts to its compact
// encodings on load as its configuration says.
func (w *Writer) WriteEntry(e *Entry) error {
	if err := w.check(); err != nil {
		return err
	}
	if e.ExpireAt < 0 {
		return fmt.Errorf("%w: negative expiry for key %q", ErrInvalidEntry, e.Key)
	}
	if e.ExpireAt != 0 {
		w.buf = append(w.buf, opExpireMs)
		w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(e.ExpireAt))
	}
	if e.Idle > 0 {
		w.buf = append(w.buf, opIdle)
		w.buf = appendLen(w.buf, uint64(e.Idle))
	}
	if e.Freq > 0 {
		if e.Freq > 255 {
			return fmt.Errorf("%w: freq %d > 255 for key %q", ErrInvalidEntry, e.Freq, e.Key)
		}
		w.buf = append(w.buf, opFreq, byte(e.Freq))
	}
	switch e.Kind {
	case KindString:
		w.buf = append(w.buf, typeString)
		w.putString(e.Key)
		w.putString(e.String)
	case KindList:
		w.buf = append(w.buf, typeListQuicklist2)
		w.putString(e.Key)
		w.putList(e.List)
	case KindSet:
		w.buf = append(w.buf, typeSet)
		w.putString(e.Key)
		w.buf = appendLen(w.buf, uint64(len(e.Set)))
		for _, m := range e.Set {
			w.putString(m)
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
	case KindHash:
		w.buf = append(w.buf, typeHash)
		w.putString(e.Key)
		w.buf = appendLen(w.buf, uint64(len(e.Hash)))
		for _, f := range e.Hash {
			w.putString(f.Field)
			w.putString(f.Value)
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
	case KindZSet:
		w.buf = append(w.buf, typeZSet2)
		w.putString(e.Key)
		w.buf = appendLen(w.buf, uint64(len(e.ZSet)))
		for _, m := range e.ZSet {
			if math.IsNaN(m.Score) {
				return fmt.Errorf("%w: NaN score in key %q", ErrInvalidEntry, e.Key)
			}
			w.putString(m.Member)
			w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(m.Score))
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: unknown kind %d for key %q", ErrInvalidEntry, e.Kind, e.Key)
	}
	return w.maybeFlush()
}

// Close writes the EOF opcode and the checksum and flushes. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if err := w.check(); err != nil {
		return err
	}
	w.buf = append(w.buf, opEOF)
	w.crc = CRC64(w.crc, w.buf)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, w.crc)
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	w.closed = true
	if err != nil {
		w.err = err
	}
	return err
}

var errClosed = errors.New("rdb: writer closed")

func (w *Writer) check() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return w.err
	}
	w.crc = CRC64(w.crc, w.buf)
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) maybeFlush() error {
	if len(w.buf) >= writeBufSize {
		return w.flush()
	}
	return w.err
}

// putRaw appends p to the output, writing large payloads directly.
func (w *Writer) putRaw(p []byte) {
	if len(p) < directWriteAt {
		w.buf = append(w.buf, p...)
		return
	}
	if w.flush() != nil {
		return
	}
	w.crc = CRC64(w.crc, p)
	if _, err := w.w.Write(p); err != nil && w.err == nil {
		w.err = err
	}
}

// putString writes s as an RDB string: integer-encoded when it is a
// canonical 32-bit integer, LZF-compressed when enabled and worthwhile,
// raw otherwise.
func (w *Writer) putString(s []byte) {
	if len(s) <= 11 && len(s) > 0 {
		if v, ok := parseCanonicalInt(s); ok && v >= math.MinInt32 && v <= math.MaxInt32 {
			w.buf = appendIntEnc(w.buf, v)
			return
		}
	}
	if w.compress && len(s) >= lzfMinLen {
		if w.htab == nil {
			w.htab = new([1 << lzfHashLog]int32)
		}
		w.lzf = lzfCompress(w.lzf[:0], s, w.htab)
		if len(w.lzf) < len(s)-4 {
			w.buf = append(w.buf, 0xC3)
			w.buf = appendLen(w.buf, uint64(len(w.lzf)))
			w.buf = appendLen(w.buf, uint64(len(s)))
			w.putRaw(w.lzf)
			return
		}
	}
	w.buf = appendLen(w.buf, uint64(len(s)))
	w.putRaw(s)
}

// plainNodeMin is the element size from which Redis 7.0 uses plain
// quicklist nodes (its default list packed threshold, 1 GiB).
const plainNodeMin = 1 << 30

// putList writes a quicklist 2 body: listpack nodes of at most nodeSize
// bytes; an element too large for one gets a listpack node of its own, or
// a plain node from 1 GiB, as Redis 7.0 does.
func (w *Writer) putList(list [][]byte) {
	// Count nodes first so the count can precede them; this mirrors the
	// loop below.
	nodes, cur := 0, 0
	for _, v := range list {
		es := lpEntrySize(v)
		if lpHeaderSize+es+1 > w.nodeSize {
			if cur > 0 {
				nodes++
				cur = 0
			}
			nodes++
			continue
		}
		if cur > 0 && cur+es+1 > w.nodeSize {
			nodes++
			cur = 0
		}
		if cur == 0 {
			cur = lpHeaderSize
		}
		cur += es
	}
	if cur > 0 {
		nodes++
	}
	w.buf = appendLen(w.buf, uint64(nodes))
	w.lp = w.lp[:0]
	cnt := 0
	emit := func() {
		if cnt == 0 {
			return
		}
		w.lp = append(w.lp, 0xFF)
		binary.LittleEndian.PutUint32(w.lp, uint32(len(w.lp)))
		binary.LittleEndian.PutUint16(w.lp[4:], uint16(min(cnt, 65535)))
		w.buf = appendLen(w.buf, containerPacked)
		w.putString(w.lp)
		w.lp = w.lp[:0]
		cnt = 0
		w.maybeFlush()
	}
	for _, v := range list {
		es := lpEntrySize(v)
		if lpHeaderSize+es+1 > w.nodeSize {
			emit()
			if len(v) >= plainNodeMin {
				w.buf = appendLen(w.buf, containerPlain)
				w.putString(v)
				w.maybeFlush()
				continue
			}
			// A node of its own, as Redis 7.0 stores such elements.
			w.lp = lpAppend(append(w.lp[:0], 0, 0, 0, 0, 0, 0), v)
			cnt = 1
			emit()
			continue
		}
		if cnt > 0 && len(w.lp)+es+1 > w.nodeSize {
			emit()
		}
		if cnt == 0 {
			w.lp = append(w.lp[:0], 0, 0, 0, 0, 0, 0)
		}
		w.lp = lpAppend(w.lp, v)
		cnt++
	}
	emit()
}

const lpHeaderSize = 6

// lpEntrySize is the encoded size of v as a listpack entry, back-length
// included; it matches lpAppend.
func lpEntrySize(v []byte) int {
	var l int
	if iv, ok := parseCanonicalInt(v); ok {
		l = lpIntSize(iv)
	} else {
		switch n := len(v); {
		case n < 64:
			l = 1 + n
		case n < 4096:
			l = 2 + n
		default:
			l = 5 + n
		}
	}
	return l + lpBacklenSize(l)
}

func lpIntSize(v int64) int {
	switch {
	case v >= 0 && v <= 127:
		return 1
	case v >= -4096 && v <= 4095:
		return 2
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return 3
	case v >= -1<<23 && v < 1<<23:
		return 4
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return 5
	}
	return 9
}

// lpAppend appends v as a listpack entry, integer-encoded when v is a
// canonical integer, as Redis does.
func lpAppend(lp, v []byte) []byte {
	start := len(lp)
	if iv, ok := parseCanonicalInt(v); ok {
		switch lpIntSize(iv) {
		case 1:
			lp = append(lp, byte(iv))
		case 2:
			u := uint16(iv) & 0x1fff
			lp = append(lp, 0xC0|byte(u>>8), byte(u))
		case 3:
			lp = append(lp, 0xF1)
			lp = binary.LittleEndian.AppendUint16(lp, uint16(iv))
		case 4:
			lp = append(lp, 0xF2, byte(iv), byte(iv>>8), byte(iv>>16))
		case 5:
			lp = append(lp, 0xF3)
			lp = binary.LittleEndian.AppendUint32(lp, uint32(iv))
		default:
			lp = append(lp, 0xF4)
			lp = binary.LittleEndian.AppendUint64(lp, uint64(iv))
		}
	} else {
		switch n := len(v); {
		case n < 64:
			lp = append(lp, 0x80|byte(n))
		case n < 4096:
			lp = append(lp, 0xE0|byte(n>>8), byte(n))
		default:
			lp = append(lp, 0xF0)
			lp = binary.LittleEndian.AppendUint32(lp, uint32(n))
		}
		lp = append(lp, v...)
	}
	l := len(lp) - start
	bl := lpBacklenSize(l)
	if bl == 1 {
		return append(lp, byte(l))
	}
	lp = append(lp, byte(l>>(7*(bl-1))))
	for i := 1; i < bl; i++ {
		lp = append(lp, byte(l>>(7*(bl-1-i)))&127|128)
	}
	return lp
}

// parseCanonicalInt parses s when it is exactly the decimal form of an
// int64 (no sign on zero, no leading zeros, no spaces).
func parseCanonicalInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if v, ok := parseSmallInt(s); ok {
		return v, true
	}
	if len(s) < 16 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return 0, false
	}
	var tmp [20]byte
	if string(strconv.AppendInt(tmp[:0], v, 10)) != string(s) {
		return 0, false
	}
	return v, true
}

func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		b = append(b, 0x80)
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
	b = append(b, 0x81)
	return binary.BigEndian.AppendUint64(b, n)
}

func appendIntEnc(b []byte, v int64) []byte {
	switch {
	case v >= math.MinInt8 && v <= math.MaxInt8:
		return append(b, 0xC0, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return append(b, 0xC1, byte(v), byte(v>>8))
	}
	return append(b, 0xC2, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

// appendStringEnc appends s as an RDB string without compression.
func appendStringEnc(b, s []byte) []byte {
	if len(s) <= 11 && len(s) > 0 {
		if v, ok := parseCanonicalInt(s); ok && v >= math.MinInt32 && v <= math.MaxInt32 {
			return appendIntEnc(b, v)
		}
	}
	b = appendLen(b, uint64(len(s)))
	return append(b, s...)
}
