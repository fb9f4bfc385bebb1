package rdb

// lzfMaxRatio bounds how much LZF can expand: the longest back reference is
// 3 input bytes producing 264 output bytes.
const lzfMaxRatio = 88

// lzfDecompress decompresses src, appending exactly n bytes to dst. It
// fails with ErrCorrupt unless src decodes to exactly n bytes.
func lzfDecompress(dst, src []byte, n int) ([]byte, error) {
	if n < 0 || n > len(src)*lzfMaxRatio {
		return dst, corruptf("lzf: uncompressed length %d impossible for %d compressed bytes", n, len(src))
	}
	base := len(dst)
	dst = grow(dst, n)
	out := dst[base : base+n]
	ip, op := 0, 0
	for ip < len(src) {
		ctrl := int(src[ip])
		ip++
		if ctrl < 32 {
			l := ctrl + 1
			if ip+l > len(src) || op+l > n {
				return dst[:base], corruptf("lzf: literal run overflows")
			}
			copy(out[op:], src[ip:ip+l])
			ip += l
			op += l
			continue
		}
		l := ctrl >> 5
		ref := op - (ctrl&0x1f)<<8 - 1
		if l == 7 {
			if ip >= len(src) {
				return dst[:base], corruptf("lzf: truncated back reference")
			}
			l += int(src[ip])
			ip++
		}
		if ip >= len(src) {
			return dst[:base], corruptf("lzf: truncated back reference")
		}
		ref -= int(src[ip])
		ip++
		l += 2
		if ref < 0 || op+l > n {
			return dst[:base], corruptf("lzf: back reference out of range")
		}
		if ref+l <= op {
			copy(out[op:op+l], out[ref:ref+l])
			op += l
		} else {
			// Overlapping: the bytes repeat with period op-ref. Copying
			// out[ref:op] again and again doubles the chunk each time and
			// writes what a byte-by-byte copy would (every chunk but the
			// last is a whole number of periods).
			for l > 0 {
				k := copy(out[op:op+l], out[ref:op])
				op += k
				l -= k
			}
		}
	}
	if op != n {
		return dst[:base], corruptf("lzf: decompressed %d bytes, header says %d", op, n)
	}
	return dst, nil
}

// grow returns b extended by n bytes (contents of the new bytes unspecified).
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

const (
	lzfHashLog = 14
	lzfMaxOff  = 1 << 13
	lzfMaxRef  = 264
	lzfMaxLit  = 32
)

// lzfCompress appends the LZF compression of src to dst. The output is what
// Redis's lzf_decompress accepts; it may be larger than src.
//
// htab need not be cleared between calls: a stale entry is only used when
// it points before ip and the bytes there match, which makes it a valid
// reference whatever its origin.
func lzfCompress(dst, src []byte, htab *[1 << lzfHashLog]int32) []byte {
	n := len(src)
	litPos := len(dst)
	dst = append(dst, 0)
	lit := 0
	ip := 0
	for ip+2 < n {
		v := uint32(src[ip])<<16 | uint32(src[ip+1])<<8 | uint32(src[ip+2])
		h := (v * 2654435761) >> (32 - lzfHashLog)
		ref := int(htab[h]) - 1
		htab[h] = int32(ip + 1)
		off := ip - ref - 1
		if ref >= 0 && ref < ip && off < lzfMaxOff && src[ref] == src[ip] && src[ref+1] == src[ip+1] && src[ref+2] == src[ip+2] {
			maxl := min(lzfMaxRef, n-ip)
			l := 3
			for l < maxl && src[ref+l] == src[ip+l] {
				l++
			}
			if lit > 0 {
				dst[litPos] = byte(lit - 1)
			} else {
				dst = dst[:litPos]
			}
			c := l - 2
			if c < 7 {
				dst = append(dst, byte(off>>8|c<<5))
			} else {
				dst = append(dst, byte(off>>8|7<<5), byte(c-7))
			}
			dst = append(dst, byte(off))
			ip += l
			litPos = len(dst)
			dst = append(dst, 0)
			lit = 0
			continue
		}
		dst = append(dst, src[ip])
		ip++
		lit++
		if lit == lzfMaxLit {
			dst[litPos] = lzfMaxLit - 1
			litPos = len(dst)
			dst = append(dst, 0)
			lit = 0
		}
	}
	for ; ip < n; ip++ {
		dst = append(dst, src[ip])
		lit++
		if lit == lzfMaxLit {
			dst[litPos] = lzfMaxLit - 1
			litPos = len(dst)
			dst = append(dst, 0)
			lit = 0
		}
	}
	if lit > 0 {
		dst[litPos] = byte(lit - 1)
	} else {
		dst = dst[:litPos]
	}
	return dst
}
