package rdb

import "encoding/binary"

// crcPoly is the reflected form of the CRC-64/Jones polynomial Redis uses.
const crcPoly = 0x95ac9329ac4bc9b5

// crcPart is the stripe length of the four-way interleaved loop.
const crcPart = 4096

var (
	crcTab   = makeCRCTables()
	crcShift = makeShiftTables(crcPart)
)

func makeCRCTables() *[16][256]uint64 {
	t := new([16][256]uint64)
	for i := range 256 {
		c := uint64(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ crcPoly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for k := 1; k < 16; k++ {
		for i := range 256 {
			c := t[k-1][i]
			t[k][i] = t[0][c&0xff] ^ c>>8
		}
	}
	return t
}

// gf2Matrix is a linear map on 64-bit CRC states: m[i] is the image of bit i.
type gf2Matrix [64]uint64

func (m *gf2Matrix) apply(v uint64) uint64 {
	var r uint64
	for i := 0; v != 0; i++ {
		if v&1 != 0 {
			r ^= m[i]
		}
		v >>= 1
	}
	return r
}

// after returns the map "n, then m".
func (m *gf2Matrix) after(n *gf2Matrix) gf2Matrix {
	var r gf2Matrix
	for i := range 64 {
		r[i] = m.apply(n[i])
	}
	return r
}

// makeShiftTables returns byte tables for the map that advances a CRC state
// over n zero bytes. Because this CRC has no initial or final xor,
// crc(A||B) = advance(crc(A), len(B)) ^ crc(B), which lets independent
// stripes be checksummed side by side and combined.
func makeShiftTables(n int) *[8][256]uint64 {
	var step, r gf2Matrix
	for i := range 64 {
		c := uint64(1) << i
		step[i] = crcTab[0][byte(c)] ^ c>>8
		r[i] = c
	}
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			r = step.after(&r)
		}
		step = step.after(&step)
	}
	t := new([8][256]uint64)
	for k := range 8 {
		for b := range 256 {
			t[k][b] = r.apply(uint64(b) << (8 * k))
		}
	}
	return t
}

func crcShiftPart(c uint64) uint64 {
	t := crcShift
	return t[0][byte(c)] ^ t[1][byte(c>>8)] ^ t[2][byte(c>>16)] ^ t[3][byte(c>>24)] ^
		t[4][byte(c>>32)] ^ t[5][byte(c>>40)] ^ t[6][byte(c>>48)] ^ t[7][byte(c>>56)]
}

func crcStep8(t *[16][256]uint64, c uint64) uint64 {
	return t[7][byte(c)] ^ t[6][byte(c>>8)] ^ t[5][byte(c>>16)] ^ t[4][byte(c>>24)] ^
		t[3][byte(c>>32)] ^ t[2][byte(c>>40)] ^ t[1][byte(c>>48)] ^ t[0][byte(c>>56)]
}

// CRC64 returns the Redis CRC-64 (Jones polynomial, reflected, initial value
// 0, no final xor) of p, continuing from crc. Start with crc = 0; the value
// for "123456789" is 0xe9c6d914c4b8d9ca. This is the checksum an RDB file
// stores, over every byte from "REDIS" through the EOF opcode.
func CRC64(crc uint64, p []byte) uint64 {
	t := crcTab
	// Four interleaved stripes keep four independent table-lookup chains
	// in flight, about twice the speed of one chain.
	for len(p) >= 4*crcPart {
		a, b, c, d := p[:crcPart], p[crcPart:2*crcPart], p[2*crcPart:3*crcPart], p[3*crcPart:4*crcPart]
		c0, c1, c2, c3 := crc, uint64(0), uint64(0), uint64(0)
		for i := 0; i < crcPart; i += 8 {
			c0 = crcStep8(t, c0^binary.LittleEndian.Uint64(a[i:]))
			c1 = crcStep8(t, c1^binary.LittleEndian.Uint64(b[i:]))
			c2 = crcStep8(t, c2^binary.LittleEndian.Uint64(c[i:]))
			c3 = crcStep8(t, c3^binary.LittleEndian.Uint64(d[i:]))
		}
		crc = crcShiftPart(crcShiftPart(crcShiftPart(c0)^c1)^c2) ^ c3
		p = p[4*crcPart:]
	}
	for len(p) >= 16 {
		a := crc ^ binary.LittleEndian.Uint64(p)
		b := binary.LittleEndian.Uint64(p[8:])
		crc = t[15][byte(a)] ^ t[14][byte(a>>8)] ^ t[13][byte(a>>16)] ^ t[12][byte(a>>24)] ^
			t[11][byte(a>>32)] ^ t[10][byte(a>>40)] ^ t[9][byte(a>>48)] ^ t[8][byte(a>>56)] ^
			t[7][byte(b)] ^ t[6][byte(b>>8)] ^ t[5][byte(b>>16)] ^ t[4][byte(b>>24)] ^
			t[3][byte(b>>32)] ^ t[2][byte(b>>40)] ^ t[1][byte(b>>48)] ^ t[0][byte(b>>56)]
		p = p[16:]
	}
	for _, c := range p {
		crc = t[0][byte(crc)^c] ^ crc>>8
	}
	return crc
}
