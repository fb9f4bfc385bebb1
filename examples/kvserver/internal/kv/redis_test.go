package kv

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compareScript is run against a real redis-server and the engine; every
// reply must be identical byte for byte. It avoids what is unordered in
// Redis (KEYS and SMEMBERS of string sets, SPOP) and what depends on the
// clock at ms precision (PTTL of volatile keys).
var compareScript = []string{
	"PING", "PING hello", "PING a b", "ECHO hi", "ECHO", "ping",
	"NOSUCH a b", "nosuch", "NoSuch x",
	"SELECT 1", "SELECT x", "SELECT 99", "SELECT -1", "SELECT 0", "DBSIZE",
	// strings
	"SET k v", "GET k", "GET nokey", "SET", "SET k", "SET k v NX", "SET k v2 XX", "GET k",
	"SET k v NX XX", "SET k v EX", "SET k v EX x", "SET k v EX 0", "SET k v EX -5", "SET k v PX 0",
	"SET k v EX 10 PX 10", "SET k v KEEPTTL EX 10", "SET k v BADOPT", "SET k v EX 100",
	"TTL k", "SET k v3 KEEPTTL", "TTL k", "SET k v4", "TTL k", "SET k v5 GET", "SET nk v GET",
	"SET k v6 NX GET", "SET k v7 XX GET", "SET k v EXAT 99999999999", "EXISTS k", "PTTL nokey",
	"SET k v PXAT 99999999999999", "GETEX k", "GETEX k PERSIST", "TTL k", "GETEX k EX 100", "TTL k",
	"GETEX k EX 10 PX 10", "GETEX k FOO", "GETEX k EX x", "GETEX k EX 0", "GETEX nokey EX 10", "GETEX k EXAT 1", "GET k",
	"SET k v", "GETDEL k", "GETDEL k", "GETDEL",
	"MSET a 1 b 2", "MSET a 1 b", "MGET a b nokey", "MGET",
	"INCR a", "INCRBY a 10", "DECR a", "DECRBY a 5", "INCRBY a x", "INCRBY a 9223372036854775807",
	"DECRBY a -9223372036854775808", "SET a 9223372036854775807", "INCR a", "SET a -9223372036854775808", "DECR a",
	"SET a 01", "INCR a", "SET a +1", "INCR a", "SET a 1.5", "INCR a", "INCR newint",
	"SET f 10.5", "INCRBYFLOAT f 0.1", "INCRBYFLOAT f -5", "INCRBYFLOAT f 1e3", "INCRBYFLOAT f x", "INCRBYFLOAT f inf",
	"INCRBYFLOAT nf 3.0e3", "INCRBYFLOAT nf 1.1", "INCRBYFLOAT nf -3001.1", "INCRBYFLOAT nf 0.30000000000000004",
	"INCRBYFLOAT nf 1e20", "INCRBYFLOAT nf -1e20", "SET f abc", "INCRBYFLOAT f 1",
	"APPEND ap hello", "APPEND ap world", "GET ap", "STRLEN ap", "STRLEN nokey",
	"SETEX se 100 v", "TTL se", "SETEX se 0 v", "SETEX se x v", "PSETEX se 100000 v", "PTTL nokey", "SETNX se v", "SETNX se2 v",
	// keyspace
	"TYPE k", "TYPE nokey", "EXISTS a b nokey a", "DEL a nokey", "DEL a", "UNLINK b", "EXISTS a",
	"SET e v", "EXPIRE e 100", "TTL e", "EXPIRE e 100 NX", "EXPIRE e 200 XX", "TTL e", "EXPIRE e 50 GT", "EXPIRE e 300 GT", "TTL e",
	"EXPIRE e 400 LT", "EXPIRE e 40 LT", "TTL e", "EXPIRE e 10 NX XX", "EXPIRE e 10 GT LT", "EXPIRE e 10 FOO", "EXPIRE e x",
	"EXPIRE e 9223372036854775807", "PEXPIRE e 9223372036854775807", "EXPIREAT e 99999999999", "EXISTS e",
	"PEXPIREAT e 99999999999999", "EXISTS e", "PERSIST e", "PERSIST e", "TTL e", "EXPIRE e 100 GT", "EXPIRE e 100 LT", "TTL e",
	"EXPIRE nokey 10", "PERSIST nokey", "TTL nokey", "EXPIRE e -1", "EXISTS e", "EXPIRE", "TTL",
	"SET e v", "PEXPIRE e 0", "GET e", "SET e v", "EXPIREAT e 1", "GET e",
	// hashes
	"HSET h f1 v1 f2 v2", "HSET h f1 x f3 v3", "HSET h f1", "HGET h f1", "HGET h nof", "HGET nokey f",
	"HGETALL h", "HGETALL nokey", "HLEN h", "HMGET h f1 nof f3", "HMGET nokey a", "HDEL h f2 nof", "HGETALL h",
	"HINCRBY h n 5", "HINCRBY h n -10", "HINCRBY h f1 1", "HINCRBY h n x", "HINCRBY h n 9223372036854775807",
	"HEXISTS h n", "HEXISTS h zz", "HMSET h a 1", "HMSET h a", "HDEL h f1 f3 n a", "EXISTS h", "GET h",
	// lists
	"RPUSH l a b c", "LPUSH l z y", "LRANGE l 0 -1", "LRANGE l 1 2", "LRANGE l -2 -1", "LRANGE l 5 10",
	"LRANGE l 0 100", "LRANGE l x 1", "LRANGE nokey 0 -1", "LLEN l", "LLEN nokey",
	"LPOP l", "RPOP l", "LPOP l 2", "RPOP l 0", "LPOP l -1", "LPOP l x", "LPOP l 1 2", "LPOP nokey", "LPOP nokey 2",
	"RPOP l 5", "EXISTS l", "LPUSH", "GET l", "LPUSH k x",
	// sets
	"SADD s 3 1 2", "SADD s 2 4", "SMEMBERS s", "SCARD s", "SISMEMBER s 1", "SISMEMBER s 9", "SISMEMBER nokey 1",
	"SREM s 1 9", "SMEMBERS s", "SMEMBERS nokey", "SCARD nokey", "SPOP nokey", "SPOP nokey 3", "SPOP s 0",
	"SPOP s -1", "SPOP s x", "SPOP s 1 2", "SADD one 7", "SPOP one", "EXISTS one", "SADD two 5 6", "SPOP two 5", "EXISTS two",
	"SADD k x", "SREM k x", "SADD si 10 9 100 -1 0", "SMEMBERS si", "SPOP si 10",
	// sorted sets
	"ZADD z 1 a 2 b 3 c", "ZADD z 1.5 a", "ZADD z CH 1.5 a 9 b 4 d", "ZRANGE z 0 -1 WITHSCORES", "ZRANGE z 0 -1",
	"ZADD z NX 100 a 5 e", "ZADD z XX 100 a 5 f", "ZADD z NX XX 1 a", "ZADD z GT LT 1 a", "ZADD z NX GT 1 a",
	"ZADD z GT 1 a", "ZADD z GT CH 200 a", "ZADD z LT CH 300 a", "ZADD z INCR 1 a 2 b", "ZADD z INCR 0.1 a",
	"ZADD z INCR NX 1 a", "ZADD z 1", "ZADD z x a", "ZADD z nan a", "ZADD z inf x", "ZADD z -inf y", "ZSCORE z x", "ZSCORE z y",
	"ZSCORE z a", "ZSCORE z nom", "ZSCORE nokey a", "ZINCRBY z 2.5 b", "ZINCRBY z x b", "ZINCRBY z 1 new",
	"ZADD z 0.1 p 1e20 q 123456789.123 r -0.0 s", "ZRANGE z 0 -1 WITHSCORES", "ZRANGE z -3 -1", "ZRANGE z 0 1 REV WITHSCORES",
	"ZRANGE z 1 5 BYSCORE WITHSCORES", "ZRANGE z (1 5 BYSCORE", "ZRANGE z -inf +inf BYSCORE LIMIT 1 2", "ZRANGE z 5 (1 BYSCORE REV",
	"ZRANGE z 0 -1 LIMIT 0 1", "ZRANGE z x 1 BYSCORE", "ZRANGE z 0 -1 FOO", "ZRANGE nokey 0 -1", "ZRANGE z x 1",
	"ZCARD z", "ZCARD nokey", "ZREM z a b nom", "ZREM nokey a", "ZADD k 1 a", "ZSCORE k a", "ZRANGE k 0 1",
	"ZADD zz 1 m", "ZREM zz m", "EXISTS zz",
	"ZADD lex 0 a 0 b 0 c 0 d 0 e", "ZRANGE lex [b (d BYLEX", "ZRANGE lex - + BYLEX LIMIT 1 2", "ZRANGE lex (d - BYLEX REV",
	"ZRANGE lex + - BYLEX REV LIMIT 0 2", "ZRANGE lex b d BYLEX", "ZRANGE lex - + BYLEX WITHSCORES", "ZRANGE lex [e + BYLEX",
	"ZRANGE lex 0 -1 LIMIT 0 -1", "ZRANGE lex 0 -1 BYSCORE BYLEX", "ZRANGE lex 0 1 BYLEX BYSCORE",
	"ZRANGE lex 0 -1 REV REV", "ZRANGE lex 0 -1 WITHSCORES WITHSCORES", "ZRANGE lex 0 1 LIMIT 0 1 LIMIT 0 2 BYSCORE",
	// keys and flush
	"KEYS ap", "KEYS nomatch*", "KEYS a?", "KEYS [a]p", "KEYS [^x]p", "KEYS a\\p",
	"TYPE h", "TYPE l", "TYPE s", "TYPE z", "TYPE ap",
	"FLUSHDB", "DBSIZE", "FLUSHDB FOO", "FLUSHDB ASYNC", "FLUSHALL SYNC", "FLUSHALL a b",
	// transactions
	"MULTI", "SET t 1", "INCR t", "GET t", "EXEC", "EXEC", "DISCARD",
	"MULTI", "MULTI", "SET t 2", "DISCARD", "GET t",
	"MULTI", "SET t", "SET t 3", "EXEC", "GET t",
	"MULTI", "NOSUCH", "EXEC",
	"MULTI", "LPUSH t x", "SET t 4 BADOPT", "INCR t", "EXEC", "GET t",
	"MULTI", "SELECT 2", "SET sel v", "EXEC", "GET sel", "SELECT 0", "GET sel",
	"MULTI", "EXEC",
}

