package kv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/rdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fill writes a mix of every type into s.
func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	var c Client
	for i := range n {
		k := fmt.Sprint(i)
		require.Equal(t, "+OK\r\n", run(s, &c, "SET s"+k+" v"+k))
		run(s, &c, "RPUSH l"+k+" a b c "+k)
		run(s, &c, "SADD set"+k+" x y "+k)
		run(s, &c, "HSET h"+k+" f v g "+k)
		run(s, &c, "ZADD z"+k+" 1 a 2.5 b -3 "+k)
		if i%3 == 0 {
			run(s, &c, "PEXPIREAT s"+k+" 1800000000000")
		}
	}
	run(s, &c, "SELECT 7")
	run(s, &c, "SET in7 x")
	run(s, &c, "SELECT 0")
}

func TestSnapshotIsCopyOnWrite(t *testing.T) {
	s := New(Options{})
	fill(t, s, 50)
	var c Client
	run(s, &c, "RPUSH big "+string(bytes.Repeat([]byte("e "), 1000)))
	before := s.Digest()

	var atomically bool
	snap := s.Snapshot(func() { atomically = true })
	assert.True(t, atomically)
	assert.Equal(t, before, snap.Digest())

	// Mutate everything heavily: in place, by replacement, by deletion.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		k := fmt.Sprint(i)
		run(s, &c, "APPEND s"+k+" more")
		run(s, &c, "RPUSH l"+k+" d e f")
		run(s, &c, "LPOP l"+k)
		run(s, &c, "SADD set"+k+" z")
		run(s, &c, "SREM set"+k+" x")
		run(s, &c, "HSET h"+k+" f changed new 1")
		run(s, &c, "HDEL h"+k+" g")
		run(s, &c, "ZADD z"+k+" 100 a 7 new")
		run(s, &c, "ZINCRBY z"+k+" 1 b")
		run(s, &c, "EXPIRE s"+k+" 100")
		if r.IntN(4) == 0 {
			run(s, &c, "DEL l"+k+" s"+k)
		}
	}
	for range 500 {
		run(s, &c, "LPOP big")
	}
	run(s, &c, "FLUSHDB")
	run(s, &c, "SELECT 7")
	run(s, &c, "SET in7 changed")
	run(s, &c, "SELECT 0")
	require.NotEqual(t, before, s.Digest())
	assert.Equal(t, before, snap.Digest(), "the snapshot still holds the original contents")

	// The snapshot's RDB holds the original data.
	var buf bytes.Buffer
	_, err := snap.WriteRDB(&buf, nil)
	require.NoError(t, err)
	d, err := LoadRDB(&buf, LoadOptions{})
	require.NoError(t, err)
	fresh := New(Options{})
	fresh.Swap(d)
	assert.Equal(t, before, fresh.Digest())

	snap.Release()
	snap.Release()
	assert.Equal(t, 0, s.snaps)
	assert.Equal(t, uint64(0), s.snapEpoch)
}

func TestSnapshotDuringConcurrentWrites(t *testing.T) {
	s := New(Options{})
	fill(t, s, 200)
	want := s.Digest()
	snap := s.Snapshot(nil)
	defer snap.Release()

	done := make(chan struct{})
	go func() {
		defer close(done)
		var c Client
		for i := range 2000 {
			k := fmt.Sprint(i % 200)
			run(s, &c, "RPUSH l"+k+" x")
			run(s, &c, "HSET h"+k+" f "+k)
			run(s, &c, "ZADD z"+k+" "+k+" a")
			run(s, &c, "SADD set"+k+" q")
			run(s, &c, "APPEND s"+k+" q")
		}
	}()
	var buf bytes.Buffer
	_, err := snap.WriteRDB(&buf, map[string]string{"repl-offset": "123"})
	require.NoError(t, err)
	<-done
	d, err := LoadRDB(&buf, LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, "123", d.Aux()["repl-offset"])
	fresh := New(Options{})
	fresh.Swap(d)
	assert.Equal(t, want, fresh.Digest())
}

