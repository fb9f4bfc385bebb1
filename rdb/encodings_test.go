package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCRC64(t *testing.T) {
	assert.Equal(t, uint64(0xe9c6d914c4b8d9ca), CRC64(0, []byte("123456789")))
	assert.Equal(t, uint64(0), CRC64(0, nil))
	// The sliced implementation agrees with the bitwise definition at every
	// length and split point.
	bitwise := func(crc uint64, p []byte) uint64 {
		for _, c := range p {
			crc ^= uint64(c)
			for range 8 {
				if crc&1 == 1 {
					crc = crc>>1 ^ crcPoly
				} else {
					crc >>= 1
				}
			}
		}
		return crc
	}
	data := make([]byte, 5*4*crcPart+300)
	for i := range data {
		data[i] = byte(i*7 + i>>3)
	}
	lens := []int{4 * crcPart, 4*crcPart - 1, 4*crcPart + 1, 8 * crcPart, len(data)}
	for n := 0; n <= 300; n += 7 {
		lens = append(lens, n)
	}
	for _, n := range lens {
		want := bitwise(0, data[:n])
		assert.Equal(t, want, CRC64(0, data[:n]), "len %d", n)
		assert.Equal(t, want, CRC64(CRC64(0, data[:n/3]), data[n/3:n]), "len %d split", n)
	}
}

func TestLZF(t *testing.T) {
	htab := new([1 << lzfHashLog]int32)
	inputs := [][]byte{
		nil, []byte("a"), []byte("abcabcabcabcabcabcabcabc"),
		bytes.Repeat([]byte{0}, 100000),
		[]byte(strings.Repeat("hello world, ", 1000)),
		randBytes(newRng(), 5000),
	}
	for _, in := range inputs {
		c := lzfCompress(nil, in, htab)
		out, err := lzfDecompress([]byte("prefix"), c, len(in))
		require.NoError(t, err)
		assert.Equal(t, append([]byte("prefix"), in...), out)
	}
	// Sizes that lie fail, and leave dst as it was.
	c := lzfCompress(nil, []byte(strings.Repeat("abcdefgh", 100)), htab)
	for _, n := range []int{799, 801, 0, len(c)*lzfMaxRatio + 1, -1} {
		out, err := lzfDecompress([]byte("x"), c, n)
		assert.ErrorIs(t, err, ErrCorrupt, "n=%d", n)
		assert.Equal(t, []byte("x"), out)
	}
	for _, bad := range [][]byte{
		{5, 'a'},                // literal run past the input
		{0, 'a', 0x20},          // back reference missing its offset byte
		{0xE0},                  // long back reference missing its length byte
		{0x20, 0},               // back reference before the start
		{0, 'a', 0xE0, 0xFF, 0}, // longer than the declared size
	} {
		_, err := lzfDecompress(nil, bad, 10)
		assert.ErrorIs(t, err, ErrCorrupt, "%x", bad)
	}
}

// entryFile returns a version-9 file with one key of the given type byte.
func entryFile(typ byte, key string, value []byte) []byte {
	return rdbFile(9, cat([]byte{typ}, raw(key), value))
}

func one(t *testing.T, data []byte) *Entry {
	t.Helper()
	es := mustRead(t, data)
	require.Len(t, es, 1)
	return es[0]
}

