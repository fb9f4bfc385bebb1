package kv

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair is a master whose propagated commands reach a replica the way a
// host sends them: as a RESP stream, with a SELECT whenever the database
// changes and the client's bytes where the store passes them, parsed back
// on the replica's side.
type pair struct {
	clock    *fakeClock
	master   *Store
	replica  *Store
	link     Client // the replica's client for the master link
	lastDB   int
	rawOps   int // commands streamed as the client's bytes
	applyErr []error
}

func newPair() *pair {
	p := &pair{clock: newFakeClock(), lastDB: -1}
	p.master = New(Options{Now: p.clock.Now})
	p.replica = New(Options{Now: p.clock.Now})
	p.replica.SetReadOnly(true)
	p.master.SetPropagate(func(db int, argv [][]byte, raw []byte) {
		var b []byte
		if db != p.lastDB {
			b = psync.AppendCommand(b, []byte("SELECT"), itob(int64(db)))
			p.lastDB = db
		}
		if raw != nil {
			b = append(b, raw...)
			p.rawOps++
		} else {
			b = psync.AppendCommand(b, argv...)
		}
		cr := psync.NewCommandReader(bytes.NewReader(b), psync.Limits{}, false)
		for {
			cmd, err := cr.ReadCommand()
			if err == io.EOF {
				return
			}
			if err != nil {
				p.applyErr = append(p.applyErr, fmt.Errorf("stream %q: %w", b, err))
				return
			}
			p.apply(cmd.Args)
		}
	})
	return p
}

func (p *pair) apply(argv [][]byte) {
	if err := p.replica.Apply(&p.link, argv); err != nil {
		p.applyErr = append(p.applyErr, fmt.Errorf("%q: %w", argv, err))
	}
}

// randomCommand returns a random command line over a few keys of every
// type, with options and mistakes (wrong types, bad arguments) mixed in.
func randomCommand(r *rand.Rand) string {
	key := fmt.Sprintf("k%d", r.IntN(8))
	val := fmt.Sprintf("v%d", r.IntN(5))
	n := r.IntN(6)
	num := fmt.Sprint(r.IntN(20) - 5)
	score := fmt.Sprintf("%.2f", r.Float64()*10-2)
	exp := []string{"EX 1", "PX 700", "EXAT 1700000003", "PXAT 1700000002500", "KEEPTTL", "", "", ""}[r.IntN(8)]
	cond := []string{"NX", "XX", "GET", "", ""}[r.IntN(5)]
	forms := []string{
		"SET " + key + " " + val + " " + exp + " " + cond,
		"SETEX " + key + " 2 " + val,
		"GET " + key, "GETDEL " + key, "GETEX " + key + " " + []string{"EX 1", "PX 300", "PXAT 1", "PERSIST", ""}[r.IntN(5)],
		"MSET " + key + " " + val + " k1 " + val,
		"INCR " + key, "INCRBY " + key + " " + num, "DECRBY " + key + " " + num,
		"INCRBYFLOAT " + key + " " + score, "APPEND " + key + " " + val,
		"DEL " + key + " k2", "UNLINK " + key,
		"EXPIRE " + key + " " + num + " " + []string{"NX", "XX", "GT", "LT", ""}[r.IntN(5)],
		"PEXPIRE " + key + " " + fmt.Sprint(r.IntN(3000)-200),
		"EXPIREAT " + key + " " + fmt.Sprint(1700000000+r.IntN(6)-2),
		"PEXPIREAT " + key + " " + fmt.Sprint(1700000000000+r.IntN(6000)-1000),
		"PERSIST " + key,
		"HSET " + key + " f" + fmt.Sprint(n) + " " + val + " g " + val, "HDEL " + key + " f" + fmt.Sprint(n) + " g",
		"HINCRBY " + key + " c " + num,
		"LPUSH " + key + " " + val + " " + val, "RPUSH " + key + " " + val,
		"LPOP " + key, "RPOP " + key + " " + fmt.Sprint(n),
		"SADD " + key + " " + val + " m" + fmt.Sprint(n), "SREM " + key + " " + val,
		"SPOP " + key, "SPOP " + key + " " + fmt.Sprint(n),
		"ZADD " + key + " " + []string{"NX", "XX", "GT", "LT CH", "INCR", ""}[r.IntN(6)] + " " + score + " " + val,
		"ZINCRBY " + key + " " + score + " " + val, "ZREM " + key + " " + val,
		"SELECT " + fmt.Sprint(r.IntN(3)),
		"FLUSHDB",
	}
	if r.IntN(200) == 0 {
		return "FLUSHALL"
	}
	return forms[r.IntN(len(forms))]
}

