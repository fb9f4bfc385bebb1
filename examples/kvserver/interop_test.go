package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/rdb"
	"github.com/stretchr/testify/assert"
)

// These tests run kvserver next to a real redis-server (7.0) and the Redis
// tools. They skip when Redis is not installed, and fail instead when CI=true.

// loadAllTypes writes every data type, integer and plain strings, TTLs and
// several databases, with commands both servers implement.
func loadAllTypes(t *testing.T, c *client) {
	t.Helper()
	c.must("SELECT", 0)
	c.must("SET", "str", "hello world")
	c.must("SET", "int", 12345)
	c.must("SET", "neg", -42)
	c.must("SET", "long", strings.Repeat("compressible ", 200))
	c.must("INCRBY", "counter", 7)
	c.must("RPUSH", "list", "a", "b", "c", "1", "2")
	args := []any{"RPUSH", "biglist"}
	for i := range 300 {
		args = append(args, fmt.Sprintf("element-%d", i))
	}
	c.must(args...)
	c.must("SADD", "set", "x", "y", "z")
	c.must("SADD", "intset", 1, 2, 3, 100, -5)
	c.must("HSET", "hash", "f1", "v1", "f2", "2")
	args = []any{"HSET", "bighash"}
	for i := range 200 {
		args = append(args, fmt.Sprintf("field-%d", i), fmt.Sprintf("value-%d", i))
	}
	c.must(args...)
	c.must("ZADD", "zset", 1, "a", 2.5, "b", -3, "c")
	args = []any{"ZADD", "bigzset"}
	for i := range 200 {
		args = append(args, float64(i)/3, fmt.Sprintf("member-%d", i))
	}
	c.must(args...)
	c.must("SET", "ttl", "soon", "PX", 3600000)
	c.must("EXPIRE", "list", 7200)
	c.must("SELECT", 1)
	c.must("SET", "db1key", "in db 1")
	c.must("LPUSH", "db1list", "q", "r")
	c.must("SELECT", 7)
	c.must("HSET", "h7", "a", "1")
	c.must("PEXPIRE", "h7", 5000000)
	c.must("ZADD", "z7", 10, "ten")
	c.must("SELECT", 15)
	c.must("SET", "last", "db")
	c.must("SELECT", 0)
}

// streamWrites runs a mix of writes in several databases, including the
// commands Redis rewrites before propagating them.
func streamWrites(t *testing.T, c *client, tag string) {
	t.Helper()
	for _, db := range []int{0, 3, 0, 9} {
		c.must("SELECT", db)
		for i := range 20 {
			k := fmt.Sprintf("%s:%d:%d", tag, db, i)
			c.must("SET", k, i)
			c.must("RPUSH", k+":l", i, i+1)
			c.must("SADD", k+":s", i, "m")
			c.must("HSET", k+":h", "f", i)
			c.must("ZADD", k+":z", i, "m")
		}
	}
	c.must("SELECT", 0)
	c.must("DEL", tag+":0:1")
	c.must("LPOP", tag+":0:2:l")
	c.must("SREM", tag+":0:3:s", "m")
	c.must("HDEL", tag+":0:4:h", "f")
	c.must("ZREM", tag+":0:5:z", "m")
	c.must("INCR", "counter")
	c.must("SET", tag+":ex", "v", "EX", 1000)
	c.must("EXPIRE", tag+":0:6", 500)
	c.must("PERSIST", "ttl")
	c.must("EXPIRE", "ttl", 9000)
	c.must("INCRBYFLOAT", tag+":float", "1.25")
	c.must("INCRBYFLOAT", tag+":float", "0.5")
	c.must("SADD", tag+":pop", "a", "b", "c", "d")
	c.must("SPOP", tag+":pop")
	c.must("SPOP", tag+":pop", 2)
	c.must("SET", tag+":getex", "v")
	c.must("GETEX", tag+":getex", "PX", 777777)
	c.must("MULTI")
	c.must("SET", tag+":tx1", "a")
	c.must("INCR", tag+":tx2")
	c.must("SELECT", 4)
	c.must("SET", tag+":tx3", "in four")
	c.must("EXEC")
	c.must("SELECT", 0)
	c.must("MSET", tag+":m1", "1", tag+":m2", "2")
	c.must("SET", tag+":short", "gone", "PX", 50) // expires: the master sends DEL
}

