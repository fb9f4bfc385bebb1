package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// DefaultMaxLen is the default ReaderOptions.MaxLen: 512 MiB, the largest
// string Redis accepts (proto-max-bulk-len).
const DefaultMaxLen = 512 << 20

// maxVersion is the newest RDB version the Reader accepts (Redis 7.4).
const maxVersion = 12

const (
	readBufSize   = 64 << 10
	maxKeptBuffer = 16 << 20 // larger arenas are dropped between keys
)

// ReaderOptions configure a Reader. The zero value is ready to use.
type ReaderOptions struct {
	// MaxLen is the largest string length or element count accepted; larger
	// values fail with ErrTooLarge. 0 means DefaultMaxLen.
	MaxLen int64

	// SkipChecksum disables the CRC-64 check at the end of the file (and
	// the cost of computing it).
	SkipChecksum bool

	// SkipUnsupported makes Next skip keys whose type Entry cannot represent
	// (streams, module values) instead of returning an
	// *UnsupportedTypeError for them. Each skipped key is reported to
	// OnSkip when set. Values that cannot be skipped still stop the Reader
	// with an error.
	SkipUnsupported bool

	// OnSkip, when set, is called with the db, key and RDB type byte of each
	// key skipped under SkipUnsupported. key is only valid during the call.
	OnSkip func(db int, key []byte, rdbType byte)

	// OnResizeDB, when set, is called with each RESIZEDB hint, read right
	// after a SELECTDB: how many keys, and keys with an expiry, the file
	// announces for database db. A loader may presize its tables with them;
	// they are claims of the file, so cap what they make you allocate.
	OnResizeDB func(db int, keys, expires uint64)
}

// Reader decodes an RDB stream one key at a time.
//
// The Reader buffers its input (up to three 64 KiB buffers) and may read
// past the end of the RDB; after Next returns io.EOF, Buffered returns the
// bytes read but not consumed. Full buffers are checksummed on short-lived
// goroutines while decoding continues; each ends once its chunk is summed,
// so an abandoned Reader needs no Close. A Reader is not safe for
// concurrent use.
type Reader struct {
	rd      io.Reader
	buf     []byte
	r, w    int // unread bytes are buf[r:w]
	crcFrom int // buf[crcFrom:r] is consumed but not yet in crc
	// Full buffers are checksummed on another goroutine while decoding goes
	// on in the next buffer: bufs is a ring of buffers, bufDone[i] is closed
	// once bufs[i] may be overwritten, and pending once crc is up to date.
	bufs     [3][]byte
	bufDone  [3]chan struct{}
	cur      int
	pending  chan struct{}
	crc      uint64
	consumed int64 // bytes consumed before buf[0]
	rerr     error // error from rd, returned once the buffer is drained

	opt     ReaderOptions
	maxLen  uint64
	version int
	aux     map[string]string
	funcs   [][]byte
	db      int
	started bool
	err     error // sticky

	entry   Entry
	arena   []byte
	scratch []byte
	strs    [][]byte
}

// NewReader returns a Reader decoding from r. Nothing is read until the
// first call to Next.
func NewReader(r io.Reader, opt ReaderOptions) *Reader {
	m := opt.MaxLen
	if m <= 0 {
		m = DefaultMaxLen
	}
	rd := &Reader{rd: r, buf: make([]byte, readBufSize), opt: opt, maxLen: uint64(m), aux: map[string]string{}}
	rd.bufs[0] = rd.buf
	return rd
}

// Version returns the RDB version from the header, or 0 before the header
// has been read by the first call to Next.
func (r *Reader) Version() int { return r.version }

// Aux returns the AUX fields read so far (redis-ver, repl-id, repl-offset,
// repl-stream-db, ...). Values are as stored; integer-encoded values are
// rendered as decimal. The map belongs to the Reader; do not modify it.
func (r *Reader) Aux() map[string]string { return r.aux }

