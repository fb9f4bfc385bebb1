package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Builders for hand-made RDB files used by the tests.

// rdbFile wraps body (everything after the header, before EOF) into a file
// with a valid checksum.
func rdbFile(version int, body ...[]byte) []byte {
	b := []byte("REDIS")
	b = append(b, byte('0'+version/1000), byte('0'+version/100%10), byte('0'+version/10%10), byte('0'+version%10))
	for _, p := range body {
		b = append(b, p...)
	}
	b = append(b, opEOF)
	if version >= 5 {
		b = binary.LittleEndian.AppendUint64(b, CRC64(0, b))
	}
	return b
}

// raw encodes s as a plain RDB string (never integer-encoded).
func raw(s string) []byte { return append(appendLen(nil, uint64(len(s))), s...) }

func rawb(s []byte) []byte { return append(appendLen(nil, uint64(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func lenb(n uint64) []byte { return appendLen(nil, n) }

// buildListpack encodes items (string or int) as a listpack.
func buildListpack(items ...any) []byte {
	lp := []byte{0, 0, 0, 0, 0, 0}
	for _, it := range items {
		switch v := it.(type) {
		case string:
			lp = lpAppend(lp, []byte(v))
		case int:
			lp = lpAppend(lp, []byte(itoa(int64(v))))
		}
	}
	lp = append(lp, 0xFF)
	binary.LittleEndian.PutUint32(lp, uint32(len(lp)))
	binary.LittleEndian.PutUint16(lp[4:], uint16(len(items)))
	return lp
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// buildZiplist encodes items (string or int64/int) as a ziplist.
func buildZiplist(items ...any) []byte {
	zl := make([]byte, 10)
	prev, last := 0, 10
	for _, it := range items {
		start := len(zl)
		if prev < 254 {
			zl = append(zl, byte(prev))
		} else {
			zl = append(zl, 254)
			zl = binary.LittleEndian.AppendUint32(zl, uint32(prev))
		}
		switch v := it.(type) {
		case string:
			n := len(v)
			switch {
			case n < 64:
				zl = append(zl, byte(n))
			case n < 16384:
				zl = append(zl, 0x40|byte(n>>8), byte(n))
			default:
				zl = append(zl, 0x80)
				zl = binary.BigEndian.AppendUint32(zl, uint32(n))
			}
			zl = append(zl, v...)
		case int:
			zl = zlInt(zl, int64(v))
		case int64:
			zl = zlInt(zl, v)
		}
		prev = len(zl) - start
		last = start
	}
	zl = append(zl, 0xFF)
	binary.LittleEndian.PutUint32(zl, uint32(len(zl)))
	binary.LittleEndian.PutUint32(zl[4:], uint32(last))
	binary.LittleEndian.PutUint16(zl[8:], uint16(len(items)))
	return zl
}

func zlInt(zl []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 12:
		return append(zl, 0xF1+byte(v))
	case v >= math.MinInt8 && v <= math.MaxInt8:
		return append(zl, 0xFE, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.LittleEndian.AppendUint16(append(zl, 0xC0), uint16(v))
	case v >= -1<<23 && v < 1<<23:
		return append(zl, 0xF0, byte(v), byte(v>>8), byte(v>>16))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.LittleEndian.AppendUint32(append(zl, 0xD0), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(zl, 0xE0), uint64(v))
}

func buildIntset(enc int, vals ...int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(enc))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vals)))
	for _, v := range vals {
		switch enc {
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		default:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

// buildZipmap encodes alternating fields and values as a zipmap.
func buildZipmap(kv ...string) []byte {
	b := []byte{byte(len(kv) / 2)}
	zlen := func(n int) {
		if n < 254 {
			b = append(b, byte(n))
		} else {
			b = append(b, 254)
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
		}
	}
	for i := 0; i < len(kv); i += 2 {
		zlen(len(kv[i]))
		b = append(b, kv[i]...)
		zlen(len(kv[i+1]))
		b = append(b, 1) // one free byte
		b = append(b, kv[i+1]...)
		b = append(b, 'X')
	}
	return append(b, 0xFF)
}

// readAll decodes data, returning cloned entries and the first error other
// than io.EOF and skipped unsupported types.
func readAll(t testing.TB, data []byte, opt ReaderOptions) ([]*Entry, *Reader, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(data), opt)
	var out []*Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		var ue *UnsupportedTypeError
		if errors.As(err, &ue) && ue.Skipped {
			continue
		}
		if err != nil {
			return out, r, err
		}
		out = append(out, e.Clone())
	}
}

// mustRead decodes data and fails the test on any error.
func mustRead(t testing.TB, data []byte) []*Entry {
	t.Helper()
	es, _, err := readAll(t, data, ReaderOptions{})
	require.NoError(t, err)
	return es
}

// normalize sorts set members, hash fields and zset members so entries can
// be compared regardless of the stored order.
func normalize(e *Entry) *Entry {
	c := e.Clone()
	slices.SortFunc(c.Set, bytes.Compare)
	slices.SortFunc(c.Hash, func(a, b HashField) int { return bytes.Compare(a.Field, b.Field) })
	slices.SortFunc(c.ZSet, func(a, b ZMember) int { return bytes.Compare(a.Member, b.Member) })
	return c
}

func byKey(es []*Entry) map[string]*Entry {
	m := map[string]*Entry{}
	for _, e := range es {
		m[string(e.Key)] = e
	}
	return m
}

func newRng() *rand.Rand { return rand.New(rand.NewPCG(7, 8)) }
