package rdb

import (
	"encoding/binary"
	"strconv"
)

// The decoders below parse the compact containers Redis stores as strings
// (listpack, ziplist, intset, zipmap). They append one slice per element to
// dst. String elements point into b; integer elements are rendered as
// decimal text into the arena. Every length is checked against b before use.

// intStr renders v into the arena.
func (r *Reader) intStr(v int64) []byte {
	s := len(r.arena)
	r.arena = strconv.AppendInt(r.arena, v, 10)
	return r.arena[s:len(r.arena):len(r.arena)]
}

// lpBacklenSize is the size of a listpack entry's back-length field for an
// entry of l bytes (encoding plus data).
func lpBacklenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// lpBacklenOK reports whether b holds the back-length encoding of l.
func lpBacklenOK(b []byte, l int) bool {
	n := len(b)
	if n == 1 {
		return b[0] == byte(l)
	}
	if b[0] != byte(l>>(7*(n-1))) {
		return false
	}
	for i := 1; i < n; i++ {
		if b[i] != byte(l>>(7*(n-1-i)))&127|128 {
			return false
		}
	}
	return true
}

func (r *Reader) decodeListpack(dst [][]byte, b []byte) ([][]byte, error) {
	if len(b) < 7 {
		return dst, corruptf("listpack: %d bytes", len(b))
	}
	if int(binary.LittleEndian.Uint32(b)) != len(b) {
		return dst, corruptf("listpack: header says %d bytes, have %d", binary.LittleEndian.Uint32(b), len(b))
	}
	count := int(binary.LittleEndian.Uint16(b[4:]))
	end := len(b) - 1
	if b[end] != 0xFF {
		return dst, corruptf("listpack: missing end byte")
	}
	p, n := 6, 0
	for p < end {
		c := b[p]
		hdr, slen := 1, 0
		var v int64
		isInt := true
		switch {
		case c < 0x80:
			v = int64(c)
		case c&0xC0 == 0x80:
			slen = int(c & 0x3f)
			isInt = false
		case c&0xE0 == 0xC0:
			if p+2 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			u := int64(c&0x1f)<<8 | int64(b[p+1])
			if u >= 1<<12 {
				u -= 1 << 13
			}
			v, hdr = u, 2
		case c&0xF0 == 0xE0:
			if p+2 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			slen = int(c&0x0f)<<8 | int(b[p+1])
			hdr, isInt = 2, false
		case c == 0xF0:
			if p+5 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			u := binary.LittleEndian.Uint32(b[p+1:])
			if u > uint32(end) {
				return dst, corruptf("listpack: string length %d overflows", u)
			}
			slen, hdr, isInt = int(u), 5, false
		case c == 0xF1:
			if p+3 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			v, hdr = int64(int16(binary.LittleEndian.Uint16(b[p+1:]))), 3
		case c == 0xF2:
			if p+4 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			u := uint32(b[p+1]) | uint32(b[p+2])<<8 | uint32(b[p+3])<<16
			v, hdr = int64(int32(u<<8)>>8), 4
		case c == 0xF3:
			if p+5 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			v, hdr = int64(int32(binary.LittleEndian.Uint32(b[p+1:]))), 5
		case c == 0xF4:
			if p+9 > end {
				return dst, corruptf("listpack: truncated entry")
			}
			v, hdr = int64(binary.LittleEndian.Uint64(b[p+1:])), 9
		default:
			return dst, corruptf("listpack: bad encoding byte 0x%02x", c)
		}
		l := hdr + slen
		if l > end-p {
			return dst, corruptf("listpack: entry overflows")
		}
		bl := lpBacklenSize(l)
		if bl > end-p-l || !lpBacklenOK(b[p+l:p+l+bl], l) {
			return dst, corruptf("listpack: bad back-length")
		}
		if isInt {
			dst = append(dst, r.intStr(v))
		} else {
			dst = append(dst, b[p+hdr:p+l:p+l])
		}
		p += l + bl
		n++
	}
	if count != 65535 && count != n {
		return dst, corruptf("listpack: header says %d entries, found %d", count, n)
	}
	return dst, nil
}

