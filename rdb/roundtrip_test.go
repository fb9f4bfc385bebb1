package rdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trickyStrings are values near the integer-encoding boundaries.
var trickyStrings = []string{
	"", "0", "-0", "00", "1", "-1", "12", "127", "128", "-128", "-129", "32767", "32768",
	"-32768", "-32769", "2147483647", "2147483648", "-2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808",
	"+1", " 1", "1 ", "1.5", "4095", "4096", "-4096", "-4097", "8388607", "8388608",
	"-8388608", "-8388609", "123456789012345", "1234567890123456",
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b[:n:n]
}

func randValue(rng *rand.Rand) []byte {
	switch rng.IntN(6) {
	case 0:
		return []byte(trickyStrings[rng.IntN(len(trickyStrings))])
	case 1:
		return []byte(fmt.Sprint(rng.Int64N(1<<40) - 1<<39))
	case 2:
		return randBytes(rng, rng.IntN(200))
	case 3:
		if rng.IntN(20) == 0 {
			return randBytes(rng, 5000+rng.IntN(30000)) // crosses node and buffer sizes
		}
		return bytes.Repeat([]byte("ab"), rng.IntN(300)) // compressible
	default:
		return randBytes(rng, rng.IntN(20))
	}
}

// genEntries builds entries of every kind across three databases. Sets,
// hashes and zsets hold distinct members, as in Redis.
func genEntries(rng *rand.Rand, n int) []*Entry {
	var out []*Entry
	for i := range n {
		e := &Entry{DB: i * 3 / n, Key: []byte(fmt.Sprintf("key:%d:%x", i, randBytes(rng, rng.IntN(4)))), Idle: -1, Freq: -1}
		if rng.IntN(4) == 0 {
			e.ExpireAt = 1_700_000_000_000 + rng.Int64N(1e9)
		}
		if rng.IntN(5) == 0 {
			e.Idle = rng.Int64N(1 << 20)
		}
		if rng.IntN(5) == 0 {
			e.Freq = 1 + rng.IntN(255)
		}
		size := rng.IntN(40)
		if rng.IntN(10) == 0 {
			size = 300 + rng.IntN(1200)
		}
		e.Kind = Kind(rng.IntN(5))
		seen := map[string]bool{}
		uniq := func() []byte {
			for {
				v := randValue(rng)
				if !seen[string(v)] {
					seen[string(v)] = true
					return v
				}
			}
		}
		switch e.Kind {
		case KindString:
			e.String = randValue(rng)
		case KindList:
			for range size + 1 {
				e.List = append(e.List, randValue(rng))
			}
		case KindSet:
			for range size + 1 {
				e.Set = append(e.Set, uniq())
			}
		case KindHash:
			for range size + 1 {
				e.Hash = append(e.Hash, HashField{uniq(), randValue(rng)})
			}
		case KindZSet:
			for range size + 1 {
				s := rng.NormFloat64() * 1e6
				switch rng.IntN(10) {
				case 0:
					s = math.Inf(1)
				case 1:
					s = math.Inf(-1)
				case 2:
					s = float64(rng.IntN(100))
				}
				e.ZSet = append(e.ZSet, ZMember{uniq(), s})
			}
		}
		out = append(out, e)
	}
	return out
}

// writeFile encodes entries with SELECTDB before each database change.
func writeFile(t testing.TB, opt WriterOptions, es []*Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opt)
	require.NoError(t, err)
	db := -1
	for _, e := range es {
		if e.DB != db {
			db = e.DB
			require.NoError(t, w.SelectDB(db, uint64(len(es)), 0))
		}
		require.NoError(t, w.WriteEntry(e))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	es := genEntries(rng, 150)
	for _, opt := range []WriterOptions{
		{},
		{Compress: true},
		{ListNodeSize: 64},
		{Version: 12, Compress: true, ListNodeSize: 1},
	} {
		t.Run(fmt.Sprintf("%+v", opt), func(t *testing.T) {
			opt.Aux = []AuxField{{"redis-ver", "7.0.15"}, {"redis-bits", "64"}, {"repl-offset", "12345"}, {"repl-id", strings.Repeat("ab", 20)}}
			data := writeFile(t, opt, es)
			got, r, err := readAll(t, data, ReaderOptions{})
			require.NoError(t, err)
			require.Len(t, got, len(es))
			for i := range es {
				assert.Equal(t, es[i].Clone(), got[i], "entry %d", i)
			}
			assert.Equal(t, map[string]string{"redis-ver": "7.0.15", "redis-bits": "64", "repl-offset": "12345", "repl-id": strings.Repeat("ab", 20)}, r.Aux())
			want := opt.Version
			if want == 0 {
				want = 10
			}
			assert.Equal(t, want, r.Version())
		})
	}
}

