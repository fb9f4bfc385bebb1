package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// In-process tests: kvservers talking to each other over loopback TCP,
// without Redis.

type testServer struct {
	*server
	port int
}

func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg, err := parseArgs(append([]string{"--port", strconv.Itoa(port)}, args...))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		w := &testWriter{t: t}
		t.Cleanup(func() { w.done.Store(true) }) // runs after the server's Close below
		log = slog.New(slog.NewTextHandler(w, nil)).With("server", port)
	}
	s, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return &testServer{server: s, port: port}
}

// testWriter sends logs to t.Log until the test ends (a late log from a
// goroutine would otherwise panic).
type testWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (ts *testServer) client(t *testing.T) *client { return dialClient(t, ts.port) }

func waitSameData(t *testing.T, a, b *testServer) {
	t.Helper()
	ca, cb := a.client(t), b.client(t)
	waitSynced(t, ca, cb)
	waitFor(t, 5*time.Second, "equal digests", func() bool { return a.store.Digest() == b.store.Digest() })
}

func TestKVServerReplicaOfKVServerWithAuth(t *testing.T) {
	a := startServer(t, "--requirepass", "s3cret")
	ca := a.client(t)
	if r, _ := ca.do("SET", "k", "v"); !isErr(r, "NOAUTH") {
		t.Fatalf("SET before AUTH: %v", r)
	}
	if r, _ := ca.do("AUTH", "wrong"); !isErr(r, "WRONGPASS") {
		t.Fatalf("AUTH wrong: %v", r)
	}
	ca.must("AUTH", "s3cret")
	loadAllTypes(t, ca)

	b := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port), "--masterauth", "s3cret")
	cb := b.client(t)
	waitFor(t, 10*time.Second, "link up", func() bool { return cb.infoField("replication", "master_link_status") == "up" })
	streamWrites(t, ca, "one")
	settle(t, ca, cb, "one")
	if a.store.Digest() != b.store.Digest() {
		t.Fatal("datasets differ")
	}
	compareDatasets(t, ca, cb)

	// A replica without the password never gets in.
	c := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port))
	time.Sleep(300 * time.Millisecond)
	if st := c.replica.r.Stats(); st.LinkUp || st.LastError == nil {
		t.Fatalf("replica without masterauth: %+v", st)
	}
}

// A chain A -> B -> C; B is promoted, C continues partially with it, and
// the old master A rejoins as B's replica, partially as its history allows.
func TestChainPromotionAndDemotion(t *testing.T) {
	a := startServer(t)
	ca := a.client(t)
	loadAllTypes(t, ca)
	b := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port))
	c := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(b.port))
	streamWrites(t, ca, "one")
	settle(t, ca, b.client(t), "one")
	waitSameData(t, a, c)
	waitSameData(t, b, c)
	if got, want := c.m.Position(), a.m.Position(); got != want {
		t.Fatalf("chain positions differ: %v vs %v", got, want)
	}

	cb := b.client(t)
	pok := cb.infoInt("stats", "sync_partial_ok")
	cb.must("REPLICAOF", "NO", "ONE")
	if role := cb.must("ROLE").([]any); role[0] != "master" {
		t.Fatalf("ROLE after promotion: %v", role)
	}
	cb.must("SET", "after-promotion", "1")
	waitFor(t, 10*time.Second, "C to continue with promoted B", func() bool { return cb.infoInt("stats", "sync_partial_ok") > pok })
	waitSameData(t, b, c)
	if got := c.replica.r.Stats().FullSyncs; got != 1 {
		t.Errorf("C full syncs = %d, want 1", got)
	}

	// The old master, still untouched since, rejoins and continues.
	ca.must("REPLICAOF", "127.0.0.1", b.port)
	if r, _ := ca.do("SET", "x", "y"); !isErr(r, "READONLY") {
		t.Errorf("write on the demoted master: %v", r)
	}
	waitSameData(t, b, a)
	if got := a.replica.r.Stats(); got.FullSyncs != 0 || got.PartialSyncs != 1 {
		t.Errorf("demoted master: %d full, %d partial syncs; want 0 and 1", got.FullSyncs, got.PartialSyncs)
	}
}

