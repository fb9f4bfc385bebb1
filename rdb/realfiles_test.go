package rdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var dataDir = filepath.Join("..", "..", "shared", "data")

func readDataFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, name))
	require.NoError(t, err, "shared test data missing")
	return b
}

func strs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// typesFileEntries is what data/README.md says redis-7.0.15-types.rdb holds.
func typesFileEntries() map[string]*Entry {
	m := map[string]*Entry{}
	add := func(e *Entry) {
		e.Idle, e.Freq = -1, -1
		m[string(e.Key)] = e
	}
	str := func(k, v string) { add(&Entry{Key: []byte(k), Kind: KindString, String: []byte(v)}) }
	str("str", "hello world")
	str("int8", "42")
	str("int16", "12345")
	str("int32", "1234567")
	str("bigint", "12345678901")
	str("longstr", strings.Repeat("abcdefgh", 250))
	add(&Entry{Key: []byte("list"), Kind: KindList, List: strs("a", "b", "c", "1", "2", "3")})
	var items []string
	for i := 1; i <= 5000; i++ {
		items = append(items, fmt.Sprintf("item-%d", i))
	}
	add(&Entry{Key: []byte("biglist"), Kind: KindList, List: strs(items...)})
	add(&Entry{Key: []byte("setint"), Kind: KindSet, Set: strs("1", "2", "3", "100000")})
	add(&Entry{Key: []byte("setstr"), Kind: KindSet, Set: strs("a", "b", "c")})
	add(&Entry{Key: []byte("hash"), Kind: KindHash, Hash: []HashField{{[]byte("f1"), []byte("v1")}, {[]byte("f2"), []byte("2")}}})
	bh := &Entry{Key: []byte("bighash"), Kind: KindHash}
	bz := &Entry{Key: []byte("bigzset"), Kind: KindZSet}
	for i := 1; i <= 1000; i++ {
		bh.Hash = append(bh.Hash, HashField{[]byte(fmt.Sprintf("field%d", i)), []byte(fmt.Sprintf("value%d", i))})
		bz.ZSet = append(bz.ZSet, ZMember{[]byte(fmt.Sprintf("member%d", i)), float64(i) * 1.5})
	}
	add(bh)
	add(bz)
	add(&Entry{Key: []byte("zset"), Kind: KindZSet, ZSet: []ZMember{{[]byte("a"), 1}, {[]byte("b"), 2.5}}})
	add(&Entry{Key: []byte("ttlkey"), Kind: KindString, String: []byte("v")}) // ExpireAt checked apart
	return m
}

func checkEntries(t *testing.T, want map[string]*Entry, got []*Entry) {
	t.Helper()
	gm := byKey(got)
	assert.Len(t, gm, len(got), "duplicate keys")
	for k := range want {
		assert.Contains(t, gm, k)
	}
	for k := range gm {
		assert.Contains(t, want, k, "unexpected key")
	}
	for k, w := range want {
		g, ok := gm[k]
		if !ok {
			continue
		}
		if k == "ttlkey" {
			assert.NotZero(t, g.ExpireAt, "ttlkey has an expiry")
			g = g.Clone()
			g.ExpireAt = 0
		}
		assert.Equal(t, normalize(w), normalize(g), "key %s", k)
	}
	// Order-sensitive checks for lists and listpack containers.
	assert.Equal(t, want["biglist"].List, gm["biglist"].List)
	assert.Equal(t, want["hash"].Hash, gm["hash"].Hash)
	assert.Equal(t, want["zset"].ZSet, gm["zset"].ZSet)
}

func TestRealFileTypes(t *testing.T) {
	data := readDataFile(t, "redis-7.0.15-types.rdb")
	es, r, err := readAll(t, data, ReaderOptions{})
	require.NoError(t, err)
	assert.Equal(t, 10, r.Version())
	checkEntries(t, typesFileEntries(), es)
	for _, e := range es {
		assert.Equal(t, 0, e.DB)
		if string(e.Key) != "ttlkey" {
			assert.Zero(t, e.ExpireAt, "key %s", e.Key)
		}
	}
	// The TTL was 3600 s when the snapshot was taken at ctime.
	ttl := byKey(es)["ttlkey"]
	var ctime int64
	_, err = fmt.Sscan(r.Aux()["ctime"], &ctime)
	require.NoError(t, err)
	assert.Greater(t, ttl.ExpireAt, ctime*1000)
	assert.LessOrEqual(t, ttl.ExpireAt, ctime*1000+3600_000)
	assert.Equal(t, "7.0.15", r.Aux()["redis-ver"])
	assert.Equal(t, "64", r.Aux()["redis-bits"])
	assert.Empty(t, r.Functions())
	assert.Empty(t, r.Buffered())
	assert.Equal(t, int64(len(data)), r.Offset())
}

