package rdb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/psyncio/psync/rdb"
)

// mapHost is a tiny host: databases of cloned Entries, SET/DEL/SELECT as its
// only commands, replicating through the rdb adapter.
type mapHost struct {
	mu       sync.Mutex
	dbs      map[int]map[string]*rdb.Entry
	m        *psync.Master
	streamDB int // db of the last SELECT fed; -1 forces one

	// replica side
	client   int // db the stream has selected
	loads    int
	lastInfo rdb.LoadInfo
}

func newMapHost() *mapHost { return &mapHost{dbs: map[int]map[string]*rdb.Entry{}, streamDB: -1} }

func (h *mapHost) put(e *rdb.Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.putLocked(e.Clone())
	if h.m != nil && e.Kind == rdb.KindString {
		h.feed(e.DB, "SET", string(e.Key), string(e.String))
	}
}

func (h *mapHost) putLocked(e *rdb.Entry) {
	if h.dbs[e.DB] == nil {
		h.dbs[e.DB] = map[string]*rdb.Entry{}
	}
	h.dbs[e.DB][string(e.Key)] = e
}

func (h *mapHost) feed(db int, args ...string) {
	var b []byte
	if db != h.streamDB {
		b = psync.AppendCommandString(b, "SELECT", strconv.Itoa(db))
		h.streamDB = db
	}
	h.m.Feed(psync.AppendCommandString(b, args...))
}

// Snapshot implements psync.Snapshotter: copy the maps under the lock.
func (h *mapHost) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	view := map[int]map[string]*rdb.Entry{}
	for db, keys := range h.dbs {
		view[db] = maps.Clone(keys)
	}
	pos := h.m.Position()
	sdb := h.streamDB
	h.streamDB = -1
	return rdb.NewSnapshot(rdb.SnapshotConfig{
		Offset: pos.Offset, ReplID: pos.ID, StreamDB: sdb,
		Write: func(w *rdb.Writer) error {
			for _, db := range slices.Sorted(maps.Keys(view)) {
				if err := w.SelectDB(db, uint64(len(view[db])), 0); err != nil {
					return err
				}
				for _, k := range slices.Sorted(maps.Keys(view[db])) {
					if err := w.WriteEntry(view[db][k]); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}), nil
}

// mapBuilder builds a new map of databases.
type mapBuilder struct {
	h   *mapHost
	dbs map[int]map[string]*rdb.Entry
	db  int
}

func (b *mapBuilder) Add(e *rdb.Entry) error {
	if b.dbs[e.DB] == nil {
		b.dbs[e.DB] = map[string]*rdb.Entry{}
	}
	b.dbs[e.DB][string(e.Key)] = e.Clone()
	return nil
}

func (b *mapBuilder) Commit() {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	b.h.dbs, b.h.client = b.dbs, b.db
	b.h.loads++
}

func (b *mapBuilder) Discard() {}

func (h *mapHost) loader() *rdb.Loader {
	return &rdb.Loader{Begin: func(info rdb.LoadInfo) (rdb.Builder, error) {
		h.mu.Lock()
		h.lastInfo = info
		h.mu.Unlock()
		return &mapBuilder{h: h, dbs: map[int]map[string]*rdb.Entry{}, db: info.StreamDB}, nil
	}}
}

// Apply implements psync.Applier for SELECT, SET and DEL.
func (h *mapHost) Apply(cmd psync.Command) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case cmd.Is("select"):
		n, err := strconv.Atoi(string(cmd.Args[1]))
		if err != nil {
			return err
		}
		h.client = n
	case cmd.Is("set"):
		h.putLocked(&rdb.Entry{DB: h.client, Key: bytes.Clone(cmd.Args[1]), Kind: rdb.KindString, String: bytes.Clone(cmd.Args[2])})
	case cmd.Is("del"):
		delete(h.dbs[h.client], string(cmd.Args[1]))
	default:
		return fmt.Errorf("unknown command %s", cmd.Name())
	}
	return nil
}