func TestOldEncodings(t *testing.T) {
	t.Run("linked list", func(t *testing.T) {
		e := one(t, entryFile(typeListLinked, "l", cat(lenb(3), raw("a"), []byte{0xC0, 7}, raw("c"))))
		assert.Equal(t, KindList, e.Kind)
		assert.Equal(t, strs("a", "7", "c"), e.List)
	})
	t.Run("ziplist list", func(t *testing.T) {
		long := strings.Repeat("z", 300)
		huge := strings.Repeat("h", 17000)
		zl := buildZiplist("a", 0, 12, 13, -1, 200, -30000, 1<<20, -(1 << 23), 1<<31-1, int64(1)<<40, int64(math.MinInt64), long, huge, "")
		e := one(t, entryFile(typeListZiplist, "l", rawb(zl)))
		assert.Equal(t, strs("a", "0", "12", "13", "-1", "200", "-30000", "1048576", "-8388608", "2147483647", "1099511627776", "-9223372036854775808", long, huge, ""), e.List)
	})
	t.Run("quicklist of ziplists", func(t *testing.T) {
		e := one(t, entryFile(typeListQuicklist, "l", cat(lenb(2), rawb(buildZiplist("a", "b")), rawb(buildZiplist(3)))))
		assert.Equal(t, strs("a", "b", "3"), e.List)
	})
	t.Run("quicklist2 plain and packed", func(t *testing.T) {
		e := one(t, entryFile(typeListQuicklist2, "l", cat(lenb(3), lenb(2), rawb(buildListpack("a", 5)), lenb(1), raw("plain"), lenb(2), rawb(buildListpack()))))
		assert.Equal(t, strs("a", "5", "plain"), e.List)
	})
	t.Run("set", func(t *testing.T) {
		e := one(t, entryFile(typeSet, "s", cat(lenb(2), raw("x"), raw("y"))))
		assert.Equal(t, KindSet, e.Kind)
		assert.Equal(t, strs("x", "y"), e.Set)
	})
	t.Run("intset", func(t *testing.T) {
		for enc, vals := range map[int][]int64{2: {-5, 7, 32767}, 4: {-70000, 1 << 30}, 8: {math.MinInt64, 1 << 40}} {
			e := one(t, entryFile(typeSetIntset, "s", rawb(buildIntset(enc, vals...))))
			var want []string
			for _, v := range vals {
				want = append(want, itoa(v))
			}
			assert.Equal(t, strs(want...), e.Set)
		}
	})
	t.Run("set listpack", func(t *testing.T) {
		e := one(t, entryFile(typeSetListpack, "s", rawb(buildListpack("m1", -4000, 100000, 1<<40))))
		assert.Equal(t, strs("m1", "-4000", "100000", "1099511627776"), e.Set)
	})
	t.Run("zset with string scores", func(t *testing.T) {
		body := cat(lenb(5),
			raw("a"), []byte{3}, []byte("1.5"),
			raw("b"), []byte{254},
			raw("c"), []byte{255},
			raw("d"), []byte{253},
			raw("e"), []byte{4}, []byte("-inf"))
		e := one(t, entryFile(typeZSet, "z", body))
		require.Len(t, e.ZSet, 5)
		assert.Equal(t, 1.5, e.ZSet[0].Score)
		assert.True(t, math.IsInf(e.ZSet[1].Score, 1))
		assert.True(t, math.IsInf(e.ZSet[2].Score, -1))
		assert.True(t, math.IsNaN(e.ZSet[3].Score))
		assert.True(t, math.IsInf(e.ZSet[4].Score, -1))
	})
	t.Run("zset ziplist and listpack", func(t *testing.T) {
		want := []ZMember{{[]byte("a"), 1}, {[]byte("b"), 2.5}, {[]byte("c"), -3}}
		e := one(t, entryFile(typeZSetZiplist, "z", rawb(buildZiplist("a", 1, "b", "2.5", "c", -3))))
		assert.Equal(t, want, e.ZSet)
		e = one(t, entryFile(typeZSetListpack, "z", rawb(buildListpack("a", 1, "b", "2.5", "c", -3))))
		assert.Equal(t, want, e.ZSet)
	})
	t.Run("hash ziplist zipmap", func(t *testing.T) {
		want := []HashField{{[]byte("f1"), []byte("v1")}, {[]byte("n"), []byte("42")}}
		e := one(t, entryFile(typeHashZiplist, "h", rawb(buildZiplist("f1", "v1", "n", 42))))
		assert.Equal(t, KindHash, e.Kind)
		assert.Equal(t, want, e.Hash)
		long := strings.Repeat("L", 400)
		e = one(t, entryFile(typeHashZipmap, "h", rawb(buildZipmap("f1", "v1", "n", "42", long, "x"))))
		assert.Equal(t, append(want, HashField{[]byte(long), []byte("x")}), e.Hash)
	})
	t.Run("opcodes", func(t *testing.T) {
		body := cat(
			[]byte{opAux}, raw("k"), []byte{0xC1, 0x39, 0x30},
			[]byte{opModuleAux}, lenb(12345), lenb(moduleOpUInt), lenb(2),
			lenb(moduleOpSInt), lenb(5), lenb(moduleOpFloat), []byte{0, 0, 0, 0},
			lenb(moduleOpDouble), make([]byte, 8), lenb(moduleOpString), raw("x"), lenb(moduleOpEOF),
			[]byte{opSelectDB}, lenb(7), []byte{opResizeDB}, lenb(1<<40), lenb(0), // a hint above MaxLen is fine
			[]byte{opSlotInfo}, lenb(1), lenb(2), lenb(3),
			[]byte{opExpireSec}, binary.LittleEndian.AppendUint32(nil, 1700000000),
			[]byte{opIdle}, lenb(99), []byte{opFreq, 17},
			[]byte{typeString}, raw("a"), raw("1"),
			[]byte{opExpireMs}, binary.LittleEndian.AppendUint64(nil, 1700000000123),
			[]byte{typeString}, raw("b"), raw("2"),
			[]byte{typeModule2}, raw("m"), lenb(777), lenb(moduleOpString), raw("v"), lenb(moduleOpEOF),
			[]byte{typeString}, raw("c"), raw("3"),
		)
		es, r, err := readAll(t, rdbFile(10, body), ReaderOptions{})
		require.NoError(t, err)
		require.Len(t, es, 3)
		assert.Equal(t, "12345", r.Aux()["k"])
		assert.Equal(t, &Entry{DB: 7, Key: []byte("a"), String: []byte("1"), ExpireAt: 1700000000000, Idle: 99, Freq: 17}, es[0])
		assert.Equal(t, &Entry{DB: 7, Key: []byte("b"), String: []byte("2"), ExpireAt: 1700000000123, Idle: -1, Freq: -1}, es[1])
		assert.Equal(t, &Entry{DB: 7, Key: []byte("c"), String: []byte("3"), Idle: -1, Freq: -1}, es[2])
	})
	t.Run("version 4 has no checksum", func(t *testing.T) {
		data := rdbFile(4, []byte{typeString}, raw("k"), raw("v"))
		assert.Equal(t, byte(opEOF), data[len(data)-1])
		e := one(t, data)
		assert.Equal(t, []byte("v"), e.String)
	})
	t.Run("zero checksum is not checked", func(t *testing.T) {
		data := rdbFile(10, []byte{typeString}, raw("k"), raw("v"))
		copy(data[len(data)-8:], make([]byte, 8))
		one(t, data)
	})
	t.Run("trailing data stays buffered", func(t *testing.T) {
		data := append(rdbFile(10, []byte{typeString}, raw("k"), raw("v")), "EOFMARK"...)
		_, r, err := readAll(t, data, ReaderOptions{})
		require.NoError(t, err)
		assert.Equal(t, []byte("EOFMARK"), r.Buffered())
	})
}

