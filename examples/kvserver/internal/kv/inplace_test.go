package kv

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/rdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SET overwrites a string value in place when no snapshot can see it; these
// tests check that no snapshot, no neighbouring value and no reply ever
// sees such a write.

func TestSetInPlaceLeavesSnapshotIntact(t *testing.T) {
	s := New(Options{})
	var c Client
	for i := range 100 {
		run(s, &c, fmt.Sprintf("SET k%d value-%03d", i, i))
	}
	snap := s.Snapshot(nil)
	before := snap.Digest()
	for i := range 100 {
		// Same length: would fit in place, but the snapshot shares them.
		run(s, &c, fmt.Sprintf("SET k%d VALUE-%03d", i, i))
		run(s, &c, fmt.Sprintf("APPEND k%d x", i))
		run(s, &c, fmt.Sprintf("SET k%d again-%03d", i, i))
	}
	assert.Equal(t, before, snap.Digest(), "the snapshot changed")
	var buf bytes.Buffer
	_, err := snap.WriteRDB(&buf, nil)
	require.NoError(t, err)
	snap.Release()
	d, err := LoadRDB(&buf, LoadOptions{})
	require.NoError(t, err)
	for i := range 100 {
		assert.Equal(t, fmt.Sprintf("value-%03d", i), string(d.dbs[0].keys.get(fmt.Sprint("k", i)).str))
		assert.Equal(t, fmt.Sprintf("$9\r\nagain-%03d\r\n", i), run(s, &c, fmt.Sprintf("GET k%d", i)))
	}
	// No snapshot now: in place, shorter and longer.
	run(s, &c, "SET k1 ab")
	run(s, &c, "SET k2 "+string(bytes.Repeat([]byte("z"), 300)))
	assert.Equal(t, "$2\r\nab\r\n", run(s, &c, "GET k1"))
	assert.Equal(t, "$9\r\nagain-000\r\n", run(s, &c, "GET k0"))
	assert.Equal(t, "$9\r\nagain-003\r\n", run(s, &c, "GET k3"))
}

func TestSetInPlaceOnLoadedValues(t *testing.T) {
	// Values loaded from an RDB sit next to each other in the load arena:
	// overwriting one must not touch its neighbours.
	var buf bytes.Buffer
	w, err := rdb.NewWriter(&buf, rdb.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.SelectDB(0, 3, 0))
	for i := range 300 {
		require.NoError(t, w.WriteEntry(&rdb.Entry{Key: fmt.Appendf(nil, "k%d", i), String: fmt.Appendf(nil, "v%05d", i), Idle: -1, Freq: -1}))
	}
	require.NoError(t, w.WriteEntry(&rdb.Entry{Key: []byte(""), String: []byte("empty key"), Idle: -1, Freq: -1}))
	require.NoError(t, w.WriteEntry(&rdb.Entry{Key: []byte("h"), Kind: rdb.KindHash, Hash: []rdb.HashField{{Field: []byte("f"), Value: []byte("x")}}, Idle: -1, Freq: -1}))
	require.NoError(t, w.Close())
	d, err := LoadRDB(&buf, LoadOptions{})
	require.NoError(t, err)
	s := New(Options{})
	s.Swap(d)
	var c Client
	for i := 0; i < 300; i += 2 {
		run(s, &c, fmt.Sprintf("SET k%d W%05d", i, i))
	}
	run(s, &c, "SET k1 longer-than-before")
	for i := 0; i < 300; i++ {
		want := fmt.Sprintf("v%05d", i)
		switch {
		case i == 1:
			want = "longer-than-before"
		case i%2 == 0:
			want = fmt.Sprintf("W%05d", i)
		}
		assert.Equal(t, fmt.Sprintf("$%d\r\n%s\r\n", len(want), want), run(s, &c, fmt.Sprintf("GET k%d", i)), "k%d", i)
	}
	assert.Equal(t, "$9\r\nempty key\r\n", string(s.Exec(&c, [][]byte{[]byte("GET"), {}}, nil)))
	assert.Equal(t, "$1\r\nx\r\n", run(s, &c, "HGET h f"))
	// And a snapshot of the loaded dataset writes what the store holds.
	snap := s.Snapshot(nil)
	defer snap.Release()
	assert.Equal(t, s.Digest(), snap.Digest())
}

func TestReserveKeepsLoading(t *testing.T) {
	d := NewDataset(2)
	d.Reserve(1, 1000, 10)
	d.Reserve(5, 1000, 10) // invalid db: ignored
	require.NoError(t, d.Add(&rdb.Entry{DB: 1, Key: []byte("a"), String: []byte("1"), ExpireAt: 5}))
	d.Reserve(1, 1000, 10) // not empty: ignored
	assert.Equal(t, 1, d.DBSize(1))
	assert.Equal(t, int64(5), d.dbs[1].expires["a"])
}