// settle waits until the short-lived key of streamWrites expired on the
// master (reading it deletes it there, and the DEL is propagated), then
// until the replica caught up.
func settle(t *testing.T, master, replica *client, tag string) {
	t.Helper()
	waitFor(t, 5*time.Second, tag+":short to expire", func() bool { return master.int("EXISTS", tag+":short") == 0 })
	waitSynced(t, master, replica)
}

// TestRedisReplicaOfKVServer: a real redis-server follows kvserver: full
// resync of every type, streaming, and a partial resync after CLIENT KILL
// TYPE master on the Redis replica.
func TestRedisReplicaOfKVServer(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	kv := startKV(t)
	ck := dialClient(t, kv.port)
	loadAllTypes(t, ck)

	r := startRedis(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(kv.port))
	cr := dialClient(t, r.port)
	waitSynced(t, ck, cr)
	if n := compareDatasets(t, ck, cr); n < 15 {
		t.Fatalf("only %d keys compared", n)
	}
	if got := ck.infoInt("stats", "sync_full"); got != 1 {
		t.Errorf("sync_full = %d, want 1", got)
	}

	streamWrites(t, ck, "one")
	settle(t, ck, cr, "one")
	compareDatasets(t, ck, cr)

	// WAIT: Redis answers REPLCONF GETACK, and ROLE lists it.
	ck.must("SET", "waited", "1")
	if n := ck.int("WAIT", 1, 5000); n != 1 {
		t.Errorf("WAIT 1 5000 = %d", n)
	}
	if got := cr.str("GET", "waited"); got != "1" {
		t.Errorf("after WAIT the replica has waited=%q", got)
	}
	if role := ck.must("ROLE").([]any); len(role) != 3 || role[0] != "master" || len(role[2].([]any)) != 1 {
		t.Errorf("ROLE: %v", role)
	}

	full0 := ck.infoInt("stats", "sync_full")
	pok0 := ck.infoInt("stats", "sync_partial_ok")
	if n := cr.int("CLIENT", "KILL", "TYPE", "master"); n != 1 {
		t.Fatalf("CLIENT KILL TYPE master killed %d", n)
	}
	streamWrites(t, ck, "two")
	waitFor(t, 20*time.Second, "partial resync", func() bool { return ck.infoInt("stats", "sync_partial_ok") == pok0+1 })
	settle(t, ck, cr, "two")
	if got := ck.infoInt("stats", "sync_full"); got != full0 {
		t.Errorf("sync_full went from %d to %d: the reconnect was not partial", full0, got)
	}
	// The same from the master's side: CLIENT KILL TYPE replica.
	if n := ck.int("CLIENT", "KILL", "TYPE", "replica"); n != 1 {
		t.Fatalf("CLIENT KILL TYPE replica killed %d", n)
	}
	ck.must("SET", "after-replica-kill", "1")
	waitFor(t, 20*time.Second, "partial resync", func() bool { return ck.infoInt("stats", "sync_partial_ok") == pok0+2 })
	waitSynced(t, ck, cr)
	if n := compareDatasets(t, ck, cr); n < 200 {
		t.Fatalf("only %d keys compared", n)
	}
	// INFO on the master lists the replica with Redis's fields.
	info := parseInfo(ck.str("INFO", "replication"))
	if info["connected_slaves"] != "1" || !regexp.MustCompile(`^ip=127\.0\.0\.1,port=\d+,state=online,offset=\d+,lag=\d+$`).MatchString(info["slave0"]) {
		t.Errorf("INFO replication: %q", info)
	}
	if !strings.Contains(r.logs(), "Successful partial resynchronization") {
		t.Errorf("redis log does not show the partial resync")
	}
}