var update = flag.Bool("update", false, "rewrite testdata/replies.golden from a real redis-server")

const goldenFile = "testdata/replies.golden"

// TestRepliesMatchRedis runs compareScript on a real redis-server and on the
// engine and compares every reply byte for byte. With -update it also
// records redis-server's replies in testdata/replies.golden, which
// TestRepliesGolden checks without needing Redis.
func TestRepliesMatchRedis(t *testing.T) {
	conn := dial(t, startRedis(t))
	r := bufio.NewReader(conn)
	s := New(Options{})
	var c Client
	var golden strings.Builder
	for _, line := range compareScript {
		argv := args(line)
		_, err := conn.Write(psync.AppendCommand(nil, argv...))
		require.NoError(t, err)
		want, err := readReply(r)
		require.NoError(t, err, line)
		got := s.Exec(&c, argv, nil)
		assert.Equal(t, string(want), string(got), "command %q", line)
		fmt.Fprintf(&golden, "%s\n%s\n", line, strconv.Quote(string(want)))
	}
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(goldenFile, []byte(golden.String()), 0o644))
	}
}

// TestRepliesGolden replays the replies redis-server 7.0 gave to
// compareScript, recorded by TestRepliesMatchRedis -update.
func TestRepliesGolden(t *testing.T) {
	data, err := os.ReadFile(goldenFile)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Equal(t, 0, len(lines)%2, "golden file has command/reply pairs")
	s := New(Options{})
	var c Client
	for i := 0; i < len(lines); i += 2 {
		want, err := strconv.Unquote(lines[i+1])
		require.NoError(t, err, lines[i+1])
		assert.Equal(t, want, run(s, &c, lines[i]), "command %q", lines[i])
	}
}

