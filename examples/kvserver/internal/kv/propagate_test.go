package kv

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newMaster returns a store on a fake clock whose propagated commands are
// recorded as "db argv..." lines.
func newMaster() (*Store, *fakeClock, *recorder) {
	clock := newFakeClock()
	s := New(Options{Now: clock.Now})
	rec := &recorder{}
	s.SetPropagate(rec.hook)
	return s, clock, rec
}

// TestPropagationRewrites checks each rewrite against what redis-server
// 7.0.15 was seen to send to a replica (redis-cli --replica).
func TestPropagationRewrites(t *testing.T) {
	// The fake clock starts at 1700000000000 ms.
	tests := []struct {
		name  string
		setup []string
		cmds  []string
		want  []string
	}{
		{"plain write as sent", nil, []string{"set k v"}, []string{"0 set k v"}},
		{"read not propagated", []string{"SET k v"}, []string{"GET k", "EXISTS k", "TTL k"}, nil},
		{"SET EX becomes PXAT", nil, []string{"set k v ex 10"}, []string{"0 SET k v PXAT 1700000010000"}},
		{"SET PX NX GET drops NX and GET", nil, []string{"set k v px 500 nx get"}, []string{"0 SET k v PXAT 1700000000500"}},
		{"SET EXAT", nil, []string{"set k v exat 1800000000"}, []string{"0 SET k v PXAT 1800000000000"}},
		{"SET PXAT rewritten too", nil, []string{"set k v pxat 1800000000001 get"}, []string{"0 SET k v PXAT 1800000000001"}},
		{"SET GET dropped", []string{"SET k old"}, []string{"set k v nx get", "set k v2 xx get"}, []string{"0 set k v2 xx"}},
		{"SET NX failing not propagated", []string{"SET k v"}, []string{"set k v nx"}, nil},
		{"SET KEEPTTL as sent", []string{"SET k v EX 100"}, []string{"set k v2 keepttl"}, []string{"0 set k v2 keepttl"}},
		{"SETEX", nil, []string{"setex k 10 v", "psetex k2 100 v"}, []string{"0 SET k v PXAT 1700000010000", "0 SET k2 v PXAT 1700000000100"}},
		{"EXPIRE becomes PEXPIREAT keeping options", []string{"SET k v"}, []string{"expire k 10 nx"}, []string{"0 PEXPIREAT k 1700000010000 nx"}},
		{"PEXPIRE", []string{"SET k v"}, []string{"pexpire k 10"}, []string{"0 PEXPIREAT k 1700000000010"}},
		{"EXPIREAT", []string{"SET k v"}, []string{"expireat k 1800000000 lt"}, []string{"0 PEXPIREAT k 1800000000000 lt"}},
		{"PEXPIREAT as sent", []string{"SET k v"}, []string{"pexpireat k 1800000000000 gt"}, nil},
		{"PEXPIREAT as sent on volatile key", []string{"SET k v EX 1"}, []string{"pexpireat k 1800000000000 gt"}, []string{"0 pexpireat k 1800000000000 gt"}},
		{"EXPIRE in the past is DEL", []string{"SET k v"}, []string{"expire k -1"}, []string{"0 DEL k"}},
		{"EXPIREAT in the past is DEL", []string{"SET k v"}, []string{"pexpireat k 1"}, []string{"0 DEL k"}},
		{"EXPIRE options failing", []string{"SET k v"}, []string{"expire k 10 xx", "expire k 10 gt", "expire nokey 10"}, nil},
		{"PERSIST", []string{"SET k v EX 10"}, []string{"persist k", "persist k"}, []string{"0 persist k"}},
		{"INCRBYFLOAT is SET KEEPTTL", []string{"SET f 1000"}, []string{"incrbyfloat f 0.1"}, []string{"0 SET f 1000.09999999999999998 KEEPTTL"}},
		{"GETEX EX", []string{"SET k v"}, []string{"getex k ex 10"}, []string{"0 PEXPIREAT k 1700000010000"}},
		{"GETEX PXAT", []string{"SET k v"}, []string{"getex k pxat 1800000000000"}, []string{"0 PEXPIREAT k 1800000000000"}},
		{"GETEX PERSIST", []string{"SET k v EX 10"}, []string{"getex k persist", "getex k persist", "getex k"}, []string{"0 PERSIST k"}},
		{"GETEX EXAT in the past is DEL", []string{"SET k v"}, []string{"getex k exat 1"}, []string{"0 DEL k"}},
		{"GETDEL is DEL", []string{"SET k v"}, []string{"getdel k", "getdel k"}, []string{"0 DEL k"}},
		{"SPOP one is SREM", []string{"SADD s a"}, []string{"spop s"}, []string{"0 SREM s a"}},
		{"SPOP all is DEL", []string{"SADD s a b"}, []string{"spop s 5"}, []string{"0 DEL s"}},
		{"SPOP missing", nil, []string{"spop s", "spop s 2"}, nil},
		{"DEL as sent when something deleted", []string{"SET a 1"}, []string{"del a b", "del a b"}, []string{"0 del a b"}},
		{"no-op writes not propagated", []string{"SADD s a", "HSET h f v", "ZADD z 1 m"},
			[]string{"sadd s a", "srem s x", "hdel h x", "zadd z nx 2 m", "zrem z x", "lpop nolist", "set k v xx", "zadd z 1 m"}, nil},
		{"FLUSHDB always", nil, []string{"flushdb", "flushall async"}, []string{"0 flushdb", "0 flushall async"}},
		{"SELECT gives the db", nil, []string{"select 3", "set k v"}, []string{"3 set k v"}},
		{"pop with count as sent", []string{"RPUSH l a b c"}, []string{"lpop l 5"}, []string{"0 lpop l 5"}},
		{"transaction wrapped", nil, []string{"multi", "set x 1", "get x", "incr x", "exec"},
			[]string{"0 MULTI", "0 set x 1", "0 incr x", "0 EXEC"}},
		{"transaction with one write not wrapped", nil, []string{"multi", "set x 1", "get x", "exec"}, []string{"0 set x 1"}},
		{"read-only transaction", nil, []string{"multi", "get x", "exec"}, nil},
		{"discarded transaction", nil, []string{"multi", "set x 1", "discard"}, nil},
		{"aborted transaction", nil, []string{"multi", "set x 1", "nosuch", "exec"}, nil},
		{"transaction across databases", nil, []string{"multi", "set x 1", "select 2", "set y 2", "exec"},
			[]string{"0 MULTI", "0 set x 1", "2 set y 2", "2 EXEC"}},
		{"transaction with failing command", nil, []string{"multi", "set x 1", "lpush x a", "set x 2", "exec"},
			[]string{"0 MULTI", "0 set x 1", "0 set x 2", "0 EXEC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, rec := newMaster()
			var c Client
			for _, line := range tt.setup {
				require.NotContains(t, run(s, &c, line), "-ERR", line)
			}
			rec.take()
			for _, line := range tt.cmds {
				run(s, &c, line)
			}
			assert.Equal(t, tt.want, rec.take())
		})
	}
}

