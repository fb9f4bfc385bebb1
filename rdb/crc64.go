package rdb

import "encoding/binary"

// crcPoly is the reflected form of the CRC-64/Jones polynomial Redis uses.
const crcPoly = 0x95ac9329ac4bc9b5

var crcTab = makeCRCTables()

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

// CRC64 returns the Redis CRC-64 (Jones polynomial, reflected, initial value
// 0, no final xor) of p, continuing from crc. Start with crc = 0; the value
// for "123456789" is 0xe9c6d914c4b8d9ca. This is the checksum an RDB file
// stores, over every byte from "REDIS" through the EOF opcode.
func CRC64(crc uint64, p []byte) uint64 {
	t := crcTab
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