func TestUnsupportedTypes(t *testing.T) {
	// A module value can be skipped; a pre-GA module value and hashes with
	// field TTLs cannot.
	mod := rdbFile(10, []byte{typeModule2}, raw("m"), lenb(1), lenb(moduleOpUInt), lenb(3), lenb(moduleOpEOF), []byte{typeString}, raw("k"), raw("v"))
	r := NewReader(bytes.NewReader(mod), ReaderOptions{})
	_, err := r.Next()
	var ue *UnsupportedTypeError
	require.ErrorAs(t, err, &ue)
	assert.True(t, ue.Skipped)
	assert.Equal(t, "m", string(ue.Key))
	assert.Contains(t, err.Error(), "module")
	e, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "k", string(e.Key))

	for _, typ := range []byte{typeModulePreGA, typeHashMeta, typeHashLPEx} {
		data := rdbFile(12, []byte{typ}, raw("x"), raw("whatever"))
		r := NewReader(bytes.NewReader(data), ReaderOptions{SkipUnsupported: true})
		_, err := r.Next()
		require.ErrorAs(t, err, &ue, "type %d", typ)
		assert.False(t, ue.Skipped)
		_, err2 := r.Next()
		assert.Equal(t, err, err2, "the reader stopped")
	}
}

func TestHostileInput(t *testing.T) {
	valid := rdbFile(10, []byte{typeString}, raw("k"), raw("hello"))
	flipped := bytes.Clone(valid)
	flipped[bytes.Index(flipped, []byte("hello"))] ^= 1
	lz := lzfCompress(nil, []byte(strings.Repeat("abcdefgh", 10)), new([1 << lzfHashLog]int32))
	lzfStr := func(clen, ulen int, data []byte) []byte {
		return cat([]byte{0xC3}, lenb(uint64(clen)), lenb(uint64(ulen)), data)
	}
	str := func(v []byte) []byte { return rdbFile(10, []byte{typeString}, raw("k"), v) }
	lp := buildListpack("a", "b")
	lpBadTotal := bytes.Clone(lp)
	lpBadTotal[0]++
	lpBadCount := bytes.Clone(lp)
	lpBadCount[4] = 3
	lpBadEnd := bytes.Clone(lp)
	lpBadEnd[len(lpBadEnd)-1] = 0
	lpBadBacklen := bytes.Clone(lp)
	lpBadBacklen[8] = 9
	lpLongStr := []byte{13, 0, 0, 0, 1, 0, 0xF0, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0xFF}
	zl := buildZiplist("a", "b")
	zlBadPrev := bytes.Clone(zl)
	zlBadPrev[13] = 7
	zlBadTail := bytes.Clone(zl)
	zlBadTail[4] = 0
	zlBadCount := bytes.Clone(zl)
	zlBadCount[8] = 5
	zlBadEnc := bytes.Clone(zl)
	zlBadEnc[11] = 0xC7
	is := buildIntset(2, 1, 2)
	isBadEnc := bytes.Clone(is)
	isBadEnc[0] = 3
	isBadLen := bytes.Clone(is)
	isBadLen[4] = 0xFF
	zm := buildZipmap("a", "b")
	zmBadCount := bytes.Clone(zm)
	zmBadCount[0] = 9
	hugeLen := []byte{0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

	cases := []struct {
		name string
		data []byte
		opt  ReaderOptions
		want error
	}{
		{"empty", nil, ReaderOptions{}, ErrCorrupt},
		{"bad magic", []byte("REDIX0010\xff"), ReaderOptions{}, ErrCorrupt},
		{"bad version digits", []byte("REDIS00a0\xff"), ReaderOptions{}, ErrCorrupt},
		{"version 0", []byte("REDIS0000\xff"), ReaderOptions{}, ErrVersion},
		{"version 13", []byte("REDIS0013\xff"), ReaderOptions{}, ErrVersion},
		{"no EOF", valid[:len(valid)-9], ReaderOptions{}, ErrTruncated},
		{"short checksum", valid[:len(valid)-3], ReaderOptions{}, ErrTruncated},
		{"checksum", flipped, ReaderOptions{}, ErrChecksum},
		{"unknown type", rdbFile(10, []byte{8}, raw("k"), raw("v")), ReaderOptions{}, ErrCorrupt},
		{"unknown opcode value type 200", rdbFile(10, []byte{200}, raw("k")), ReaderOptions{}, ErrCorrupt},
		{"old function opcode", rdbFile(10, []byte{opFunctionOld}, raw("f")), ReaderOptions{}, ErrCorrupt},
		{"bad length byte", str([]byte{0x82, 0, 0, 0, 1}), ReaderOptions{}, ErrCorrupt},
		{"unknown string encoding", str([]byte{0xC4}), ReaderOptions{}, ErrCorrupt},
		{"huge string", str(hugeLen), ReaderOptions{}, ErrTooLarge},
		{"string over MaxLen", str(raw("0123456789abc")), ReaderOptions{MaxLen: 12}, ErrTooLarge},
		{"string truncated", str(cat([]byte{0x80, 0, 1, 0, 0}, []byte("short"))), ReaderOptions{}, ErrTruncated},
		{"huge list count", rdbFile(10, []byte{typeListLinked}, raw("k"), hugeLen), ReaderOptions{}, ErrTooLarge},
		{"list count lies", rdbFile(10, []byte{typeListLinked}, raw("k"), lenb(1000), raw("a")), ReaderOptions{}, ErrCorrupt},
		{"huge db number", rdbFile(10, []byte{opSelectDB}, hugeLen), ReaderOptions{}, ErrTooLarge},
		{"db number over int32", rdbFile(10, []byte{opSelectDB}, []byte{0x81, 0, 0, 0, 1, 0, 0, 0, 0}), ReaderOptions{MaxLen: 1 << 40}, ErrCorrupt},
		{"lzf ulen too big", str(lzfStr(len(lz), 81, lz)), ReaderOptions{}, ErrCorrupt},
		{"lzf ulen too small", str(lzfStr(len(lz), 79, lz)), ReaderOptions{}, ErrCorrupt},
		{"lzf ulen absurd", str(lzfStr(len(lz), 1<<28, lz)), ReaderOptions{}, ErrCorrupt},
		{"lzf ulen huge", str(lzfStr(len(lz), 1<<40, lz)), ReaderOptions{}, ErrTooLarge},
		{"lzf clen lies", str(lzfStr(len(lz)+100, 80, lz)), ReaderOptions{}, ErrTruncated},
		{"lzf bad reference", str(lzfStr(2, 10, []byte{0x20, 0x05})), ReaderOptions{}, ErrCorrupt},
		{"listpack total", entryFile(typeSetListpack, "k", rawb(lpBadTotal)), ReaderOptions{}, ErrCorrupt},
		{"listpack count", entryFile(typeSetListpack, "k", rawb(lpBadCount)), ReaderOptions{}, ErrCorrupt},
		{"listpack end", entryFile(typeSetListpack, "k", rawb(lpBadEnd)), ReaderOptions{}, ErrCorrupt},
		{"listpack backlen", entryFile(typeSetListpack, "k", rawb(lpBadBacklen)), ReaderOptions{}, ErrCorrupt},
		{"listpack string overflows", entryFile(typeSetListpack, "k", rawb(lpLongStr)), ReaderOptions{}, ErrCorrupt},
		{"listpack tiny", entryFile(typeSetListpack, "k", raw("abc")), ReaderOptions{}, ErrCorrupt},
		{"listpack odd hash", entryFile(typeHashListpack, "k", rawb(buildListpack("a"))), ReaderOptions{}, ErrCorrupt},
		{"listpack odd zset", entryFile(typeZSetListpack, "k", rawb(buildListpack("a"))), ReaderOptions{}, ErrCorrupt},
		{"listpack bad score", entryFile(typeZSetListpack, "k", rawb(buildListpack("a", "x"))), ReaderOptions{}, ErrCorrupt},
		{"ziplist prevlen", entryFile(typeListZiplist, "k", rawb(zlBadPrev)), ReaderOptions{}, ErrCorrupt},
		{"ziplist tail", entryFile(typeListZiplist, "k", rawb(zlBadTail)), ReaderOptions{}, ErrCorrupt},
		{"ziplist count", entryFile(typeListZiplist, "k", rawb(zlBadCount)), ReaderOptions{}, ErrCorrupt},
		{"ziplist encoding", entryFile(typeListZiplist, "k", rawb(zlBadEnc)), ReaderOptions{}, ErrCorrupt},
		{"intset encoding", entryFile(typeSetIntset, "k", rawb(isBadEnc)), ReaderOptions{}, ErrCorrupt},
		{"intset length", entryFile(typeSetIntset, "k", rawb(isBadLen)), ReaderOptions{}, ErrCorrupt},
		{"zipmap count", entryFile(typeHashZipmap, "k", rawb(zmBadCount)), ReaderOptions{}, ErrCorrupt},
		{"zipmap truncated", entryFile(typeHashZipmap, "k", rawb(zm[:len(zm)-2])), ReaderOptions{}, ErrCorrupt},
		{"quicklist container", entryFile(typeListQuicklist2, "k", cat(lenb(1), lenb(3), rawb(lp))), ReaderOptions{}, ErrCorrupt},
		{"zset string score", entryFile(typeZSet, "k", cat(lenb(1), raw("m"), []byte{3}, []byte("abc"))), ReaderOptions{}, ErrCorrupt},
		{"module aux when", rdbFile(10, []byte{opModuleAux}, lenb(1), lenb(moduleOpString), lenb(2)), ReaderOptions{}, ErrCorrupt},
		{"module opcode", rdbFile(10, []byte{typeModule2}, raw("k"), lenb(1), lenb(9)), ReaderOptions{}, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readAll(t, c.data, c.opt)
			require.Error(t, err)
			assert.ErrorIs(t, err, c.want)
		})
	}
}