// startRedis starts a throwaway redis-server on 127.0.0.1, ports 7550-7599,
// and returns its address. The test is skipped when redis-server is not
// installed, unless CI=true.
func startRedis(t *testing.T) string {
	t.Helper()
	return startRedisIn(t, t.TempDir())
}

// startRedisIn is startRedis with the server's working directory, where
// it loads dump.rdb from if present.
func startRedisIn(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found and CI=true: install redis-server")
		}
		t.Skip("redis-server not found: install it to compare replies with real Redis")
	}
	for port := 7550; port < 7600; port++ {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--repl-diskless-sync", "no", "--repl-diskless-sync-delay", "0")
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		for range 100 {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conn.Close()
				return addr
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("redis-server on %s did not come up", addr)
	}
	t.Fatal("no free port in 7550-7599")
	return ""
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	return conn
}

// TestPropagationMatchesRedis runs compareScript on a redis-server while a
// connection attached with SYNC records its replication stream, and checks
// that the engine's propagate hook, fed to a host-like SELECT tracker,
// produces the same commands. Absolute times in ms are masked, since the
// two clocks differ.
func TestPropagationMatchesRedis(t *testing.T) {
	addr := startRedis(t)
	repl := dial(t, addr)
	rr := bufio.NewReader(repl)
	_, err := repl.Write(psync.AppendCommandString(nil, "SYNC"))
	require.NoError(t, err)
	// Skip keepalive newlines, then the $<len> snapshot.
	var line []byte
	for len(line) < 2 {
		line, err = rr.ReadBytes('\n')
		require.NoError(t, err)
	}
	require.Equal(t, byte('$'), line[0], "%q", line)
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, rr, int64(n))
	require.NoError(t, err)

	conn := dial(t, addr)
	r := bufio.NewReader(conn)
	s := New(Options{})
	var got []string
	last := -1
	s.SetPropagate(func(db int, argv [][]byte, _ []byte) {
		if db != last {
			got = append(got, "SELECT "+fmt.Sprint(db))
			last = db
		}
		got = append(got, maskTimes(argv))
	})
	var c Client
	for _, line := range append(compareScript, "SET end-of-script 1") {
		argv := args(line)
		_, err := conn.Write(psync.AppendCommand(nil, argv...))
		require.NoError(t, err)
		_, err = readReply(r)
		require.NoError(t, err)
		s.Exec(&c, argv, nil)
	}

	var want []string
	for {
		reply, err := readReply(rr)
		require.NoError(t, err)
		argv := parseCommand(t, reply)
		if len(argv) == 1 && string(argv[0]) == "PING" {
			continue
		}
		want = append(want, maskTimes(argv))
		if len(argv) > 1 && string(argv[1]) == "end-of-script" {
			break
		}
	}
	assert.Equal(t, want, got)
	assert.Greater(t, len(want), 100, "the script propagates many writes")
	t.Logf("%d propagated commands matched; first ones: %q", len(want), want[:min(len(want), 12)])
}