func TestRoundTripFunctionsAndEmpty(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{})
	require.NoError(t, err)
	lib := []byte("#!lua name=mylib\nredis.register_function('f', function() return 1 end)")
	require.NoError(t, w.WriteFunction(lib))
	require.NoError(t, w.Close())
	assert.ErrorIs(t, w.WriteAux("a", "b"), errClosed)

	es, r, err := readAll(t, buf.Bytes(), ReaderOptions{})
	require.NoError(t, err)
	assert.Empty(t, es)
	assert.Equal(t, [][]byte{lib}, r.Functions())
}

func TestWriterIntegerEncoding(t *testing.T) {
	cases := map[string][]byte{
		"0":           {0xC0, 0},
		"-1":          {0xC0, 0xFF},
		"300":         {0xC1, 0x2C, 0x01},
		"-2147483648": {0xC2, 0, 0, 0, 0x80},
		"2147483648":  append([]byte{10}, "2147483648"...),
		"007":         append([]byte{3}, "007"...),
		"-0":          append([]byte{2}, "-0"...),
	}
	for in, want := range cases {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, WriterOptions{})
		require.NoError(t, err)
		require.NoError(t, w.WriteEntry(&Entry{Key: []byte("k"), String: []byte(in)}))
		require.NoError(t, w.Close())
		// header(9) + type(1) + key(2) then the value
		assert.Equal(t, want, buf.Bytes()[12:12+len(want)], "value %q", in)
	}
}

func TestWriterRejectsInvalid(t *testing.T) {
	var buf bytes.Buffer
	_, err := NewWriter(&buf, WriterOptions{Version: 9})
	assert.ErrorIs(t, err, ErrVersion)
	_, err = NewWriter(&buf, WriterOptions{Version: 13})
	assert.ErrorIs(t, err, ErrVersion)
	w, err := NewWriter(&buf, WriterOptions{})
	require.NoError(t, err)
	assert.ErrorIs(t, w.WriteEntry(&Entry{Key: []byte("k"), Kind: 9}), ErrInvalidEntry)
	assert.ErrorIs(t, w.WriteEntry(&Entry{Key: []byte("k"), Kind: KindZSet, ZSet: []ZMember{{[]byte("m"), math.NaN()}}}), ErrInvalidEntry)
	assert.ErrorIs(t, w.WriteEntry(&Entry{Key: []byte("k"), Freq: 256}), ErrInvalidEntry)
	assert.ErrorIs(t, w.WriteEntry(&Entry{Key: []byte("k"), ExpireAt: -5}), ErrInvalidEntry)
	assert.ErrorIs(t, w.SelectDB(-1, 0, 0), ErrInvalidEntry)
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestWriterStickyError(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 100}, WriterOptions{})
	require.NoError(t, err)
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		werr = w.WriteEntry(&Entry{Key: []byte(fmt.Sprint(i)), String: bytes.Repeat([]byte("x"), 100)})
	}
	require.Error(t, werr)
	assert.Equal(t, werr, w.Close())
}

func TestListNodes(t *testing.T) {
	// 3000 elements of 10 bytes fill several 8 KiB nodes; a 20 KiB element
	// gets a node of its own.
	e := &Entry{Key: []byte("l"), Kind: KindList, Idle: -1, Freq: -1}
	for i := range 3000 {
		e.List = append(e.List, []byte(fmt.Sprintf("elem-%05d", i)))
	}
	e.List = append(e.List, bytes.Repeat([]byte("y"), 20000), []byte("tail"))
	data := writeFile(t, WriterOptions{}, []*Entry{e})
	got := mustRead(t, data)
	require.Len(t, got, 1)
	assert.Equal(t, e, got[0])
	// header 9, SELECTDB+RESIZEDB 5, type 1, key 2, then the node count.
	assert.Equal(t, byte(typeListQuicklist2), data[14])
	nodes := data[17]
	assert.EqualValues(t, 7, nodes, "5 listpack nodes of <= 682 12-byte entries, 1 for the big element, 1 tail")
}