func TestWaitAndMinReplicas(t *testing.T) {
	a := startServer(t, "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
	ca := a.client(t)
	if r, _ := ca.do("SET", "k", "v"); !isErr(r, "NOREPLICAS Not enough good replicas to write.") {
		t.Fatalf("SET without replicas: %v", r)
	}
	if got := ca.str("GET", "k"); got != "" {
		t.Fatalf("reads still work: %q", got)
	}
	b := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port))
	waitFor(t, 10*time.Second, "a good replica", func() bool { r, _ := ca.do("SET", "k", "v"); return r == "OK" })
	ca.must("SET", "k2", "v2")
	if n := ca.int("WAIT", 1, 5000); n != 1 {
		t.Errorf("WAIT 1 = %d", n)
	}
	if got := b.client(t).str("GET", "k2"); got != "v2" {
		t.Errorf("after WAIT the replica has k2=%q", got)
	}
	start := time.Now()
	if n := ca.int("WAIT", 2, 200); n != 1 {
		t.Errorf("WAIT 2 = %d", n)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("WAIT 2 200 returned after %v", d)
	}
	ca.must("CONFIG", "SET", "min-replicas-to-write", "2")
	if r, _ := ca.do("SET", "k", "v"); !isErr(r, "NOREPLICAS") {
		t.Errorf("SET with 1 of 2 replicas: %v", r)
	}
	if cfg := toStrings(ca.must("CONFIG", "GET", "min-replicas-*")); strings.Join(cfg, " ") != "min-replicas-to-write 2 min-replicas-max-lag 10" {
		t.Errorf("CONFIG GET min-replicas-*: %v", cfg)
	}
	if r, _ := b.client(t).do("WAIT", 0, 0); !isErr(r, "ERR WAIT cannot be used with replica instances") {
		t.Errorf("WAIT on a replica: %v", r)
	}
}

// A replica moved to another master resyncs from it; CLIENT KILL TYPE
// master on it reconnects partially.
func TestReplicaSwitchesMaster(t *testing.T) {
	a := startServer(t)
	a.client(t).must("SET", "from", "a")
	other := startServer(t)
	oc := other.client(t)
	oc.must("SET", "from", "other")
	oc.must("SADD", "only-other", "1")
	b := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port))
	waitSameData(t, a, b)
	cb := b.client(t)
	if r := cb.str("REPLICAOF", "127.0.0.1", a.port); r != "OK Already connected to specified master" {
		t.Errorf("REPLICAOF same master: %q", r)
	}
	cb.must("REPLICAOF", "127.0.0.1", other.port)
	waitSameData(t, other, b)
	if got := cb.str("GET", "from"); got != "other" {
		t.Fatalf("after the switch: from=%q", got)
	}
	if n := cb.int("CLIENT", "KILL", "TYPE", "master"); n != 1 {
		t.Fatalf("CLIENT KILL TYPE master: %d", n)
	}
	oc.must("SET", "after-kill", "1")
	waitSameData(t, other, b)
	if st := b.replica.r.Stats(); st.PartialSyncs < 1 {
		t.Errorf("no partial resync after CLIENT KILL: %+v", st)
	}
	role := cb.must("ROLE").([]any)
	if role[0] != "slave" || role[2] != int64(other.port) || role[3] != "connected" {
		t.Errorf("ROLE: %v", role)
	}
}

// Pipelined and inline commands, as redis-cli --pipe and telnet send them.
func TestPipeliningAndInline(t *testing.T) {
	s := startServer(t)
	nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var batch []byte
	const n = 5000
	for i := range n {
		batch = psync.AppendCommandString(batch, "SET", fmt.Sprint("p", i), fmt.Sprint(i))
	}
	batch = append(batch, "GET p4999\r\nPING\r\n\r\n"...)
	go nc.Write(batch)
	rd := bufio.NewReader(nc)
	for i := range n {
		if r, err := readReply(rd); err != nil || r != "OK" {
			t.Fatalf("reply %d: %v %v", i, r, err)
		}
	}
	if r, _ := readReply(rd); r != "4999" {
		t.Fatalf("inline GET: %v", r)
	}
	if r, _ := readReply(rd); r != "PONG" {
		t.Fatalf("inline PING: %v", r)
	}
	nc.Write([]byte("*2\r\n$3\r\nGET\r\n$2\r\np1\r\nQUIT\r\n"))
	if r, _ := readReply(rd); r != "1" {
		t.Fatalf("GET: %v", r)
	}
	if r, _ := readReply(rd); r != "OK" {
		t.Fatalf("QUIT: %v", r)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Fatalf("connection open after QUIT: %v", err)
	}
}