func TestRealFileExtra(t *testing.T) {
	data := readDataFile(t, "redis-7.0.15-extra.rdb")
	r := NewReader(bytes.NewReader(data), ReaderOptions{})
	var es []*Entry
	var unsupported []*UnsupportedTypeError
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			require.ErrorIs(t, err, ErrUnsupportedType)
			var ue *UnsupportedTypeError
			require.ErrorAs(t, err, &ue)
			unsupported = append(unsupported, ue)
			assert.Contains(t, err.Error(), `"stream"`)
			assert.Contains(t, err.Error(), "stream (19)")
			continue
		}
		es = append(es, e.Clone())
	}
	require.Len(t, unsupported, 1)
	assert.Equal(t, []byte("stream"), unsupported[0].Key)
	assert.Equal(t, byte(19), unsupported[0].Type)
	assert.True(t, unsupported[0].Skipped)

	want := typesFileEntries()
	var ints []string
	for i := 1; i <= 600; i++ {
		ints = append(ints, fmt.Sprint(i))
	}
	want["bigintset"] = &Entry{Key: []byte("bigintset"), Kind: KindSet, Set: strs(ints...), Idle: -1, Freq: -1}
	want["plainlist"] = &Entry{Key: []byte("plainlist"), Kind: KindList, List: strs("small", strings.Repeat("x", 300), "small2"), Idle: -1, Freq: -1}
	want["db1key"] = &Entry{DB: 1, Key: []byte("db1key"), Kind: KindString, String: []byte("hello"), Idle: -1, Freq: -1}
	checkEntries(t, want, es)
	assert.Equal(t, want["plainlist"].List, byKey(es)["plainlist"].List)
	for _, e := range es {
		if string(e.Key) == "db1key" {
			assert.Equal(t, 1, e.DB)
		} else {
			assert.Equal(t, 0, e.DB, "key %s", e.Key)
		}
	}

	require.Len(t, r.Functions(), 1)
	assert.True(t, bytes.HasPrefix(r.Functions()[0], []byte("#!lua name=mylib\n")), "%q", r.Functions()[0])
	assert.Contains(t, string(r.Functions()[0]), "redis.register_function('myfunc'")
	aux := r.Aux()
	for _, k := range []string{"redis-ver", "redis-bits", "ctime", "used-mem", "repl-stream-db", "repl-id", "repl-offset", "aof-base"} {
		assert.Contains(t, aux, k)
	}
	assert.Len(t, aux["repl-id"], 40)
	assert.Equal(t, "1", aux["repl-stream-db"])
	assert.Equal(t, "23907", aux["repl-offset"])
}

func TestRealFileSkipUnsupported(t *testing.T) {
	data := readDataFile(t, "redis-7.0.15-extra.rdb")
	var skipped []string
	es, _, err := readAll(t, data, ReaderOptions{SkipUnsupported: true, OnSkip: func(db int, key []byte, typ byte) {
		skipped = append(skipped, fmt.Sprintf("%d/%s/%s", db, key, TypeName(typ)))
	}})
	require.NoError(t, err)
	assert.Equal(t, []string{"0/stream/stream"}, skipped)
	assert.Len(t, es, 18)
}

// TestRealFileChunkedInput feeds the files one byte at a time, so every
// buffer boundary case is crossed.
func TestRealFileChunkedInput(t *testing.T) {
	for _, name := range []string{"redis-7.0.15-types.rdb", "redis-7.0.15-extra.rdb"} {
		data := readDataFile(t, name)
		want := mustRead(t, data)
		r := NewReader(&oneByteReader{data: data}, ReaderOptions{SkipUnsupported: true})
		var got []*Entry
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got = append(got, e.Clone())
		}
		assert.Equal(t, want, got, name)
	}
}

type oneByteReader struct {
	data []byte
	err  error
}

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(o.data) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.data[0]
	o.data = o.data[1:]
	return 1, nil
}

func TestRealFileEveryTruncation(t *testing.T) {
	data := readDataFile(t, "redis-7.0.15-extra.rdb")
	for n := 0; n < len(data); n += 1 + n/64 {
		_, _, err := readAll(t, data[:n], ReaderOptions{})
		require.Error(t, err, "truncated at %d", n)
		assert.ErrorIs(t, err, ErrCorrupt, "truncated at %d", n)
	}
}

func TestReaderPropagatesReadError(t *testing.T) {
	data := readDataFile(t, "redis-7.0.15-types.rdb")
	boom := errors.New("boom")
	r := NewReader(&oneByteReader{data: data[:100], err: boom}, ReaderOptions{})
	var err error
	for err == nil {
		_, err = r.Next()
	}
	assert.ErrorIs(t, err, boom)
	_, err2 := r.Next()
	assert.Equal(t, err, err2, "errors are sticky")
}