// TestArenaReuse checks that entries are valid until the next Next, and
// that a reused Entry does not leak values between keys.
func TestArenaReuse(t *testing.T) {
	data := rdbFile(10,
		[]byte{typeListLinked}, raw("l"), lenb(2), raw("a"), raw("b"),
		[]byte{typeString}, raw("s"), raw("v"),
		[]byte{typeSet}, raw("t"), lenb(1), raw("x"))
	r := NewReader(bytes.NewReader(data), ReaderOptions{})
	e, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, strs("a", "b"), e.List)
	e, err = r.Next()
	require.NoError(t, err)
	assert.Empty(t, e.List)
	assert.Equal(t, "v", string(e.String))
	e, err = r.Next()
	require.NoError(t, err)
	assert.Nil(t, e.String)
	assert.Equal(t, strs("x"), e.Set)
	_, err = r.Next()
	assert.True(t, errors.Is(err, io.EOF))
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	_, err := NewReader(zeroReader{}, ReaderOptions{}).Next()
	assert.ErrorIs(t, err, io.ErrNoProgress)
}

func TestCloneIsDeep(t *testing.T) {
	e := &Entry{Key: []byte("k"), Kind: KindHash, Hash: []HashField{{[]byte("f"), []byte("v")}}, List: [][]byte{}}
	c := e.Clone()
	e.Key[0], e.Hash[0].Value[0] = 'x', 'x'
	assert.Equal(t, &Entry{Key: []byte("k"), Kind: KindHash, Hash: []HashField{{[]byte("f"), []byte("v")}}}, c)
}