// TestKVServerReplicaOfRedis: kvserver follows a real redis-server: full
// resync from Redis's RDB (its compact encodings), the rewritten stream,
// and a partial resync after CLIENT KILL TYPE master on kvserver; a second
// redis-server chained below kvserver gets the same data and history.
func TestKVServerReplicaOfRedis(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	r := startRedis(t)
	cr := dialClient(t, r.port)
	loadAllTypes(t, cr)
	streamWrites(t, cr, "before")

	kv := startKV(t, "--replicaof", "127.0.0.1", strconv.Itoa(r.port))
	ck := dialClient(t, kv.port)
	settle(t, cr, ck, "before")
	compareDatasets(t, cr, ck)

	// Chained: a second redis-server follows kvserver, which follows Redis.
	r2 := startRedis(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(kv.port))
	cr2 := dialClient(t, r2.port)
	waitSynced(t, ck, cr2)

	streamWrites(t, cr, "one")
	settle(t, cr, ck, "one")
	compareDatasets(t, cr, ck)

	// A replica refuses writes.
	if rep, _ := ck.do("SET", "x", "y"); !isErr(rep, "READONLY") {
		t.Errorf("SET on the replica: %v", rep)
	}
	role := ck.must("ROLE").([]any)
	if role[0] != "slave" || role[2] != int64(r.port) || role[3] != "connected" {
		t.Errorf("ROLE: %v", role)
	}

	full0 := cr.infoInt("stats", "sync_full")
	pok0 := cr.infoInt("stats", "sync_partial_ok")
	if n := ck.int("CLIENT", "KILL", "TYPE", "master"); n != 1 {
		t.Fatalf("CLIENT KILL TYPE master killed %d", n)
	}
	streamWrites(t, cr, "two")
	waitFor(t, 20*time.Second, "partial resync", func() bool { return cr.infoInt("stats", "sync_partial_ok") == pok0+1 })
	settle(t, cr, ck, "two")
	if got := cr.infoInt("stats", "sync_full"); got != full0 {
		t.Errorf("sync_full went from %d to %d: the reconnect was not partial", full0, got)
	}
	if n := compareDatasets(t, cr, ck); n < 200 {
		t.Fatalf("only %d keys compared", n)
	}
	waitSynced(t, ck, cr2)
	compareDatasets(t, cr, cr2)
	if id := cr.infoField("replication", "master_replid"); cr2.infoField("replication", "master_replid") != id {
		t.Errorf("the chained replica does not share the top master's replid %s", id)
	}
	if strings.Contains(kv.logs(), "command skipped") {
		t.Errorf("kvserver skipped commands of Redis's stream:\n%s", grepLines(kv.logs(), "command skipped"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRedisCLIRDBAndReplicaMode: redis-cli --rdb gets an RDB from kvserver
// that redis-check-rdb accepts, and redis-cli --replica shows the stream.
func TestRedisCLIRDBAndReplicaMode(t *testing.T) {
	requireRedis(t, "redis-cli", "redis-check-rdb")
	t.Parallel()
	kv := startKV(t)
	ck := dialClient(t, kv.port)
	loadAllTypes(t, ck)

	file := filepath.Join(t.TempDir(), "dump.rdb")
	out, err := exec.Command("redis-cli", "-p", strconv.Itoa(kv.port), "--rdb", file).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --rdb: %v\n%s", err, out)
	}
	out, err = exec.Command("redis-check-rdb", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RDB looks OK") {
		t.Fatalf("redis-check-rdb: %v\n%s", err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := rdb.NewReader(f, rdb.ReaderOptions{})
	keys := 0
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys++
	}
	want := 0
	for db := range 16 {
		ck.must("SELECT", db)
		want += int(ck.int("DBSIZE"))
	}
	ck.must("SELECT", 0)
	if keys != want {
		t.Errorf("RDB has %d keys, server %d", keys, want)
	}
	if rd.Aux()["repl-id"] == "" || rd.Aux()["redis-ver"] != "7.0.15" {
		t.Errorf("aux: %v", rd.Aux())
	}

	// redis-cli --replica prints the commands of the stream.
	cmd := exec.Command("redis-cli", "-p", strconv.Itoa(kv.port), "--replica")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var mu sync.Mutex
	var seen bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			seen.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	got := func(s string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(seen.String(), s) }
	}
	waitFor(t, 10*time.Second, "redis-cli --replica to sync", got("SYNC done"))
	ck.must("SET", "streamed-key", "streamed-value")
	waitFor(t, 10*time.Second, "the SET in redis-cli --replica's output", got("streamed-key"))
}

var rpsRe = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

// TestRedisBenchmarkAndMassInsert: redis-benchmark with pipelining runs
// without errors, and redis-cli --pipe loads a mass-insert file.
func TestRedisBenchmarkAndMassInsert(t *testing.T) {
	requireRedis(t, "redis-cli", "redis-benchmark")
	t.Parallel()
	kv := startKV(t)
	ck := dialClient(t, kv.port)

	out, err := exec.Command("redis-benchmark", "-p", strconv.Itoa(kv.port), "-t", "set,get", "-n", "20000", "-P", "16", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	m := rpsRe.FindAllStringSubmatch(string(out), -1)
	if len(m) != 2 || strings.Contains(strings.ToLower(string(out)), "err") {
		t.Fatalf("redis-benchmark output:\n%s", out)
	}
	for _, x := range m {
		t.Logf("redis-benchmark -P 16 %s: %s requests per second", x[1], x[2])
	}

	const n = 20000
	var buf bytes.Buffer
	for i := range n {
		buf.Write(psync.AppendCommandString(nil, "SET", fmt.Sprintf("mass:%d", i), strconv.Itoa(i)))
	}
	buf.Write(psync.AppendCommandString(nil, "SELECT", "2"))
	buf.Write(psync.AppendCommandString(nil, "RPUSH", "mass:list", "a", "b"))
	pipe := exec.Command("redis-cli", "-p", strconv.Itoa(kv.port), "--pipe")
	pipe.Stdin = &buf
	out, err = pipe.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("errors: 0, replies: %d", n+2)) {
		t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
	}
	if got := ck.str("GET", fmt.Sprintf("mass:%d", n-1)); got != strconv.Itoa(n-1) {
		t.Errorf("last mass-inserted key = %q", got)
	}
	ck.must("SELECT", 2)
	if got := ck.int("LLEN", "mass:list"); got != 2 {
		t.Errorf("LLEN = %d", got)
	}
}

// TestRDBReaderOnRedisOutput: the rdb decoder reads what redis-cli --rdb
// fetched from a real redis-server holding every type (and a stream, which
// it skips), with the same contents as the server reports.
func TestRDBReaderOnRedisOutput(t *testing.T) {
	requireRedis(t, "redis-cli")
	t.Parallel()
	r := startRedis(t)
	cr := dialClient(t, r.port)
	loadAllTypes(t, cr)
	cr.must("XADD", "stream", "*", "f", "v")

	file := filepath.Join(t.TempDir(), "redis.rdb")
	if out, err := exec.Command("redis-cli", "-p", strconv.Itoa(r.port), "--rdb", file).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --rdb: %v\n%s", err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var skipped []string
	rd := rdb.NewReader(f, rdb.ReaderOptions{SkipUnsupported: true, OnSkip: func(db int, key []byte, typ byte) {
		skipped = append(skipped, fmt.Sprintf("%d/%s/%s", db, key, rdb.TypeName(typ)))
	}})
	got := map[int]map[string]keyDump{}
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if got[e.DB] == nil {
			got[e.DB] = map[string]keyDump{}
		}
		got[e.DB][string(e.Key)] = entryDump(e)
	}
	if !slices.Equal(skipped, []string{"0/stream/stream"}) {
		t.Errorf("skipped %v, want the stream only", skipped)
	}
	total := 0
	for db := range 16 {
		want := dumpDB(t, cr, db)
		delete(want, "stream")
		if len(want) != len(got[db]) {
			t.Errorf("db %d: server has %d keys, RDB %d", db, len(want), len(got[db]))
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			w, g := want[k], got[db][k]
			if w.Type != g.Type || w.Value != g.Value {
				t.Errorf("db %d key %q: server %s %s, RDB %s %s", db, k, w.Type, w.Value, g.Type, g.Value)
			}
			if (w.ExpireAt == 0) != (g.ExpireAt == 0) || abs(g.ExpireAt-w.ExpireAt) > 1000 {
				t.Errorf("db %d key %q: expires at %d, RDB says %d", db, k, w.ExpireAt, g.ExpireAt)
			}
			total++
		}
	}
	if total < 15 {
		t.Fatalf("only %d keys compared", total)
	}
}

// entryDump renders an rdb.Entry as dumpDB renders a key.
func entryDump(e *rdb.Entry) keyDump {
	d := keyDump{Type: e.Kind.String(), ExpireAt: e.ExpireAt}
	switch e.Kind {
	case rdb.KindString:
		d.Value = string(e.String)
	case rdb.KindList:
		l := make([]any, len(e.List))
		for i, v := range e.List {
			l[i] = string(v)
		}
		d.Value = fmt.Sprint(l)
	case rdb.KindSet:
		m := make([]string, len(e.Set))
		for i, v := range e.Set {
			m[i] = string(v)
		}
		slices.Sort(m)
		d.Value = fmt.Sprint(m)
	case rdb.KindHash:
		pairs := make([]string, len(e.Hash))
		for i, f := range e.Hash {
			pairs[i] = string(f.Field) + "=" + string(f.Value)
		}
		slices.Sort(pairs)
		d.Value = fmt.Sprint(pairs)
	case rdb.KindZSet:
		z := slices.Clone(e.ZSet)
		slices.SortStableFunc(z, func(a, b rdb.ZMember) int {
			if a.Score != b.Score {
				if a.Score < b.Score {
					return -1
				}
				return 1
			}
			return bytes.Compare(a.Member, b.Member)
		})
		l := make([]any, 0, 2*len(z))
		for _, m := range z {
			l = append(l, string(m.Member), strconv.FormatFloat(m.Score, 'g', 17, 64))
		}
		d.Value = fmt.Sprint(l)
	}
	return d
}

// TestFailoverWithRedis: PSYNC2 failovers mixing kvserver and redis-server.
// kvserver, a replica of Redis, is promoted; Redis's other replica and then
// the demoted Redis master follow it partially. Then that Redis replica is
// promoted in turn and kvserver, demoted, follows it partially, with the
// old Redis master chained below kvserver.
func TestFailoverWithRedis(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	noPing := []string{"--repl-ping-replica-period", "3600"} // no stray PINGs moving offsets
	r := startRedis(t, noPing...)
	cr := dialClient(t, r.port)
	loadAllTypes(t, cr)
	kv := startKV(t, append([]string{"--replicaof", "127.0.0.1 " + strconv.Itoa(r.port)}, noPing...)...)
	ck := dialClient(t, kv.port)
	r2 := startRedis(t, append([]string{"--replicaof", "127.0.0.1 " + strconv.Itoa(r.port)}, noPing...)...)
	cr2 := dialClient(t, r2.port)
	streamWrites(t, cr, "one")
	settle(t, cr, ck, "one")
	waitSynced(t, cr, cr2)
	oldID := cr.infoField("replication", "master_replid")

	// kvserver is promoted: new replid, the old one kept as replid2.
	ck.must("REPLICAOF", "NO", "ONE")
	info := parseInfo(ck.str("INFO", "replication"))
	if info["role"] != "master" || info["master_replid2"] != oldID || info["master_replid"] == oldID {
		t.Fatalf("after promotion: %v", info)
	}
	// Redis's other replica moves to kvserver and continues partially.
	cr2.must("REPLICAOF", "127.0.0.1", kv.port)
	waitFor(t, 20*time.Second, "r2 to continue with kvserver", func() bool { return ck.infoInt("stats", "sync_partial_ok") == 1 })
	streamWrites(t, ck, "two")
	settle(t, ck, cr2, "two")
	compareDatasets(t, ck, cr2)
	// The old Redis master, demoted, continues partially too.
	cr.must("REPLICAOF", "127.0.0.1", kv.port)
	waitFor(t, 20*time.Second, "r to continue with kvserver", func() bool { return ck.infoInt("stats", "sync_partial_ok") == 2 })
	waitSynced(t, ck, cr)
	if n := ck.infoInt("stats", "sync_full"); n != 0 {
		t.Errorf("kvserver served %d full resyncs, want 0", n)
	}
	compareDatasets(t, ck, cr)

	// Now Redis r2 is promoted and kvserver follows it: the demoted kvserver
	// continues partially; r, below kvserver, reconnects and learns the new
	// history partially as well.
	cr2.must("REPLICAOF", "NO", "ONE")
	ck.must("REPLICAOF", "127.0.0.1", r2.port)
	waitFor(t, 20*time.Second, "kvserver to continue with r2", func() bool { return cr2.infoInt("stats", "sync_partial_ok") == 1 })
	if n := cr2.infoInt("stats", "sync_full"); n != 0 {
		t.Errorf("r2 served %d full resyncs, want 0", n)
	}
	streamWrites(t, cr2, "three")
	settle(t, cr2, ck, "three")
	waitSynced(t, ck, cr)
	compareDatasets(t, cr2, ck)
	compareDatasets(t, cr2, cr)
	id := cr2.infoField("replication", "master_replid")
	if ck.infoField("replication", "master_replid") != id || cr.infoField("replication", "master_replid") != id {
		t.Errorf("replids differ along the chain")
	}
	if strings.Contains(r.logs(), "Full resync from master") {
		t.Errorf("the old master needed a full resync:\n%s", grepLines(r.logs(), "resync"))
	}
}

// TestReplicaSkipsUnknownCommands: a command of Redis's stream the kv engine
// does not implement is logged and skipped; the replica keeps following.
func TestReplicaSkipsUnknownCommands(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	r := startRedis(t)
	cr := dialClient(t, r.port)
	kv := startKV(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(r.port))
	ck := dialClient(t, kv.port)
	waitSynced(t, cr, ck)
	cr.must("SET", "k", "hello")
	cr.must("SETRANGE", "k", 0, "J") // not in the kv engine
	cr.must("SET", "after", "1")
	waitSynced(t, cr, ck)
	if got := ck.str("GET", "after"); got != "1" {
		t.Fatalf("after = %q", got)
	}
	if got := ck.str("GET", "k"); got != "hello" {
		t.Errorf("k = %q: SETRANGE should have been skipped", got)
	}
	if !strings.Contains(kv.logs(), "command skipped") || !strings.Contains(kv.logs(), "cmd=SETRANGE") {
		t.Errorf("no log of the skipped command:\n%s", kv.logs())
	}
	if ck.infoField("replication", "master_link_status") != "up" {
		t.Error("link down after an unknown command")
	}
}

// TestPipelinedClientsStreamToReplicas: clients pipelining writes at once
// to a kvserver master, each pipeline run under one hold of the store lock
// and fed as one piece, commands propagated unchanged going out as the
// client's bytes. The stream must be the commands in the order they ran:
// a kvserver replica and a real Redis replica end with the master's data,
// including the lists and counters every client appends to. The mix has
// canonical RESP, lengths with leading zeros, inline commands, SELECT,
// transactions and commands the master rewrites (relative expiry).
func TestPipelinedClientsStreamToReplicas(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	m := startKV(t)
	cm := dialClient(t, m.port)
	cm.must("SET", "start", "1")
	kr := startKV(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(m.port))
	rr := startRedis(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(m.port))
	ckr, crr := dialClient(t, kr.port), dialClient(t, rr.port)
	waitSynced(t, cm, ckr)
	waitSynced(t, cm, crr)

	const clients, rounds = 4, 300
	pipeline := func(id int) (req []byte, n int) {
		add := func(b []byte) { req, n = append(req, b...), n+1 }
		cmd := func(args ...string) { add(psync.AppendCommandString(nil, args...)) }
		for i := range rounds {
			k := fmt.Sprintf("c%d:%d", id, i)
			cmd("SET", k, strconv.Itoa(i))
			cmd("RPUSH", "shared:list", k)
			cmd("INCR", "shared:counter")
			switch i % 6 {
			case 0: // lengths with leading zeros
				add(fmt.Appendf(nil, "*3\r\n$03\r\nSET\r\n$%03d\r\n%s:z\r\n$1\r\nz\r\n", len(k)+2, k))
			case 1:
				add([]byte("SET " + k + ":inline v\r\n"))
			case 2:
				cmd("SET", k+":ex", "v", "EX", "1000")
				cmd("EXPIRE", k, "2000")
			case 3:
				cmd("SELECT", "5")
				cmd("SET", k, "in five")
				cmd("APPEND", "shared:five", k)
				cmd("SELECT", "0")
			case 4:
				cmd("MULTI")
				cmd("INCRBYFLOAT", k+":f", "1.5")
				cmd("SADD", "shared:set", k)
				cmd("EXEC")
			case 5:
				cmd("HSET", "shared:hash", k, strconv.Itoa(id))
				cmd("SETEX", k+":setex", "1000", "v")
			}
		}
		cmd("WAIT", "2", "5000")
		return req, n
	}
	var wg sync.WaitGroup
	waited := make([]any, clients)
	for id := range clients {
		req, n := pipeline(id)
		c := dialClient(t, m.port)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.nc.Write(req); err != nil {
				t.Error(err)
				return
			}
			for i := range n {
				r, err := readReply(c.rd)
				if err != nil {
					t.Error(err)
					return
				}
				if e, ok := r.(respErr); ok {
					t.Errorf("client %d, reply %d: %s", id, i, e)
				}
				waited[id] = r
			}
		}()
	}
	wg.Wait()
	for id, r := range waited {
		assert.Equal(t, int64(2), r, "client %d: WAIT 2 after its pipeline", id)
	}
	assert.Equal(t, int64(clients*rounds), cm.int("INCR", "shared:counter")-1)
	waitSynced(t, cm, ckr)
	waitSynced(t, cm, crr)
	if n := compareDatasets(t, cm, ckr); n < clients*rounds {
		t.Errorf("only %d keys compared", n)
	}
	compareDatasets(t, cm, crr)
}