// Functions returns the payloads of the function libraries (FUNCTION2
// opcode, 0xF5) read so far, in order. Each payload is the library source
// Redis would pass to FUNCTION LOAD. The slices stay valid.
func (r *Reader) Functions() [][]byte { return r.funcs }

// Offset returns the number of input bytes consumed so far.
func (r *Reader) Offset() int64 { return r.consumed + int64(r.r) }

// Buffered returns the input read from the underlying reader but not
// consumed. After Next returns io.EOF these are the bytes that followed the
// RDB (for instance a diskless-transfer EOF mark and the command stream).
func (r *Reader) Buffered() []byte { return r.buf[r.r:r.w] }

// Next returns the next key. It returns io.EOF after the EOF opcode once the
// checksum has been verified.
//
// The returned Entry and all its slices are only valid until the next call
// to Next; copy what you keep (see Entry.Clone).
//
// After an *UnsupportedTypeError with Skipped set, Next may be called again
// and continues with the next key. Any other error is final: later calls
// return it again.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		if err := r.readHeader(); err != nil {
			r.err = err
			return nil, err
		}
		r.started = true
	}
	e, err := r.next()
	if err != nil {
		var ue *UnsupportedTypeError
		if !errors.As(err, &ue) || !ue.Skipped {
			r.err = err
		}
		return nil, err
	}
	return e, nil
}

func (r *Reader) readHeader() error {
	if err := r.fill(9); err != nil {
		if errors.Is(err, ErrTruncated) {
			return corruptf("short header")
		}
		return err
	}
	h := r.buf[r.r : r.r+9]
	if string(h[:5]) != "REDIS" {
		return corruptf("bad magic %q", h[:5])
	}
	v := 0
	for _, c := range h[5:] {
		if c < '0' || c > '9' {
			return corruptf("bad version %q", h[5:])
		}
		v = v*10 + int(c-'0')
	}
	if v < 1 || v > maxVersion {
		return fmt.Errorf("%w: %d (supported 1..%d)", ErrVersion, v, maxVersion)
	}
	r.version = v
	r.r += 9
	return nil
}

func (r *Reader) resetEntry() *Entry {
	e := &r.entry
	e.DB = r.db
	e.Key = nil
	e.Kind = KindString
	e.ExpireAt = 0
	e.Idle = -1
	e.Freq = -1
	e.String = nil
	e.List = e.List[:0]
	e.Set = e.Set[:0]
	e.Hash = e.Hash[:0]
	e.ZSet = e.ZSet[:0]
	r.arena = r.arena[:0]
	if cap(r.arena) > maxKeptBuffer {
		// Do not hold on to the memory of one huge value forever.
		r.arena, r.scratch = nil, nil
		e.List, e.Set, e.Hash, e.ZSet, r.strs = nil, nil, nil, nil, nil
	}
	return e
}