func TestClientCommands(t *testing.T) {
	s := startServer(t)
	c := s.client(t)
	other := s.client(t)
	other.must("PING")
	c.must("CLIENT", "SETNAME", "tester")
	if got := c.str("CLIENT", "GETNAME"); got != "tester" {
		t.Errorf("GETNAME %q", got)
	}
	id := c.int("CLIENT", "ID")
	if list := c.str("CLIENT", "LIST"); !strings.Contains(list, fmt.Sprintf("id=%d ", id)) || !strings.Contains(list, "name=tester") {
		t.Errorf("CLIENT LIST:\n%s", list)
	}
	if n := c.int("CLIENT", "KILL", "TYPE", "normal"); n != 1 {
		t.Errorf("CLIENT KILL TYPE normal: %d (SKIPME yes by default)", n)
	}
	if _, err := other.do("PING"); err == nil {
		t.Error("killed client still served")
	}
	if n := c.int("CLIENT", "KILL", "TYPE", "master"); n != 0 {
		t.Errorf("CLIENT KILL TYPE master on a master: %d", n)
	}
	if r := c.must("COMMAND", "DOCS"); len(r.([]any)) != 0 {
		t.Errorf("COMMAND DOCS: %v", r)
	}
	if cfg := toStrings(c.must("CONFIG", "GET", "save", "appendonly")); strings.Join(cfg, ",") != "save,,appendonly,no" {
		t.Errorf("CONFIG GET: %q", cfg)
	}
}

func TestShutdown(t *testing.T) {
	s := startServer(t)
	c := s.client(t)
	if r, err := c.do("SHUTDOWN", "NOSAVE"); err == nil {
		t.Fatalf("SHUTDOWN replied %v", r)
	}
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		nc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
}

