package rdb

import (
	"bytes"
	"testing"
)

// TestLZFOverlappingReference checks back references that overlap the
// bytes they produce (distance < length, Redis's runs of zero padding are
// distance 1) against a byte-by-byte copy, for every distance and length
// one control byte can express at the start of a block.
func TestLZFOverlappingReference(t *testing.T) {
	lit := []byte("abcdefghijklmnopqrstuvwxyz012345") // 32 literal bytes
	for dist := 1; dist <= len(lit); dist++ {
		for l := 3; l <= lzfMaxRef; l++ {
			// Literal run of 32 bytes, then a back reference of length l at
			// distance dist.
			src := append([]byte{byte(len(lit) - 1)}, lit...)
			off := dist - 1
			if l-2 < 7 {
				src = append(src, byte((l-2)<<5|off>>8), byte(off))
			} else {
				src = append(src, byte(7<<5|off>>8), byte(l-2-7), byte(off))
			}
			want := append([]byte(nil), lit...)
			for i := 0; i < l; i++ {
				want = append(want, want[len(want)-dist])
			}
			got, err := lzfDecompress([]byte("pre"), src, len(want))
			if err != nil {
				t.Fatalf("dist %d len %d: %v", dist, l, err)
			}
			if !bytes.Equal(got[3:], want) || string(got[:3]) != "pre" {
				t.Fatalf("dist %d len %d: got %q, want %q", dist, l, got[3:], want)
			}
		}
	}
}