// dump renders the dataset canonically for comparison.
func (h *mapHost) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b bytes.Buffer
	for _, db := range slices.Sorted(maps.Keys(h.dbs)) {
		for _, k := range slices.Sorted(maps.Keys(h.dbs[db])) {
			e := h.dbs[db][k]
			fmt.Fprintf(&b, "%d %s %s exp=%d str=%q list=%q set=%q", db, e.Kind, k, e.ExpireAt, e.String, e.List, e.Set)
			for _, f := range e.Hash {
				fmt.Fprintf(&b, " h:%q=%q", f.Field, f.Value)
			}
			for _, m := range e.ZSet {
				fmt.Fprintf(&b, " z:%q=%v", m.Member, m.Score)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func sampleEntries() []*rdb.Entry {
	exp := time.Now().Add(time.Hour).UnixMilli()
	return []*rdb.Entry{
		{DB: 0, Key: []byte("str"), Kind: rdb.KindString, String: []byte("hello")},
		{DB: 0, Key: []byte("int"), Kind: rdb.KindString, String: []byte("12345")},
		{DB: 0, Key: []byte("ttl"), Kind: rdb.KindString, String: []byte("soon"), ExpireAt: exp},
		{DB: 0, Key: []byte("list"), Kind: rdb.KindList, List: [][]byte{[]byte("a"), []byte("b"), []byte("c")}},
		{DB: 3, Key: []byte("set"), Kind: rdb.KindSet, Set: [][]byte{[]byte("x"), []byte("y")}},
		{DB: 3, Key: []byte("hash"), Kind: rdb.KindHash, Hash: []rdb.HashField{{Field: []byte("f"), Value: []byte("v")}}},
		{DB: 5, Key: []byte("zset"), Kind: rdb.KindZSet, ZSet: []rdb.ZMember{{Member: []byte("m1"), Score: 1.5}, {Member: []byte("m2"), Score: -2}}},
	}
}

// A replica loads the master's dataset through the adapter in a full
// resync, learns repl-stream-db, then follows the stream; a cut link
// continues partially.
func TestSnapshotLoaderRoundTripThroughPsync(t *testing.T) {
	master := newMapHost()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: master, FullSyncDelay: -1, Logger: quietLogger()})
	require.NoError(t, err)
	defer m.Close()
	master.m = m
	for _, e := range sampleEntries() {
		master.put(e)
	}
	// The last SELECT fed is db 5: the snapshot must say so.
	master.put(&rdb.Entry{DB: 5, Key: []byte("s5"), Kind: rdb.KindString, String: []byte("in five")})
	d := psynctest.NewDialer(m)
	defer d.Close()

	replica := newMapHost()
	replica.client = -1
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: d.Dial, Loader: replica.loader(), Applier: replica, Logger: quietLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	waitOffset(t, r, m.Offset())
	require.Equal(t, master.dump(), replica.dump())
	replica.mu.Lock()
	info := replica.lastInfo
	client := replica.client
	replica.mu.Unlock()
	require.Equal(t, 5, info.StreamDB)
	require.Equal(t, 5, client)
	require.Equal(t, rdb.RedisVersion, info.Aux["redis-ver"])
	require.Equal(t, string(m.Position().ID), info.Aux["repl-id"])
	require.Equal(t, strconv.FormatInt(info.Sync.Offset, 10), info.Aux["repl-offset"])
	require.Equal(t, 10, info.Version)

	// Streaming: the first command after the snapshot carries a SELECT.
	master.put(&rdb.Entry{DB: 5, Key: []byte("after"), Kind: rdb.KindString, String: []byte("1")})
	master.put(&rdb.Entry{DB: 0, Key: []byte("str"), Kind: rdb.KindString, String: []byte("changed")})
	waitOffset(t, r, m.Offset())
	require.Equal(t, master.dump(), replica.dump())

	// Cut the link: the replica continues partially.
	d.Last().Cut()
	master.put(&rdb.Entry{DB: 2, Key: []byte("during"), Kind: rdb.KindString, String: []byte("cut")})
	waitOffset(t, r, m.Offset())
	require.Equal(t, master.dump(), replica.dump())
	require.Equal(t, int64(1), m.Stats().FullSyncs)
	require.GreaterOrEqual(t, m.Stats().PartialOK, int64(1))
	replica.mu.Lock()
	require.Equal(t, 1, replica.loads)
	replica.mu.Unlock()

	cancel()
	<-done
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func waitOffset(t *testing.T, r *psync.Replica, off int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.WaitOffset(ctx, off), "replica at %d, want %d (%v)", r.Offset(), off, r.Stats().LastError)
}

func TestSnapshotWriteToAuxAndRelease(t *testing.T) {
	released := 0
	id := psync.NewReplID()
	s := rdb.NewSnapshot(rdb.SnapshotConfig{
		Offset: 1234, ReplID: id, StreamDB: -1, Ctime: time.Unix(1700000000, 0),
		Aux: []rdb.AuxField{{Key: "extra", Value: "x"}},
		Write: func(w *rdb.Writer) error {
			if err := w.SelectDB(0, 1, 0); err != nil {
				return err
			}
			return w.WriteEntry(sampleEntries()[0])
		},
		Release: func() { released++ },
	})
	require.Equal(t, int64(1234), s.Offset())
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	s.Release()
	s.Release()
	require.Equal(t, 1, released)

	rd := rdb.NewReader(&buf, rdb.ReaderOptions{})
	e, err := rd.Next()
	require.NoError(t, err)
	require.Equal(t, "str", string(e.Key))
	_, err = rd.Next()
	require.ErrorIs(t, err, io.EOF)
	aux := rd.Aux()
	require.Equal(t, map[string]string{
		"redis-ver": rdb.RedisVersion, "redis-bits": "64", "ctime": "1700000000", "used-mem": "0",
		"repl-stream-db": "0", "repl-id": string(id), "repl-offset": "1234", "aof-base": "0", "extra": "x",
	}, aux)
}

type recBuilder struct {
	keys               []string
	committed, discard int
	failAt             int
}

func (b *recBuilder) Add(e *rdb.Entry) error {
	if b.failAt > 0 && len(b.keys)+1 == b.failAt {
		return errors.New("host refused")
	}
	b.keys = append(b.keys, string(e.Key))
	return nil
}
func (b *recBuilder) Commit()  { b.committed++ }
func (b *recBuilder) Discard() { b.discard++ }

func sampleRDB(t *testing.T) []byte {
	var buf bytes.Buffer
	s := rdb.NewSnapshot(rdb.SnapshotConfig{Offset: 7, StreamDB: 2, Write: func(w *rdb.Writer) error {
		cur := -1
		for _, e := range sampleEntries() {
			if e.DB != cur {
				cur = e.DB
				if err := w.SelectDB(cur, 1, 0); err != nil {
					return err
				}
			}
			if err := w.WriteEntry(e); err != nil {
				return err
			}
		}
		return nil
	}})
	_, err := s.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func TestLoaderDiscardsOnFailure(t *testing.T) {
	data := sampleRDB(t)
	info := psync.SnapshotInfo{Offset: 7, Size: int64(len(data))}

	t.Run("complete", func(t *testing.T) {
		b := &recBuilder{}
		var got rdb.LoadInfo
		l := &rdb.Loader{Begin: func(i rdb.LoadInfo) (rdb.Builder, error) { got = i; return b, nil }}
		ls, err := l.Load(context.Background(), bytes.NewReader(data), info)
		require.NoError(t, err)
		require.Len(t, b.keys, len(sampleEntries()))
		require.Equal(t, 2, got.StreamDB)
		require.Equal(t, int64(7), got.Sync.Offset)
		ls.Commit()
		require.Equal(t, 1, b.committed)
	})
	t.Run("truncated", func(t *testing.T) {
		b := &recBuilder{}
		l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return b, nil }}
		_, err := l.Load(context.Background(), bytes.NewReader(data[:len(data)-20]), info)
		require.ErrorIs(t, err, rdb.ErrTruncated)
		require.Equal(t, 1, b.discard)
		require.Zero(t, b.committed)
	})
	t.Run("corrupt checksum", func(t *testing.T) {
		bad := bytes.Clone(data)
		bad[len(bad)-1] ^= 0xff
		b := &recBuilder{}
		l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return b, nil }}
		_, err := l.Load(context.Background(), bytes.NewReader(bad), info)
		require.ErrorIs(t, err, rdb.ErrChecksum)
		require.Equal(t, 1, b.discard)
	})
	t.Run("builder refuses", func(t *testing.T) {
		b := &recBuilder{failAt: 3}
		l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return b, nil }}
		_, err := l.Load(context.Background(), bytes.NewReader(data), info)
		require.ErrorContains(t, err, "host refused")
		require.Equal(t, 1, b.discard)
	})
	t.Run("begin refuses", func(t *testing.T) {
		l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return nil, errors.New("no room") }}
		_, err := l.Load(context.Background(), bytes.NewReader(data), info)
		require.ErrorContains(t, err, "no room")
	})
	t.Run("empty dataset", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := rdb.NewSnapshot(rdb.SnapshotConfig{Write: func(*rdb.Writer) error { return nil }}).WriteTo(&buf)
		require.NoError(t, err)
		b := &recBuilder{}
		l := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return b, nil }}
		ls, err := l.Load(context.Background(), &buf, info)
		require.NoError(t, err)
		require.Empty(t, b.keys)
		ls.Commit()
		require.Equal(t, 1, b.committed)
	})
}