func (r *Reader) decodeZiplist(dst [][]byte, b []byte) ([][]byte, error) {
	if len(b) < 11 {
		return dst, corruptf("ziplist: %d bytes", len(b))
	}
	if int(binary.LittleEndian.Uint32(b)) != len(b) {
		return dst, corruptf("ziplist: header says %d bytes, have %d", binary.LittleEndian.Uint32(b), len(b))
	}
	tail := int(binary.LittleEndian.Uint32(b[4:]))
	count := int(binary.LittleEndian.Uint16(b[8:]))
	end := len(b) - 1
	if b[end] != 0xFF {
		return dst, corruptf("ziplist: missing end byte")
	}
	p, n, prev, last := 10, 0, 0, 10
	for p < end {
		start := p
		var pl int
		if b[p] < 254 {
			pl = int(b[p])
			p++
		} else if b[p] == 254 {
			if p+5 > end {
				return dst, corruptf("ziplist: truncated entry")
			}
			pl = int(binary.LittleEndian.Uint32(b[p+1:]))
			p += 5
		} else {
			return dst, corruptf("ziplist: bad prevlen")
		}
		if pl != prev {
			return dst, corruptf("ziplist: prevlen %d, previous entry %d bytes", pl, prev)
		}
		if p >= end {
			return dst, corruptf("ziplist: truncated entry")
		}
		c := b[p]
		hdr, slen, dlen := 1, 0, 0
		isInt := true
		switch c >> 6 {
		case 0:
			slen, isInt = int(c&0x3f), false
		case 1:
			if p+2 > end {
				return dst, corruptf("ziplist: truncated entry")
			}
			slen, hdr, isInt = int(c&0x3f)<<8|int(b[p+1]), 2, false
		case 2:
			if c != 0x80 || p+5 > end {
				return dst, corruptf("ziplist: bad string encoding")
			}
			u := binary.BigEndian.Uint32(b[p+1:])
			if u > uint32(end) {
				return dst, corruptf("ziplist: string length %d overflows", u)
			}
			slen, hdr, isInt = int(u), 5, false
		default:
			switch {
			case c == 0xC0:
				dlen = 2
			case c == 0xD0:
				dlen = 4
			case c == 0xE0:
				dlen = 8
			case c == 0xF0:
				dlen = 3
			case c == 0xFE:
				dlen = 1
			case c >= 0xF1 && c <= 0xFD:
			default:
				return dst, corruptf("ziplist: bad encoding byte 0x%02x", c)
			}
		}
		l := hdr + slen + dlen
		if l > end-p {
			return dst, corruptf("ziplist: entry overflows")
		}
		d := b[p+hdr : p+l : p+l]
		if isInt {
			var v int64
			switch c {
			case 0xC0:
				v = int64(int16(binary.LittleEndian.Uint16(d)))
			case 0xD0:
				v = int64(int32(binary.LittleEndian.Uint32(d)))
			case 0xE0:
				v = int64(binary.LittleEndian.Uint64(d))
			case 0xF0:
				u := uint32(d[0]) | uint32(d[1])<<8 | uint32(d[2])<<16
				v = int64(int32(u<<8) >> 8)
			case 0xFE:
				v = int64(int8(d[0]))
			default:
				v = int64(c&0x0f) - 1
			}
			dst = append(dst, r.intStr(v))
		} else {
			dst = append(dst, d)
		}
		p += l
		prev = p - start
		last = start
		n++
	}
	if tail != last {
		return dst, corruptf("ziplist: tail offset %d, last entry at %d", tail, last)
	}
	if count != 65535 && count != n {
		return dst, corruptf("ziplist: header says %d entries, found %d", count, n)
	}
	return dst, nil
}

func (r *Reader) decodeIntset(dst [][]byte, b []byte) ([][]byte, error) {
	if len(b) < 8 {
		return dst, corruptf("intset: %d bytes", len(b))
	}
	enc := uint64(binary.LittleEndian.Uint32(b))
	n := uint64(binary.LittleEndian.Uint32(b[4:]))
	if enc != 2 && enc != 4 && enc != 8 {
		return dst, corruptf("intset: bad encoding %d", enc)
	}
	if 8+enc*n != uint64(len(b)) {
		return dst, corruptf("intset: %d entries of %d bytes in %d bytes", n, enc, len(b))
	}
	d := b[8:]
	for i := 0; i < len(d); i += int(enc) {
		var v int64
		switch enc {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(d[i:])))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d[i:])))
		default:
			v = int64(binary.LittleEndian.Uint64(d[i:]))
		}
		dst = append(dst, r.intStr(v))
	}
	return dst, nil
}

// decodeZipmap decodes the pre-2.6 zipmap hash encoding into alternating
// fields and values.
func (r *Reader) decodeZipmap(dst [][]byte, b []byte) ([][]byte, error) {
	if len(b) < 2 {
		return dst, corruptf("zipmap: %d bytes", len(b))
	}
	count := int(b[0])
	end := len(b) - 1
	p, n := 1, 0
	readLen := func() (int, bool) {
		if p >= end {
			return 0, false
		}
		c := b[p]
		if c < 254 {
			p++
			return int(c), true
		}
		if c == 254 && p+5 <= end {
			u := binary.LittleEndian.Uint32(b[p+1:])
			p += 5
			if u > uint32(end) {
				return 0, false
			}
			return int(u), true
		}
		return 0, false
	}
	for p < end && b[p] != 0xFF {
		kl, ok := readLen()
		if !ok || kl > end-p {
			return dst, corruptf("zipmap: bad key")
		}
		k := b[p : p+kl : p+kl]
		p += kl
		vl, ok := readLen()
		if !ok || p >= end {
			return dst, corruptf("zipmap: bad value")
		}
		free := int(b[p])
		p++
		if vl > end-p || free > end-p-vl {
			return dst, corruptf("zipmap: value overflows")
		}
		dst = append(dst, k, b[p:p+vl:p+vl])
		p += vl + free
		n++
	}
	if p != end || b[end] != 0xFF {
		return dst, corruptf("zipmap: missing end byte")
	}
	if count < 254 && count != n {
		return dst, corruptf("zipmap: header says %d entries, found %d", count, n)
	}
	return dst, nil
}
