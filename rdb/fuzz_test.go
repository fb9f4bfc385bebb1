package rdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReader decodes arbitrary input. It must never panic or allocate
// beyond MaxLen; when the input decodes cleanly, writing the entries back
// and decoding them again must give the same entries.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), ReaderOptions{MaxLen: 1 << 20, SkipChecksum: len(data)%3 != 0})
		var es []*Entry
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			var ue *UnsupportedTypeError
			if errors.As(err, &ue) && ue.Skipped {
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrUnsupportedType) && !errors.Is(err, ErrChecksum) {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				_, err2 := r.Next()
				if err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				return
			}
			es = append(es, e.Clone())
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, WriterOptions{Compress: len(data)%2 == 0, ListNodeSize: 1 + len(data)%300})
		if err != nil {
			t.Fatal(err)
		}
		db := -1
		for _, e := range es {
			if e.DB != db {
				db = e.DB
				if err := w.SelectDB(db, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.WriteEntry(e); err != nil {
				if errors.Is(err, ErrInvalidEntry) {
					return // NaN score or negative expiry read from the input
				}
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		back, _, err := readAll(t, buf.Bytes(), ReaderOptions{MaxLen: 1 << 40})
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(back) != len(es) {
			t.Fatalf("re-read %d entries, want %d", len(back), len(es))
		}
		for i := range es {
			want := es[i]
			if want.Idle <= 0 {
				want.Idle = -1
			}
			if want.Freq <= 0 {
				want.Freq = -1
			}
			if !entriesEqual(want, back[i]) {
				t.Fatalf("entry %d changed:\n%+v\n%+v", i, want, back[i])
			}
		}
	})
}

// entriesEqual compares entries treating NaN scores as equal.
func entriesEqual(a, b *Entry) bool {
	if a.DB != b.DB || a.Kind != b.Kind || a.ExpireAt != b.ExpireAt || a.Idle != b.Idle || a.Freq != b.Freq ||
		!bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.String, b.String) ||
		len(a.List) != len(b.List) || len(a.Set) != len(b.Set) || len(a.Hash) != len(b.Hash) || len(a.ZSet) != len(b.ZSet) {
		return false
	}
	for i := range a.List {
		if !bytes.Equal(a.List[i], b.List[i]) {
			return false
		}
	}
	for i := range a.Set {
		if !bytes.Equal(a.Set[i], b.Set[i]) {
			return false
		}
	}
	for i := range a.Hash {
		if !bytes.Equal(a.Hash[i].Field, b.Hash[i].Field) || !bytes.Equal(a.Hash[i].Value, b.Hash[i].Value) {
			return false
		}
	}
	for i := range a.ZSet {
		x, y := a.ZSet[i].Score, b.ZSet[i].Score
		if !bytes.Equal(a.ZSet[i].Member, b.ZSet[i].Member) || (x != y && !(math.IsNaN(x) && math.IsNaN(y))) {
			return false
		}
	}
	return true
}

// FuzzLZF checks that decompression of arbitrary input never panics and
// that compression round-trips.
func FuzzLZF(f *testing.F) {
	htab := new([1 << lzfHashLog]int32)
	f.Add([]byte("abcabcabcabcabcabc"), 18)
	f.Add(lzfCompress(nil, bytes.Repeat([]byte("abcdefgh"), 250), htab), 2000)
	f.Add([]byte{0xE0, 0xFF, 0x00}, 300)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		n %= 1 << 20
		out, err := lzfDecompress(nil, data, n)
		if err == nil && len(out) != n {
			t.Fatalf("got %d bytes, want %d", len(out), n)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		c := lzfCompress(nil, data, htab)
		back, err := lzfDecompress(nil, c, len(data))
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

// fuzzSeeds returns the real Redis files and small generated files.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, name := range []string{"redis-7.0.15-types.rdb", "redis-7.0.15-extra.rdb"} {
		if b, err := os.ReadFile(filepath.Join(dataDir, name)); err == nil {
			seeds = append(seeds, b)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 4 {
		es := genEntries(rng, 3+i)
		for _, e := range es {
			if len(e.String) > 100 {
				e.String = e.String[:100]
			}
		}
		var buf bytes.Buffer
		w, _ := NewWriter(&buf, WriterOptions{Compress: i%2 == 1, ListNodeSize: 40})
		for _, e := range es {
			_ = w.WriteEntry(e)
		}
		_ = w.Close()
		if buf.Len() < 4096 {
			seeds = append(seeds, buf.Bytes())
		}
	}
	seeds = append(seeds,
		entryFile(typeListZiplist, "l", rawb(buildZiplist("a", 5, -300, int64(1)<<40, "bb"))),
		entryFile(typeHashZipmap, "h", rawb(buildZipmap("f", "v", "g", "w"))),
		entryFile(typeSetIntset, "s", rawb(buildIntset(4, 1, 2, 70000))),
		entryFile(typeZSet, "z", cat(lenb(2), raw("a"), []byte{3}, []byte("1.5"), raw("b"), []byte{254})),
		entryFile(typeListQuicklist, "q", cat(lenb(1), rawb(buildZiplist("x", 1)))),
		rdbFile(10, []byte{typeModule2}, raw("m"), lenb(1), lenb(moduleOpDouble), make([]byte, 8), lenb(moduleOpEOF)),
		rdbFile(10, []byte{opModuleAux}, lenb(1), lenb(moduleOpUInt), lenb(2), lenb(moduleOpEOF), []byte{opExpireSec, 1, 2, 3, 4, opIdle, 5, opFreq, 6, typeString}, raw("k"), raw("v")),
	)
	return seeds
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpus under
// testdata/fuzz when RDB_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("RDB_WRITE_CORPUS") != "1" {
		t.Skip("set RDB_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, s := range fuzzSeeds() {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzLZF")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	htab := new([1 << lzfHashLog]int32)
	for i, s := range []string{"hello hello hello hello", string(bytes.Repeat([]byte("abcdefgh"), 250)), "abc"} {
		c := lzfCompress(nil, []byte(s), htab)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nint(%d)\n", strconv.Quote(string(c)), len(s))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
	}
}