// TestChecksumLargeFile covers the background checksum of full buffers:
// a flipped byte deep in a file of many buffers is caught, and the bytes
// after the RDB stay available.
func TestChecksumLargeFile(t *testing.T) {
	rng := newRng()
	var es []*Entry
	for i := range 100 {
		es = append(es, &Entry{Key: []byte(itoa(int64(i)) + "k"), String: randBytes(rng, 10000), Idle: -1, Freq: -1})
	}
	data := append(writeFile(t, WriterOptions{}, es), "tail"...)
	for _, chunked := range []bool{false, true} {
		var in io.Reader = bytes.NewReader(data)
		if chunked {
			in = io.MultiReader(bytes.NewReader(data[:70000]), bytes.NewReader(data[70000:300000]), bytes.NewReader(data[300000:]))
		}
		r := NewReader(in, ReaderOptions{})
		n := 0
		var err error
		for err == nil {
			var e *Entry
			if e, err = r.Next(); err == nil {
				assert.Equal(t, es[n].String, e.String)
				n++
			}
		}
		require.ErrorIs(t, err, io.EOF)
		assert.Equal(t, 100, n)
		assert.Equal(t, []byte("tail"), r.Buffered())
	}
	for _, at := range []int{100, 70000, 500000, len(data) - 30} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x40
		_, _, err := readAll(t, bad, ReaderOptions{})
		assert.ErrorIs(t, err, ErrChecksum, "flip at %d", at)
		_, _, err = readAll(t, bad, ReaderOptions{SkipChecksum: true})
		assert.NoError(t, err, "flip at %d", at)
	}
}