func (r *Reader) next() (*Entry, error) {
	e := r.resetEntry()
	for {
		op, err := r.readByte()
		if err != nil {
			return nil, err
		}
		switch op {
		case opEOF:
			return nil, r.finish()
		case opSelectDB:
			db, err := r.readCount("db number")
			if err != nil {
				return nil, err
			}
			if db > math.MaxInt32 {
				return nil, corruptf("db number %d", db)
			}
			r.db = db
			e.DB = db
		case opResizeDB, opSlotInfo:
			// Size hints (reported to OnResizeDB), or a slot's id and
			// sizes (not kept).
			k := 2
			if op == opSlotInfo {
				k = 3
			}
			var v [3]uint64
			for i := range k {
				n, enc, err := r.readLen()
				if err != nil || enc {
					if err == nil {
						err = corruptf("opcode 0x%02x: bad length encoding", op)
					}
					return nil, err
				}
				v[i] = n
			}
			if op == opResizeDB && r.opt.OnResizeDB != nil {
				r.opt.OnResizeDB(r.db, v[0], v[1])
			}
		case opAux:
			k, err := r.readString()
			if err != nil {
				return nil, fmt.Errorf("aux key: %w", err)
			}
			v, err := r.readString()
			if err != nil {
				return nil, fmt.Errorf("aux %q: %w", k, err)
			}
			r.aux[string(k)] = string(v)
			r.arena = r.arena[:0]
		case opFunction2:
			p, err := r.readString()
			if err != nil {
				return nil, fmt.Errorf("function: %w", err)
			}
			r.funcs = append(r.funcs, bytes.Clone(p))
			r.arena = r.arena[:0]
		case opFunctionOld:
			return nil, fmt.Errorf("%w: pre-GA FUNCTION opcode 0xF6 is not supported (Redis 7.0 GA refuses it too)", ErrCorrupt)
		case opModuleAux:
			if err := r.skipModuleAux(); err != nil {
				return nil, err
			}
		case opExpireMs:
			b, err := r.readFixed(8)
			if err != nil {
				return nil, err
			}
			e.ExpireAt = int64(binary.LittleEndian.Uint64(b))
		case opExpireSec:
			b, err := r.readFixed(4)
			if err != nil {
				return nil, err
			}
			e.ExpireAt = int64(binary.LittleEndian.Uint32(b)) * 1000
		case opIdle:
			n, _, err := r.readLen()
			if err != nil {
				return nil, err
			}
			e.Idle = int64(n & math.MaxInt64)
		case opFreq:
			b, err := r.readByte()
			if err != nil {
				return nil, err
			}
			e.Freq = int(b)
		default:
			if err := r.readKeyValue(e, op); err != nil {
				if ue, ok := err.(*UnsupportedTypeError); ok && ue.Skipped && r.opt.SkipUnsupported {
					if r.opt.OnSkip != nil {
						r.opt.OnSkip(ue.DB, ue.Key, ue.Type)
					}
					e = r.resetEntry()
					continue
				}
				return nil, err
			}
			return e, nil
		}
	}
}

// finish reads and checks the checksum after the EOF opcode.
func (r *Reader) finish() error {
	if r.version < 5 {
		return io.EOF
	}
	r.flushCRC()
	sum := r.crc
	b, err := r.readFixed(8)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	stored := binary.LittleEndian.Uint64(b)
	if stored != 0 && !r.opt.SkipChecksum && stored != sum {
		return fmt.Errorf("%w: stored %016x, computed %016x", ErrChecksum, stored, sum)
	}
	return io.EOF
}

// ---- buffered input with lazy CRC ----

// asyncCRCMin is the smallest consumed chunk checksummed in the background.
const asyncCRCMin = 16 << 10

// flushCRC brings crc up to date with every consumed byte.
func (r *Reader) flushCRC() {
	if r.pending != nil {
		<-r.pending
		r.pending = nil
	}
	if !r.opt.SkipChecksum && r.r > r.crcFrom {
		r.crc = CRC64(r.crc, r.buf[r.crcFrom:r.r])
	}
	r.crcFrom = r.r
}

// rotate hands the consumed part of the current buffer to a goroutine that
// adds it to crc (after the previous chunk), and moves the unread bytes to
// the next buffer of the ring.
func (r *Reader) rotate() {
	chunk := r.buf[r.crcFrom:r.r]
	prev := r.pending
	done := make(chan struct{})
	go func() {
		if prev != nil {
			<-prev
		}
		r.crc = CRC64(r.crc, chunk)
		close(done)
	}()
	r.pending = done
	r.bufDone[r.cur] = done
	next := (r.cur + 1) % len(r.bufs)
	if r.bufs[next] == nil {
		r.bufs[next] = make([]byte, readBufSize)
	}
	if d := r.bufDone[next]; d != nil {
		<-d
		r.bufDone[next] = nil
	}
	nb := r.bufs[next]
	m := copy(nb, r.buf[r.r:r.w])
	r.consumed += int64(r.r)
	r.buf, r.cur = nb, next
	r.r, r.w, r.crcFrom = 0, m, 0
}