func TestAddPipelineKeepsOrder(t *testing.T) {
	// More keys than one insertion batch, then the same keys again: the
	// later ones must win, dropping or replacing the expiry; DBSize in the
	// middle of the load sees every key added so far.
	d := NewDataset(4)
	m := 2*insertBatch + 5
	for i := range m {
		require.NoError(t, d.Add(&rdb.Entry{DB: 2, Key: fmt.Appendf(nil, "k%d", i), String: []byte("old"), ExpireAt: 1000, Idle: -1, Freq: -1}))
	}
	assert.Equal(t, m, d.DBSize(2))
	for i := range m {
		e := &rdb.Entry{DB: 2, Key: fmt.Appendf(nil, "k%d", i), String: fmt.Appendf(nil, "new%d", i), Idle: -1, Freq: -1}
		if i%2 == 1 {
			e.ExpireAt = 2000
		}
		require.NoError(t, d.Add(e))
	}
	require.NoError(t, d.Add(&rdb.Entry{DB: 3, Key: []byte("last"), String: []byte("x"), Idle: -1, Freq: -1}))
	s := New(Options{Databases: 4})
	s.Swap(d)
	assert.Equal(t, m, s.DBSize(2))
	assert.Equal(t, 1, s.DBSize(3))
	keys, expires := s.DBStats(2)
	assert.Equal(t, m, keys)
	assert.Equal(t, m/2, expires)
	for i := range m {
		assert.Equal(t, fmt.Sprintf("new%d", i), string(s.dbs[2].keys.get(fmt.Sprint("k", i)).str))
		at, ok := s.dbs[2].expires[fmt.Sprint("k", i)]
		assert.Equal(t, i%2 == 1, ok)
		if ok {
			assert.Equal(t, int64(2000), at)
		}
	}
}

func TestBuilderTakesSizeHints(t *testing.T) {
	// A file of 3000 keys over two databases through rdb.Loader: the
	// Builder gets the RESIZEDB hints (rdb.SizeHinter) and the data arrive
	// whole; a hostile hint is capped, not trusted.
	var buf bytes.Buffer
	w, err := rdb.NewWriter(&buf, rdb.WriterOptions{})
	require.NoError(t, err)
	require.NoError(t, w.SelectDB(1, 2000, 0))
	for i := range 2000 {
		require.NoError(t, w.WriteEntry(&rdb.Entry{Key: fmt.Appendf(nil, "k%d", i), String: []byte("v"), Idle: -1, Freq: -1}))
	}
	require.NoError(t, w.SelectDB(2, 1<<60, 1<<60))
	for i := range 1000 {
		require.NoError(t, w.WriteEntry(&rdb.Entry{Key: fmt.Appendf(nil, "j%d", i), String: []byte("w"), ExpireAt: 9, Idle: -1, Freq: -1}))
	}
	require.NoError(t, w.Close())
	s := New(Options{})
	l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return s.NewBuilder(), nil }}
	loaded, err := l.Load(context.Background(), &buf, psync.SnapshotInfo{Size: int64(buf.Len())})
	require.NoError(t, err)
	loaded.Commit()
	assert.Equal(t, 2000, s.DBSize(1))
	keys, expires := s.DBStats(2)
	assert.Equal(t, 1000, keys)
	assert.Equal(t, 1000, expires)
}

// A new string key shares one allocation with its value (newStringObject):
// every way of changing the value in place must leave the key's bytes, and
// so the key table, intact.
func TestSharedKeyAndValueStayApart(t *testing.T) {
	s := New(Options{})
	var c Client
	require.Equal(t, "+OK\r\n", run(s, &c, "SET key123 abcdefghij"))
	o := s.dbs[0].keys.get("key123")
	require.NotNil(t, o)
	require.Equal(t, 10, cap(o.str), "the value's capacity ends where the allocation does")
	for _, cmd := range []string{
		"SET key123 ABCDEFGHIJ",    // same length, in place
		"SET key123 xy",            // shorter, in place
		"APPEND key123 QRSTUVWX",   // fills the allocation
		"APPEND key123 0123456789", // outgrows it
		"SET key123 41",
		"INCR key123",
		"SET key123 zzzzzzzz",
	} {
		run(s, &c, cmd)
		assert.Equal(t, "key123", o.key, "after %s", cmd)
		assert.NotNil(t, s.dbs[0].keys.get("key123"), "after %s", cmd)
	}
	assert.Equal(t, "$8\r\nzzzzzzzz\r\n", run(s, &c, "GET key123"))
	assert.Equal(t, ":1\r\n", run(s, &c, "DEL key123"))
	assert.Nil(t, s.dbs[0].keys.get("key123"))
	require.Equal(t, "+OK\r\n", run(s, &c, "SET \"\" v"), "the empty key takes the other path")
	assert.Equal(t, "$1\r\nv\r\n", run(s, &c, "GET \"\""))
}