// TestHostileLengthsDoNotAllocate checks that lengths and counts claimed by
// the input do not size allocations: memory grows only with bytes present.
func TestHostileLengthsDoNotAllocate(t *testing.T) {
	big := lenb(400 << 20)
	cases := map[string][]byte{
		"string":     rdbFile(10, []byte{typeString}, raw("k"), big, []byte("only a few bytes")),
		"lzf":        rdbFile(10, []byte{typeString}, raw("k"), []byte{0xC3}, lenb(10), big, make([]byte, 10)),
		"lzf clen":   rdbFile(10, []byte{typeString}, raw("k"), []byte{0xC3}, big, lenb(10), make([]byte, 10)),
		"list count": rdbFile(10, []byte{typeListLinked}, raw("k"), big, raw("a"), raw("b")),
		"hash count": rdbFile(10, []byte{typeHash}, raw("k"), big, raw("a"), raw("b")),
		"zset count": rdbFile(10, []byte{typeZSet2}, raw("k"), big, raw("a"), make([]byte, 8)),
		"quicklist":  rdbFile(10, []byte{typeListQuicklist2}, raw("k"), big, lenb(2), rawb(buildListpack("a"))),
		"stream":     rdbFile(10, []byte{typeStreamLP2}, raw("k"), big),
	}
	for name, data := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := readAll(t, data, ReaderOptions{})
		runtime.ReadMemStats(&after)
		assert.ErrorIs(t, err, ErrCorrupt, name)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), name)
	}
}