// fill makes at least n (<= len(buf)) bytes available in buf[r:w].
func (r *Reader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if !r.opt.SkipChecksum && r.r-r.crcFrom >= asyncCRCMin {
		r.rotate()
	} else if r.r > 0 {
		r.flushCRC()
		copy(r.buf, r.buf[r.r:r.w])
		r.consumed += int64(r.r)
		r.w -= r.r
		r.r = 0
		r.crcFrom = 0
	}
	empty := 0
	for r.w < n {
		if r.rerr != nil {
			if r.rerr == io.EOF {
				return ErrTruncated
			}
			return r.rerr
		}
		m, err := r.rd.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			r.rerr = err
		}
		if m == 0 && err == nil {
			if empty++; empty >= 100 {
				r.rerr = io.ErrNoProgress
			}
		}
	}
	return nil
}

func (r *Reader) readByte() (byte, error) {
	if r.r < r.w {
		c := r.buf[r.r]
		r.r++
		return c, nil
	}
	if err := r.fill(1); err != nil {
		return 0, err
	}
	c := r.buf[r.r]
	r.r++
	return c, nil
}

// readFixed returns the next n (<= len(buf)) bytes, valid until the next read.
func (r *Reader) readFixed(n int) ([]byte, error) {
	if err := r.fill(n); err != nil {
		return nil, err
	}
	b := r.buf[r.r : r.r+n]
	r.r += n
	return b, nil
}

// appendBytes appends the next n bytes of input to dst, growing dst only as
// the bytes arrive.
func (r *Reader) appendBytes(dst []byte, n int) ([]byte, error) {
	if r.w-r.r >= n {
		dst = append(dst, r.buf[r.r:r.r+n]...)
		r.r += n
		return dst, nil
	}
	for n > 0 {
		if r.r == r.w {
			if err := r.fill(1); err != nil {
				return dst, err
			}
		}
		k := min(n, r.w-r.r)
		dst = append(dst, r.buf[r.r:r.r+k]...)
		r.r += k
		n -= k
	}
	return dst, nil
}

// readLen reads a length. enc reports the special string encodings (top
// bits 11), in which case n is the encoding number.
func (r *Reader) readLen() (n uint64, enc bool, err error) {
	var b byte
	if r.r < r.w {
		b = r.buf[r.r]
		r.r++
	} else if b, err = r.readByte(); err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := r.readByte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(c), false, nil
	case 2:
		switch b {
		case 0x80:
			p, err := r.readFixed(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.readFixed(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, corruptf("bad length byte 0x%02x", b)
	}
	return uint64(b & 0x3f), true, nil
}

// readCount reads a plain length and checks it against MaxLen.
func (r *Reader) readCount(what string) (int, error) {
	n, enc, err := r.readLen()
	if err != nil {
		return 0, err
	}
	if enc {
		return 0, corruptf("%s: unexpected string encoding", what)
	}
	if n > r.maxLen {
		return 0, fmt.Errorf("%w: %s %d > %d", ErrTooLarge, what, n, r.maxLen)
	}
	return int(n), nil
}

// readString reads a string into the arena and returns it (capacity
// clipped), valid until the arena is reset.
func (r *Reader) readString() ([]byte, error) {
	start := len(r.arena)
	var err error
	r.arena, err = r.appendString(r.arena)
	if err != nil {
		r.arena = r.arena[:start]
		return nil, err
	}
	return r.arena[start:len(r.arena):len(r.arena)], nil
}

// appendString reads a string and appends its decoded bytes to dst.
func (r *Reader) appendString(dst []byte) ([]byte, error) {
	n, enc, err := r.readLen()
	if err != nil {
		return dst, err
	}
	if !enc {
		if n > r.maxLen {
			return dst, fmt.Errorf("%w: string length %d > %d", ErrTooLarge, n, r.maxLen)
		}
		return r.appendBytes(dst, int(n))
	}
	switch n {
	case 0:
		c, err := r.readByte()
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, int64(int8(c)), 10), nil
	case 1:
		p, err := r.readFixed(2)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, int64(int16(binary.LittleEndian.Uint16(p))), 10), nil
	case 2:
		p, err := r.readFixed(4)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(p))), 10), nil
	case 3:
		clen, err := r.readCount("lzf compressed length")
		if err != nil {
			return dst, err
		}
		ulen, err := r.readCount("lzf uncompressed length")
		if err != nil {
			return dst, err
		}
		r.scratch, err = r.appendBytes(r.scratch[:0], clen)
		if err != nil {
			return dst, err
		}
		return lzfDecompress(dst, r.scratch, ulen)
	}
	return dst, corruptf("unknown string encoding %d", n)
}