func TestPropagationSPOPCountIsWrappedSREMs(t *testing.T) {
	s, _, rec := newMaster()
	var c Client
	run(s, &c, "SADD s a b c d")
	rec.take()
	reply := run(s, &c, "SPOP s 2")
	got := rec.take()
	require.Len(t, got, 4)
	assert.Equal(t, "0 MULTI", got[0])
	assert.Equal(t, "0 EXEC", got[3])
	// The SREMs name the members the reply returned, in the same order.
	assert.Contains(t, reply, "$1\r\n"+got[1][len("0 SREM s "):]+"\r\n")
	assert.Regexp(t, `^0 SREM s [abcd]$`, got[1])
	assert.Regexp(t, `^0 SREM s [abcd]$`, got[2])
	assert.Equal(t, ":2\r\n", run(s, &c, "SCARD s"))
}

func TestPropagationLazyExpire(t *testing.T) {
	s, clock, rec := newMaster()
	var c Client
	run(s, &c, "SET a 1 PX 100")
	run(s, &c, "SET b 1 PX 100")
	run(s, &c, "SET y 1 PX 100")
	rec.take()
	clock.Advance(101 * time.Millisecond)

	// A write on an expired key: DEL first, then the command.
	assert.Equal(t, "+OK\r\n", run(s, &c, "set a 2"))
	assert.Equal(t, []string{"0 DEL a", "0 set a 2"}, rec.take())

	// A read: DEL alone.
	assert.Equal(t, "$-1\r\n", run(s, &c, "get b"))
	assert.Equal(t, []string{"0 DEL b"}, rec.take())

	// Inside a transaction the DEL goes out at once, outside the
	// transaction's MULTI/EXEC, as Redis 7.0 does.
	run(s, &c, "multi")
	run(s, &c, "set x 1")
	run(s, &c, "set y 2")
	run(s, &c, "exec")
	assert.Equal(t, []string{"0 DEL y", "0 MULTI", "0 set x 1", "0 set y 2", "0 EXEC"}, rec.take())
}