func TestNoCopyWithoutSnapshot(t *testing.T) {
	s := New(Options{})
	var c Client
	run(s, &c, "RPUSH l a")
	o := s.dbs[0].keys.get("l")
	run(s, &c, "RPUSH l b")
	assert.Same(t, o, s.dbs[0].keys.get("l"), "mutated in place")

	snap := s.Snapshot(nil)
	run(s, &c, "RPUSH l c")
	clone := s.dbs[0].keys.get("l")
	assert.NotSame(t, o, clone, "cloned on first write after the snapshot")
	run(s, &c, "RPUSH l d")
	assert.Same(t, clone, s.dbs[0].keys.get("l"), "cloned once only")
	assert.Equal(t, 2, o.list().len())
	snap.Release()
	run(s, &c, "RPUSH l e")
	assert.Same(t, clone, s.dbs[0].keys.get("l"))
}

func TestRDBRoundTrip(t *testing.T) {
	s := New(Options{})
	fill(t, s, 100)
	var c Client
	run(s, &c, "SET empty \"\"")
	run(s, &c, "SET int 12345")
	run(s, &c, "ZADD zi 1e300 a -inf b inf c")
	snap := s.Snapshot(nil)
	var buf bytes.Buffer
	n, err := snap.WriteRDB(&buf, map[string]string{"repl-id": "abc", "repl-stream-db": "0"})
	require.NoError(t, err)
	snap.Release()
	assert.Equal(t, int64(buf.Len()), n)
	assert.Equal(t, "REDIS0010", string(buf.Bytes()[:9]))

	d, err := LoadRDB(bytes.NewReader(buf.Bytes()), LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, "abc", d.Aux()["repl-id"])
	assert.Equal(t, 1, d.DBSize(7))
	other := New(Options{})
	run(other, &c, "SET old data")
	other.Swap(d)
	assert.Equal(t, s.Digest(), other.Digest())
	var c2 Client
	assert.Equal(t, "$-1\r\n", run(other, &c2, "GET old"))
	assert.Equal(t, "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\n7\r\n", run(other, &c2, "LRANGE l7 0 -1"))

	// A truncated stream fails without touching anything.
	_, err = LoadRDB(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), LoadOptions{})
	assert.Error(t, err)
	_, err = LoadRDB(bytes.NewReader(buf.Bytes()), LoadOptions{Databases: 4})
	assert.ErrorContains(t, err, "database 7")
}

// TestRDBAdapters runs a full resync's data path through the rdb package's
// psync adapters, as the kvserver host wires them.
func TestRDBAdapters(t *testing.T) {
	master := New(Options{})
	fill(t, master, 30)
	snap := master.Snapshot(nil)
	rs := rdb.NewSnapshot(rdb.SnapshotConfig{Offset: 42, StreamDB: 3, Write: snap.WriteEntries, Release: snap.Release})
	var buf bytes.Buffer
	_, err := rs.WriteTo(&buf)
	require.NoError(t, err)
	rs.Release()

	replica := New(Options{})
	var c Client
	run(replica, &c, "SET stale x")
	var info rdb.LoadInfo
	loader := &rdb.Loader{Begin: func(li rdb.LoadInfo) (rdb.Builder, error) {
		info = li
		return replica.NewBuilder(), nil
	}}
	loaded, err := loader.Load(context.Background(), &buf, psync.SnapshotInfo{Offset: 42, Size: int64(buf.Len())})
	require.NoError(t, err)
	assert.Equal(t, 3, info.StreamDB)
	assert.Equal(t, "42", info.Aux["repl-offset"])
	assert.NotEqual(t, master.Digest(), replica.Digest(), "nothing changes before Commit")
	loaded.Commit()
	assert.Equal(t, master.Digest(), replica.Digest())
}