// TestRDBWithRedis checks the RDB path both ways with a real redis-server:
// it loads the engine's RDB, and the RDB it sends back over SYNC (in its
// own encodings: listpacks, intsets, quicklists) loads into the same
// dataset.
func TestRDBWithRedis(t *testing.T) {
	s := New(Options{})
	fill(t, s, 40)
	var c Client
	big := make([]string, 0, 300)
	for i := range 300 {
		big = append(big, itoa(i))
	}
	run(s, &c, "RPUSH biglist "+strings.Join(big, " "))
	run(s, &c, "SADD intset "+strings.Join(big[:50], " "))
	run(s, &c, "SADD bigset "+strings.Join(big, " "))
	for i := range 200 {
		run(s, &c, "HSET bighash f"+itoa(i)+" "+itoa(i*i))
		run(s, &c, "ZADD bigzset "+itoa(i)+".5 m"+itoa(i))
	}
	run(s, &c, "SET long "+strings.Repeat("abcdefgh", 5000))
	run(s, &c, "SET int -12345")
	run(s, &c, "ZADD scores 0.1 a 1e20 b -inf c")

	dir := t.TempDir()
	f, err := os.Create(dir + "/dump.rdb")
	require.NoError(t, err)
	snap := s.Snapshot(nil)
	_, err = snap.WriteRDB(f, map[string]string{"redis-ver": "7.0.15"})
	snap.Release()
	require.NoError(t, err)
	require.NoError(t, f.Close())

	addr := startRedisIn(t, dir)
	conn := dial(t, addr)
	r := bufio.NewReader(conn)
	for i := range 16 {
		_, err := conn.Write(psync.AppendCommandString(nil, "SELECT", itoa(i)))
		require.NoError(t, err)
		_, err = readReply(r)
		require.NoError(t, err)
		_, err = conn.Write(psync.AppendCommandString(nil, "DBSIZE"))
		require.NoError(t, err)
		reply, err := readReply(r)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf(":%d\r\n", s.DBSize(i)), string(reply), "db %d", i)
	}

	rdbBytes := syncRDB(t, addr)
	d, err := LoadRDB(bytes.NewReader(rdbBytes), LoadOptions{})
	require.NoError(t, err)
	back := New(Options{})
	back.Swap(d)
	assert.Equal(t, s.Digest(), back.Digest())
}

// syncRDB attaches to addr with SYNC and returns the snapshot it sends.
func syncRDB(t *testing.T, addr string) []byte {
	t.Helper()
	conn := dial(t, addr)
	rr := bufio.NewReader(conn)
	_, err := conn.Write(psync.AppendCommandString(nil, "SYNC"))
	require.NoError(t, err)
	var line []byte
	for len(line) < 2 { // keepalive newlines come first
		line, err = rr.ReadBytes('\n')
		require.NoError(t, err)
	}
	require.Equal(t, byte('$'), line[0], "%q", line)
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	require.NoError(t, err)
	buf := make([]byte, n)
	_, err = io.ReadFull(rr, buf)
	require.NoError(t, err)
	return buf
}

// maskTimes joins argv with spaces, replacing unix-ms times with <ms>.
func maskTimes(argv [][]byte) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = string(a)
		if n, ok := parseInt(a); ok && n > 1_000_000_000_000 {
			parts[i] = "<ms>"
		}
	}
	return strings.Join(parts, " ")
}

// parseCommand splits a RESP array of bulk strings read by readReply.
func parseCommand(t *testing.T, reply []byte) [][]byte {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(reply))
	head, err := r.ReadBytes('\n')
	require.NoError(t, err)
	require.Equal(t, byte('*'), head[0], "%q", reply)
	n, err := strconv.Atoi(string(head[1 : len(head)-2]))
	require.NoError(t, err)
	argv := make([][]byte, n)
	for i := range argv {
		b, err := readReply(r)
		require.NoError(t, err)
		argv[i] = b[bytes.IndexByte(b, '\n')+1 : len(b)-2]
	}
	return argv
}