func TestExpireCycle(t *testing.T) {
	s, clock, rec := newMaster()
	var c Client
	for i := range 50 {
		run(s, &c, "SET k"+itoa(i)+" v PX 100")
	}
	run(s, &c, "SET keep v")
	run(s, &c, "SELECT 5")
	run(s, &c, "SET other v PX 100")
	rec.take()
	assert.Equal(t, 0, s.ExpireCycle())
	clock.Advance(time.Second)
	total := 0
	for range 10 {
		total += s.ExpireCycle()
	}
	assert.Equal(t, 51, total)
	assert.Equal(t, 1, s.DBSize(0))
	assert.Equal(t, 0, s.DBSize(5))
	dels := rec.take()
	assert.Len(t, dels, 51)
	assert.Contains(t, dels, "5 DEL other")
	assert.Contains(t, dels, "0 DEL k7")

	// A replica never expires keys itself.
	r := New(Options{Now: clock.Now})
	var rc Client
	require.NoError(t, r.Apply(&rc, args("SET k v PXAT 1")))
	r.SetReadOnly(true)
	assert.Equal(t, 0, r.ExpireCycle())
	assert.Equal(t, 1, r.DBSize(0))
}

func itoa(i int) string { return string(itob(int64(i))) }

// TestPropagationRawBytes checks which writes reach the hook with the
// client's own bytes: those propagated unchanged, sent as canonical RESP.
// Rewritten ones, commands run by EXEC and commands sent inline or with
// non-canonical lengths are encoded from argv by the host.
func TestPropagationRawBytes(t *testing.T) {
	s, _, rec := newMaster()
	var c Client
	for _, line := range []string{"set k v", "set k v ex 10", "setex k 10 v", "expire k 10", "getdel k",
		"rpush l a b", "del l", "multi", "set a 1", "set b 2", "exec", "sadd s x", "spop s"} {
		run(s, &c, line)
	}
	assert.Equal(t, []string{"0 set k v", "0 rpush l a b", "0 del l", "0 MULTI", "0 EXEC", "0 sadd s x"}, rec.raws)
	assert.Equal(t, []string{
		"0 set k v", "0 SET k v PXAT 1700000010000", "0 SET k v PXAT 1700000010000", "0 PEXPIREAT k 1700000010000",
		"0 DEL k", "0 rpush l a b", "0 del l", "0 MULTI", "0 set a 1", "0 set b 2", "0 EXEC", "0 sadd s x", "0 SREM s x",
	}, rec.take())

	// The hook gets the very bytes the client sent, not a copy.
	var got []byte
	s.SetPropagate(func(_ int, _ [][]byte, raw []byte) { got = raw })
	raw := []byte("*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n")
	cmd := psync.Command{Args: [][]byte{raw[8:11], raw[15:16], raw[20:21]}, Raw: raw}
	assert.Equal(t, "+OK\r\n", string(s.ExecCommand(&c, cmd, nil)))
	require.NotNil(t, got)
	assert.Same(t, &raw[0], &got[0])

	// Bytes that are not argv's canonical encoding are not passed on.
	for _, raw := range []string{
		"set k v\r\n", // inline
		"*3\r\n$03\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n", // leading zero
		"*03\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"",
	} {
		got = []byte("unset")
		cmd := psync.Command{Args: args("set k v"), Raw: []byte(raw)}
		assert.Equal(t, "+OK\r\n", string(s.ExecCommand(&c, cmd, nil)), "%q", raw)
		assert.Nil(t, got, "%q", raw)
	}
}