// BenchmarkPipelinedSet measures the server's request path: batches of 100
// pipelined SETs over loopback TCP, with the replication stream fed.
func BenchmarkPipelinedSet(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := defaultConfig()
	s, err := newServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	const batch = 100
	var req []byte
	for i := range batch {
		req = psync.AppendCommandString(req, "SET", fmt.Sprintf("key:%06d", i), strings.Repeat("v", 100))
	}
	resp := make([]byte, 5*batch)
	b.SetBytes(int64(len(req) / batch))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// A sub-replica's snapshot taken while the replica is inside a MULTI block
// of its master's stream names the offset before MULTI: the queued commands
// are not in the data, and the stream it gets starts with MULTI.
func TestReplicaSnapshotExcludesOpenTransaction(t *testing.T) {
	s := startServer(t, "--replicaof", "127.0.0.1 1") // never connects
	if !s.isReplica.Load() {
		t.Fatal("not a replica")
	}
	start := s.m.Offset()
	off := start
	var block []byte
	apply := func(args ...string) {
		raw := psync.AppendCommandString(nil, args...)
		off += int64(len(raw))
		cmd := psync.Command{Raw: raw, Offset: off}
		for _, a := range args {
			cmd.Args = append(cmd.Args, []byte(a))
		}
		if err := (applier{s.server}).Apply(cmd); err != nil {
			t.Fatal(err)
		}
		// As the Replica does after Apply: a MULTI block goes to the
		// backlog whole, at EXEC.
		switch {
		case cmd.Is("multi"):
			block = append(block[:0], raw...)
		case cmd.Is("exec"):
			s.m.Feed(append(block, raw...))
			block = nil
		case block != nil:
			block = append(block, raw...)
		default:
			s.m.Feed(raw)
		}
	}
	snapOffset := func() int64 {
		sn, err := s.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()
		return sn.Offset()
	}
	apply("SELECT", "2")
	apply("SET", "before", "1")
	beforeMulti := off
	apply("MULTI")
	apply("SET", "in-tx", "1")
	if got := snapOffset(); got != beforeMulti {
		t.Fatalf("snapshot inside MULTI at %d, want %d (before MULTI)", got, beforeMulti)
	}
	apply("EXEC")
	if got := snapOffset(); got != off {
		t.Fatalf("snapshot after EXEC at %d, want %d", got, off)
	}
	if k, _ := s.store.DBStats(2); k != 2 {
		t.Fatalf("db 2 has %d keys", k)
	}
}

// Promoted while the old master's stream had a transaction open, the node
// drops it. psync's Replica puts a MULTI block in the backlog only at EXEC,
// so the stream after the promotion starts clean with SELECT.
func TestPromotionInsideTransaction(t *testing.T) {
	s := startServer(t, "--replicaof", "127.0.0.1 1") // never connects
	off := s.m.Offset()
	for _, args := range [][]string{{"MULTI"}, {"SET", "queued", "1"}} {
		raw := psync.AppendCommandString(nil, args...)
		off += int64(len(raw))
		cmd := psync.Command{Raw: raw, Offset: off}
		for _, a := range args {
			cmd.Args = append(cmd.Args, []byte(a))
		}
		if err := (applier{s.server}).Apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	off = s.m.Offset() // the open block never reached the backlog
	c := s.client(t)
	c.must("REPLICAOF", "NO", "ONE")
	c.must("SET", "after", "1")
	// The stream after the promotion: SELECT 0 and the new write.
	want := string(psync.AppendCommandString(nil, "SELECT", "0")) +
		string(psync.AppendCommandString(nil, "SET", "after", "1"))
	buf := make([]byte, len(want))
	n, err := s.m.Backlog().ReadAt(buf, off+1)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("stream after promotion: %q, %v; want %q", buf[:n], err, want)
	}
	if got := c.str("GET", "queued"); got != "" {
		t.Errorf("queued = %q", got)
	}
}

// TestCommandCountInPipeline: commands of a pipeline are counted once the
// batch ends, so INFO sees every command before it, itself included, and
// CLIENT LIST the last command and database.
func TestCommandCountInPipeline(t *testing.T) {
	s := startServer(t)
	c := s.client(t)
	before := c.infoInt("stats", "total_commands_processed") // counts itself
	var batch []byte
	batch = psync.AppendCommandString(batch, "SET", "a", "1")
	batch = psync.AppendCommandString(batch, "SELECT", "3")
	batch = psync.AppendCommandString(batch, "GET", "a")
	batch = psync.AppendCommandString(batch, "INFO", "stats")
	batch = psync.AppendCommandString(batch, "CLIENT", "INFO")
	_, err := c.nc.Write(batch)
	require.NoError(t, err)
	for _, want := range []any{"OK", "OK", nil} {
		r, err := readReply(c.rd)
		require.NoError(t, err)
		assert.Equal(t, want, r)
	}
	r, err := readReply(c.rd)
	require.NoError(t, err)
	info := parseInfo(r.(string))
	assert.Equal(t, strconv.FormatInt(before+4, 10), info["total_commands_processed"])
	r, err = readReply(c.rd)
	require.NoError(t, err)
	assert.Contains(t, r, " db=3 ")
	assert.Contains(t, r, " cmd=get ")
}

// INFO sections other than keyspace do not wait for the store lock, which a
// replica holds for a whole batch of the stream: polling replication
// figures must not queue behind the apply loop.
func TestInfoWithoutKeyspaceSkipsStoreLock(t *testing.T) {
	a := startServer(t)
	ca := a.client(t)
	ca.must("SET", "k", "v")
	a.store.BeginApply() // as a replica's batch holds it
	got := make(chan []byte, 1)
	go func() { got <- a.info([][]byte{[]byte("replication"), []byte("stats")}) }()
	select {
	case r := <-got:
		assert.Contains(t, string(r), "master_repl_offset:")
		assert.Contains(t, string(r), "sync_full:")
		assert.NotContains(t, string(r), "# Keyspace")
	case <-time.After(5 * time.Second):
		a.store.EndApply()
		t.Fatal("INFO replication stats waited for the store lock")
	}
	keyspace := make(chan []byte, 1)
	go func() { keyspace <- a.info([][]byte{[]byte("keyspace")}) }()
	select {
	case <-keyspace:
		t.Fatal("INFO keyspace read the key counts without the store lock")
	case <-time.After(50 * time.Millisecond):
	}
	a.store.EndApply()
	assert.Contains(t, string(<-keyspace), "db0:keys=1,expires=0")
}

// A replica's batch mixes commands copied into its prefetch window with
// commands too large to copy, applied where they lie; the order of the
// stream must survive the mix.
func TestReplicaWindowKeepsOrderAroundLargeCommands(t *testing.T) {
	a := startServer(t)
	b := startServer(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(a.port))
	ca, cb := a.client(t), b.client(t)
	ca.must("SET", "start", "1")
	waitSynced(t, ca, cb)
	var req []byte
	n := 0
	cmd := func(args ...string) { req, n = psync.AppendCommandString(req, args...), n+1 }
	for i := range 200 {
		size := 10
		if i%7 == 3 {
			size = maxWindowed + i // on the wire, larger than maxWindowed
		}
		v := strings.Repeat(strconv.Itoa(i%10), size)
		cmd("SET", "k", v)
		cmd("RPUSH", "order", strconv.Itoa(i))
		cmd("APPEND", "log", v[:1])
		if i%50 == 0 {
			cmd("SELECT", "1")
			cmd("SET", "k", v)
			cmd("SELECT", "0")
		}
	}
	_, err := ca.nc.Write(req)
	require.NoError(t, err)
	for range n {
		_, err := readReply(ca.rd)
		require.NoError(t, err)
	}
	waitSameData(t, a, b)
	assert.Equal(t, "9", strings.TrimSpace(cb.str("GET", "k")[:1]))
	assert.Equal(t, int64(200), cb.int("LLEN", "order"))
}