// streamBody builds a stream value with one listpack node, one consumer
// group with one pending entry and one consumer, in the layout of type typ.
func streamBody(typ byte) []byte {
	id := make([]byte, 16)
	b := cat(lenb(1), rawb(id), rawb(buildListpack("f", "v")),
		lenb(3), lenb(1700000000000), lenb(1)) // length, last id
	if typ >= typeStreamLP2 {
		b = cat(b, lenb(1700000000000), lenb(0), lenb(0), lenb(0), lenb(3)) // first id, max deleted id, entries added
	}
	b = cat(b, lenb(1), raw("grp"), lenb(1700000000000), lenb(1)) // groups, name, last id
	if typ >= typeStreamLP2 {
		b = cat(b, lenb(2)) // entries read
	}
	b = cat(b, lenb(1), id, make([]byte, 8), lenb(1))  // pel: id, delivery time, count
	b = cat(b, lenb(1), raw("alice"), make([]byte, 8)) // consumers, name, seen time
	if typ >= typeStreamLP3 {
		b = cat(b, make([]byte, 8)) // active time
	}
	return cat(b, lenb(1), id) // consumer pel
}

func TestStreamSkipLayouts(t *testing.T) {
	for _, typ := range []byte{typeStreamListpacks, typeStreamLP2, typeStreamLP3} {
		data := rdbFile(11, []byte{typ}, raw("s"), streamBody(typ), []byte{typeString}, raw("after"), raw("v"))
		var skipped []string
		es, _, err := readAll(t, data, ReaderOptions{SkipUnsupported: true, OnSkip: func(_ int, key []byte, rt byte) {
			skipped = append(skipped, string(key)+"/"+TypeName(rt))
		}})
		require.NoError(t, err, "type %d", typ)
		assert.Equal(t, []string{"s/stream"}, skipped)
		require.Len(t, es, 1)
		assert.Equal(t, "after", string(es[0].Key))
	}
}