func TestMasterReplicaEquivalence(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			p := newPair()
			clients := make([]Client, 3)
			for i := range 3000 {
				c := &clients[r.IntN(len(clients))]
				switch r.IntN(40) {
				case 0:
					p.clock.Advance(time.Duration(r.IntN(800)) * time.Millisecond)
				case 1:
					p.master.ExpireCycle()
				case 2:
					// A transaction of a few commands.
					run(p.master, c, "MULTI")
					for range r.IntN(4) + 1 {
						run(p.master, c, randomCommand(r))
					}
					run(p.master, c, []string{"EXEC", "EXEC", "EXEC", "DISCARD"}[r.IntN(4)])
				default:
					run(p.master, c, randomCommand(r))
				}
				if i%500 == 0 {
					require.Equal(t, p.master.Digest(), p.replica.Digest(), "after %d commands", i)
				}
			}
			require.Empty(t, p.applyErr)
			assert.Positive(t, p.rawOps, "commands streamed as the client's bytes")
			assert.Equal(t, p.master.Digest(), p.replica.Digest())
			total := 0
			for db := range 16 {
				total += p.master.DBSize(db)
				assert.Equal(t, p.master.DBSize(db), p.replica.DBSize(db))
			}
			assert.Positive(t, total, "the random mix leaves some keys")
		})
	}
}

func TestReplicaReadOnly(t *testing.T) {
	s := New(Options{})
	s.SetReadOnly(true)
	var c Client
	assert.Equal(t, "-READONLY You can't write against a read only replica.\r\n", run(s, &c, "SET k v"))
	assert.Equal(t, "$-1\r\n", run(s, &c, "GET k"))
	assert.Equal(t, "+OK\r\n", run(s, &c, "MULTI"))
	assert.Equal(t, "-READONLY You can't write against a read only replica.\r\n", run(s, &c, "SET k v"))
	assert.Equal(t, "+QUEUED\r\n", run(s, &c, "GET k"))
	assert.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", run(s, &c, "EXEC"))
	assert.True(t, s.IsWrite([]byte("set")))
	assert.True(t, s.IsWrite([]byte("FlushAll")))
	assert.False(t, s.IsWrite([]byte("GET")))
	assert.False(t, s.IsWrite([]byte("nosuch")))
}

func TestApply(t *testing.T) {
	clock := newFakeClock()
	s := New(Options{Now: clock.Now})
	s.SetReadOnly(true)
	rec := &recorder{}
	s.SetPropagate(rec.hook)
	var link, reader Client
	apply := func(line string) { require.NoError(t, s.Apply(&link, args(line)), line) }

	apply("PING")
	apply("SELECT 2")
	assert.Equal(t, 2, link.DB)
	apply("SET k v PXAT 1700000000500")
	apply("SET n 10")
	apply("SET n 11 KEEPTTL")
	reader.DB = 2
	assert.Equal(t, "$1\r\nv\r\n", run(s, &reader, "GET k"))

	// Past its time the key is gone for readers but still there for the
	// master's stream, and nothing is deleted or propagated.
	clock.Advance(time.Second)
	assert.Equal(t, "$-1\r\n", run(s, &reader, "GET k"))
	assert.Equal(t, ":0\r\n", run(s, &reader, "EXISTS k"))
	assert.Equal(t, 2, s.DBSize(2))
	apply("APPEND k x")
	apply("PEXPIREAT n 1") // a replica does not delete on a past time
	assert.Equal(t, 2, s.DBSize(2))
	apply("DEL k")
	assert.Equal(t, 1, s.DBSize(2))

	// MULTI blocks are buffered and run at EXEC.
	apply("MULTI")
	apply("SET a 1")
	apply("INCR a")
	assert.Equal(t, "$-1\r\n", run(s, &reader, "GET a"))
	apply("EXEC")
	assert.Equal(t, "$1\r\n2\r\n", run(s, &reader, "GET a"))
	assert.Empty(t, rec.take())

	// Errors are reported, and the stream goes on.
	assert.Error(t, s.Apply(&link, args("NOSUCH x")))
	assert.Error(t, s.Apply(&link, args("GET")))
	assert.ErrorContains(t, s.Apply(&link, args("LPUSH a x")), "WRONGTYPE")
	apply("INCR a")
	assert.Equal(t, "$1\r\n3\r\n", run(s, &reader, "GET a"))
}