// pairsBuilder collects string keys into a map, installed on Commit.
type pairsBuilder struct {
	next map[string]string
	live *map[string]string
}

func (b *pairsBuilder) Add(e *rdb.Entry) error {
	if e.Kind != rdb.KindString {
		return fmt.Errorf("key %q: only strings here", e.Key)
	}
	b.next[string(e.Key)] = string(e.String) // copy: e is reused
	return nil
}
func (b *pairsBuilder) Commit()  { *b.live = b.next }
func (b *pairsBuilder) Discard() {}

// A host plugs its dataset into psync with the adapter: NewSnapshot on the
// master side (psync.Snapshotter), a Loader with a Builder on the replica
// side (psync.Loader). Here the snapshot is written and loaded directly.
func ExampleLoader() {
	// Master side, inside the host's Snapshotter: capture under the write
	// lock, encode later.
	data := map[string]string{"a": "1", "b": "2"}
	view := maps.Clone(data)
	snap := rdb.NewSnapshot(rdb.SnapshotConfig{
		Offset: 42, StreamDB: 0,
		Write: func(w *rdb.Writer) error {
			if err := w.SelectDB(0, uint64(len(view)), 0); err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(view)) {
				if err := w.WriteEntry(&rdb.Entry{Key: []byte(k), Kind: rdb.KindString, String: []byte(view[k])}); err != nil {
					return err
				}
			}
			return nil
		},
	})
	defer snap.Release()
	var wire bytes.Buffer
	if _, err := snap.WriteTo(&wire); err != nil {
		fmt.Println(err)
		return
	}

	// Replica side: the Loader builds a new map; psync commits it.
	live := map[string]string{"stale": "x"}
	loader := &rdb.Loader{Begin: func(info rdb.LoadInfo) (rdb.Builder, error) {
		fmt.Println("loading at offset", info.Sync.Offset, "redis-ver", info.Aux["redis-ver"], "stream db", info.StreamDB)
		return &pairsBuilder{next: map[string]string{}, live: &live}, nil
	}}
	loaded, err := loader.Load(context.Background(), &wire, psync.SnapshotInfo{Offset: snap.Offset(), Size: int64(wire.Len())})
	if err != nil {
		fmt.Println(err)
		return
	}
	loaded.Commit()
	fmt.Println(live)
	// Output:
	// loading at offset 42 redis-ver 7.0.15 stream db 0
	// map[a:1 b:2]
}