// skipString consumes a string without keeping it.
func (r *Reader) skipString() error {
	mark := len(r.arena)
	_, err := r.readString()
	r.arena = r.arena[:mark]
	return err
}

// readDoubleString reads a zset score in the old text form.
func (r *Reader) readDoubleString() (float64, error) {
	n, err := r.readByte()
	if err != nil {
		return 0, err
	}
	switch n {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	p, err := r.readFixed(int(n))
	if err != nil {
		return 0, err
	}
	return parseScore(p)
}

func parseScore(p []byte) (float64, error) {
	if v, ok := parseSmallInt(p); ok {
		return float64(v), nil
	}
	f, err := strconv.ParseFloat(string(p), 64)
	if err != nil {
		return 0, corruptf("bad score %q", p)
	}
	return f, nil
}

// parseSmallInt parses a canonical decimal integer of at most 15 digits.
func parseSmallInt(p []byte) (int64, bool) {
	if len(p) == 0 || len(p) > 16 {
		return 0, false
	}
	neg := p[0] == '-'
	d := p
	if neg {
		d = p[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		if v == 0 {
			return 0, false
		}
		v = -v
	}
	return v, true
}

// ---- values ----

func (r *Reader) unsupported(e *Entry, t byte, skipped bool) error {
	return &UnsupportedTypeError{DB: e.DB, Key: bytes.Clone(e.Key), Type: t, Skipped: skipped}
}

func (r *Reader) readKeyValue(e *Entry, t byte) error {
	key, err := r.readString()
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	e.Key = key
	if err := r.readValue(e, t); err != nil {
		if _, ok := err.(*UnsupportedTypeError); ok {
			return err
		}
		return fmt.Errorf("key %q (type %d): %w", key, t, err)
	}
	return nil
}

func (r *Reader) readValue(e *Entry, t byte) error {
	switch t {
	case typeString:
		e.Kind = KindString
		s, err := r.readString()
		e.String = s
		return err
	case typeListLinked:
		e.Kind = KindList
		n, err := r.readCount("list length")
		if err != nil {
			return err
		}
		e.List, err = r.readStrings(e.List, n)
		return err
	case typeSet:
		e.Kind = KindSet
		n, err := r.readCount("set size")
		if err != nil {
			return err
		}
		e.Set, err = r.readStrings(e.Set, n)
		return err
	case typeZSet, typeZSet2:
		e.Kind = KindZSet
		n, err := r.readCount("zset size")
		if err != nil {
			return err
		}
		for range n {
			m, err := r.readString()
			if err != nil {
				return err
			}
			var s float64
			if t == typeZSet {
				s, err = r.readDoubleString()
			} else {
				var p []byte
				p, err = r.readFixed(8)
				if err == nil {
					s = math.Float64frombits(binary.LittleEndian.Uint64(p))
				}
			}
			if err != nil {
				return err
			}
			e.ZSet = append(e.ZSet, ZMember{Member: m, Score: s})
		}
		return nil
	case typeHash:
		e.Kind = KindHash
		n, err := r.readCount("hash size")
		if err != nil {
			return err
		}
		for range n {
			f, err := r.readString()
			if err != nil {
				return err
			}
			v, err := r.readString()
			if err != nil {
				return err
			}
			e.Hash = append(e.Hash, HashField{Field: f, Value: v})
		}
		return nil
	case typeListQuicklist2, typeListQuicklist:
		e.Kind = KindList
		n, err := r.readCount("quicklist nodes")
		if err != nil {
			return err
		}
		for range n {
			container := uint64(containerPacked)
			if t == typeListQuicklist2 {
				c, enc, err := r.readLen()
				if err != nil {
					return err
				}
				if enc || (c != containerPlain && c != containerPacked) {
					return corruptf("bad quicklist node container %d", c)
				}
				container = c
			}
			blob, err := r.readString()
			if err != nil {
				return err
			}
			switch {
			case container == containerPlain:
				e.List = append(e.List, blob)
			case t == typeListQuicklist2:
				e.List, err = r.decodeListpack(e.List, blob)
			default:
				e.List, err = r.decodeZiplist(e.List, blob)
			}
			if err != nil {
				return err
			}
		}
		return nil
	case typeListZiplist:
		e.Kind = KindList
		return r.blob(&e.List, blobZiplist)
	case typeSetIntset:
		e.Kind = KindSet
		return r.blob(&e.Set, blobIntset)
	case typeSetListpack:
		e.Kind = KindSet
		return r.blob(&e.Set, blobListpack)
	case typeHashListpack, typeHashZiplist, typeHashZipmap:
		e.Kind = KindHash
		dec := blobListpack
		switch t {
		case typeHashZiplist:
			dec = blobZiplist
		case typeHashZipmap:
			dec = blobZipmap
		}
		if err := r.blob(&r.strs, dec); err != nil {
			return err
		}
		if len(r.strs)%2 != 0 {
			return corruptf("hash with odd element count %d", len(r.strs))
		}
		for i := 0; i < len(r.strs); i += 2 {
			e.Hash = append(e.Hash, HashField{Field: r.strs[i], Value: r.strs[i+1]})
		}
		return nil
	case typeZSetListpack, typeZSetZiplist:
		e.Kind = KindZSet
		dec := blobListpack
		if t == typeZSetZiplist {
			dec = blobZiplist
		}
		if err := r.blob(&r.strs, dec); err != nil {
			return err
		}
		if len(r.strs)%2 != 0 {
			return corruptf("zset with odd element count %d", len(r.strs))
		}
		for i := 0; i < len(r.strs); i += 2 {
			s, err := parseScore(r.strs[i+1])
			if err != nil {
				return err
			}
			e.ZSet = append(e.ZSet, ZMember{Member: r.strs[i], Score: s})
		}
		return nil
	case typeStreamListpacks, typeStreamLP2, typeStreamLP3:
		if err := r.skipStream(t); err != nil {
			return err
		}
		return r.unsupported(e, t, true)
	case typeModule2:
		if _, _, err := r.readLen(); err != nil { // module id
			return err
		}
		if err := r.skipModuleValue(); err != nil {
			return err
		}
		return r.unsupported(e, t, true)
	case typeModulePreGA, typeHashMetaPreGA, typeHashLPExPreGA, typeHashMeta, typeHashLPEx:
		return r.unsupported(e, t, false)
	}
	return corruptf("unknown value type %d", t)
}

// Encoded container kinds for blob.
const (
	blobListpack = iota
	blobZiplist
	blobIntset
	blobZipmap
)

// blob reads one string holding an encoded container and decodes it,
// replacing the elements in *dst.
func (r *Reader) blob(dst *[][]byte, kind int) error {
	b, err := r.readString()
	if err != nil {
		return err
	}
	d := (*dst)[:0]
	switch kind {
	case blobListpack:
		d, err = r.decodeListpack(d, b)
	case blobZiplist:
		d, err = r.decodeZiplist(d, b)
	case blobIntset:
		d, err = r.decodeIntset(d, b)
	default:
		d, err = r.decodeZipmap(d, b)
	}
	*dst = d
	return err
}

func (r *Reader) readStrings(dst [][]byte, n int) ([][]byte, error) {
	for range n {
		s, err := r.readString()
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// skipStream consumes a stream value (types 15, 19, 21).
func (r *Reader) skipStream(t byte) error {
	lens := func(k int) error {
		for range k {
			if _, enc, err := r.readLen(); err != nil || enc {
				if err == nil {
					err = corruptf("stream: bad length encoding")
				}
				return err
			}
		}
		return nil
	}
	nodes, err := r.readCount("stream listpacks")
	if err != nil {
		return err
	}
	for range nodes {
		if err := r.skipString(); err != nil { // master id
			return err
		}
		if err := r.skipString(); err != nil { // listpack
			return err
		}
	}
	// length, last id (ms, seq) and, from type 19, first id, max deleted id
	// and entries added.
	k := 3
	if t >= typeStreamLP2 {
		k += 5
	}
	if err := lens(k); err != nil {
		return err
	}
	groups, err := r.readCount("stream groups")
	if err != nil {
		return err
	}
	for range groups {
		if err := r.skipString(); err != nil {
			return err
		}
		k := 2 // last id
		if t >= typeStreamLP2 {
			k++ // entries read
		}
		if err := lens(k); err != nil {
			return err
		}
		pel, err := r.readCount("stream pel")
		if err != nil {
			return err
		}
		for range pel {
			if _, err := r.readFixed(16 + 8); err != nil { // id, delivery time
				return err
			}
			if err := lens(1); err != nil { // delivery count
				return err
			}
		}
		consumers, err := r.readCount("stream consumers")
		if err != nil {
			return err
		}
		for range consumers {
			if err := r.skipString(); err != nil {
				return err
			}
			k := 8 // seen time
			if t >= typeStreamLP3 {
				k += 8 // active time
			}
			if _, err := r.readFixed(k); err != nil {
				return err
			}
			cpel, err := r.readCount("stream consumer pel")
			if err != nil {
				return err
			}
			for range cpel {
				if _, err := r.readFixed(16); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// skipModuleValue consumes the opcode-tagged values a module wrote, up to
// the EOF opcode.
func (r *Reader) skipModuleValue() error {
	for {
		op, enc, err := r.readLen()
		if err != nil {
			return err
		}
		if enc {
			return corruptf("module value: bad opcode encoding")
		}
		switch op {
		case moduleOpEOF:
			return nil
		case moduleOpSInt, moduleOpUInt:
			if _, _, err := r.readLen(); err != nil {
				return err
			}
		case moduleOpFloat:
			if _, err := r.readFixed(4); err != nil {
				return err
			}
		case moduleOpDouble:
			if _, err := r.readFixed(8); err != nil {
				return err
			}
		case moduleOpString:
			if err := r.skipString(); err != nil {
				return err
			}
		default:
			return corruptf("module value: unknown opcode %d", op)
		}
	}
}

// skipModuleAux consumes a MODULE_AUX record.
func (r *Reader) skipModuleAux() error {
	if _, _, err := r.readLen(); err != nil { // module id
		return err
	}
	whenOp, _, err := r.readLen()
	if err != nil {
		return err
	}
	if whenOp != moduleOpUInt {
		return corruptf("module aux: bad when opcode %d", whenOp)
	}
	if _, _, err := r.readLen(); err != nil {
		return err
	}
	if err := r.skipModuleValue(); err != nil {
		return fmt.Errorf("module aux: %w", err)
	}
	return nil
}