// TestFullResyncMidStream plays a full resync: the master keeps taking
// writes while a snapshot taken at a known point of its stream is written
// out; the replica loads it, applies the stream from that point on, and
// ends with the master's dataset.
func TestFullResyncMidStream(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	clock := newFakeClock()
	master := New(Options{Now: clock.Now})
	type entry struct {
		db   int
		argv [][]byte
	}
	var stream []entry // what the host would feed its backlog
	master.SetPropagate(func(db int, argv [][]byte, _ []byte) {
		stream = append(stream, entry{db, copyArgv(argv)})
	})
	var c Client
	for range 1500 {
		run(master, &c, randomCommand(r))
	}

	var offset int
	snap := master.Snapshot(func() { offset = len(stream) })
	require.Positive(t, snap.DBSize(0)+snap.DBSize(1)+snap.DBSize(2), "the snapshot holds data")
	for range 1500 {
		if r.IntN(50) == 0 {
			clock.Advance(300 * time.Millisecond)
		}
		run(master, &c, randomCommand(r))
	}
	var buf bytes.Buffer
	_, err := snap.WriteRDB(&buf, nil)
	require.NoError(t, err)
	snap.Release()

	d, err := LoadRDB(&buf, LoadOptions{})
	require.NoError(t, err)
	replica := New(Options{Now: clock.Now})
	replica.SetReadOnly(true)
	replica.Swap(d)
	var link Client
	last := -1
	for _, e := range stream[offset:] {
		if e.db != last {
			require.NoError(t, replica.Apply(&link, [][]byte{[]byte("SELECT"), itob(int64(e.db))}))
			last = e.db
		}
		require.NoError(t, replica.Apply(&link, e.argv), "%q", e.argv)
	}
	assert.Equal(t, master.Digest(), replica.Digest())
}

// lockedCallStore returns a read-only store and a function, for the
// atomically argument of its Apply methods, that counts its calls in *calls
// and checks that each comes with the store lock held.
func lockedCallStore(t *testing.T) (s *Store, calls *int, check func()) {
	s = New(Options{})
	s.SetReadOnly(true)
	calls = new(int)
	check = func() {
		*calls++
		assert.False(t, s.mu.TryLock(), "the store lock is held")
	}
	return s, calls, check
}

// TestApplyAtomically: the function runs once per command, after it and
// under the same hold of the store lock, whatever the command's outcome, so
// a replica's recorded offset always matches its data.
func TestApplyAtomically(t *testing.T) {
	s, calls, check := lockedCallStore(t)
	var link Client
	require.NoError(t, s.ApplyAtomically(&link, args("SET k v"), check))
	assert.Equal(t, 1, *calls)
	require.Error(t, s.ApplyAtomically(&link, args("NOSUCH k"), check))
	assert.Equal(t, 2, *calls)
	require.NoError(t, s.ApplyAtomically(&link, nil, check))
	assert.Equal(t, 3, *calls)
	require.NoError(t, s.ApplyAtomically(&link, args("SET k2 v"), nil))
	assert.Equal(t, 2, s.DBSize(0))

	d := NewDataset(16)
	s.SwapAtomically(d, func() {
		check()
		assert.Equal(t, 0, s.dbs[0].keys.len(), "the new dataset is in place")
	})
	assert.Equal(t, 4, *calls)
}

func TestApplyBatch(t *testing.T) {
	s, calls, check := lockedCallStore(t)
	var link Client
	s.BeginApply()
	require.NoError(t, s.ApplyLocked(&link, args("SET a 1"), check))
	require.NoError(t, s.ApplyLocked(&link, args("MULTI"), check))
	require.NoError(t, s.ApplyLocked(&link, args("SET b 2"), check))
	require.NoError(t, s.ApplyLocked(&link, args("EXEC"), check))
	require.Error(t, s.ApplyLocked(&link, args("NOSUCH x"), check), "an error leaves the batch going")
	require.NoError(t, s.ApplyLocked(&link, args("SET c 3"), check))
	assert.False(t, s.mu.TryLock(), "held through the batch")
	s.EndApply()
	assert.Equal(t, 6, *calls)
	assert.Equal(t, 3, s.DBSize(0))
	require.True(t, s.mu.TryLock(), "released by EndApply")
	s.mu.Unlock()
}