// TestIsEncoding reads commands in canonical and non-canonical RESP with a
// psync.CommandReader: isEncoding holds exactly when the raw bytes are
// argv's encoding.
func TestIsEncoding(t *testing.T) {
	for _, in := range []string{
		"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"*2\r\n$0\r\n\r\n$10\r\n0123456789\r\n",
		"*1\r\n$01\r\nx\r\n",
		"*01\r\n$1\r\nx\r\n",
		"*2\r\n$-0\r\n\r\n$1\r\nx\r\n",
		"*-0\r\n",
		"set k v\r\n",
		"set  k   v\r\n",
	} {
		cr := psync.NewCommandReader(strings.NewReader(in), psync.Limits{}, true)
		cmd, err := cr.ReadCommand()
		require.NoError(t, err, "%q", in)
		want := len(cmd.Args) > 0 && bytes.Equal(cmd.Raw, psync.AppendCommand(nil, cmd.Args...))
		assert.Equal(t, want, isEncoding(cmd.Raw, cmd.Args), "%q", in)
	}
}

// TestBatchPropagateFlush: a Batch runs several commands under one hold of
// the store lock, each propagated as it runs, and the flush hook runs once
// when the batch ends; holds that propagated nothing do not call it.
func TestBatchPropagateFlush(t *testing.T) {
	s, clock, rec := newMaster()
	var flushed [][]string
	s.SetPropagateFlush(func() { flushed = append(flushed, rec.take()) })
	var c Client
	cmd := func(line string) psync.Command {
		argv := args(line)
		return psync.Command{Args: argv, Raw: psync.AppendCommand(nil, argv...)}
	}

	b := s.Batch()
	assert.False(t, b.Held())
	out := b.Exec(&c, cmd("SET a 1"), nil)
	assert.True(t, b.Held())
	out = b.Exec(&c, cmd("GET a"), out)
	out = b.Exec(&c, cmd("SET b 2 PX 100"), out)
	out = b.Exec(&c, cmd("SELECT 2"), out)
	out = b.Exec(&c, cmd("INCR n"), out)
	assert.Equal(t, "+OK\r\n$1\r\n1\r\n+OK\r\n+OK\r\n:1\r\n", string(out))
	assert.Empty(t, flushed, "nothing flushed while the batch runs")
	assert.Equal(t, []string{"0 SET a 1", "0 SET b 2 PXAT 1700000000100", "2 INCR n"}, rec.lines)
	b.End()
	assert.False(t, b.Held())
	assert.Equal(t, [][]string{{"0 SET a 1", "0 SET b 2 PXAT 1700000000100", "2 INCR n"}}, flushed)
	b.End() // a second End is harmless

	// Reads only: no flush.
	b.Exec(&c, cmd("GET n"), nil)
	b.End()
	assert.Len(t, flushed, 1)

	// The lock is free between batches: a plain Exec runs, and flushes.
	run(s, &c, "DEL n")
	assert.Equal(t, [][]string{{"2 DEL n"}}, flushed[1:])

	// The active expire cycle flushes its DELs too.
	clock.Advance(time.Second)
	s.ExpireCycle()
	assert.Equal(t, [][]string{{"0 DEL b"}}, flushed[2:])
	s.ExpireCycle()
	assert.Len(t, flushed, 3)
}

// TestBatchHoldsTheLock: another client's command waits for the batch's
// End, so no command runs between a batch's commands and its flush.
func TestBatchHoldsTheLock(t *testing.T) {
	s, _, _ := newMaster()
	var c1, c2 Client
	b := s.Batch()
	argv := args("SET k first")
	b.Exec(&c1, psync.Command{Args: argv, Raw: psync.AppendCommand(nil, argv...)}, nil)
	done := make(chan string)
	go func() { done <- run(s, &c2, "SET k second") }()
	select {
	case r := <-done:
		t.Fatalf("a command ran during the batch: %q", r)
	case <-time.After(50 * time.Millisecond):
	}
	b.End()
	select {
	case r := <-done:
		assert.Equal(t, "+OK\r\n", r)
		assert.Equal(t, "$6\r\nsecond\r\n", run(s, &c1, "GET k"))
	case <-time.After(5 * time.Second):
		t.Fatal("the command did not run after End")
	}
}
