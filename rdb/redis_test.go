package rdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireTool returns the path of a Redis binary, skipping the test when it
// is missing (failing instead when CI=true).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true: install redis-server/redis-tools", name)
		}
		t.Skipf("%s not installed; skipping the check against real Redis (apt-get install redis-server redis-tools)", name)
	}
	return p
}

// redisFixture returns entries covering every kind and encoding boundary
// the Writer produces, in db 0 and db 1.
func redisFixture() []*Entry {
	rng := rand.New(rand.NewPCG(3, 4))
	es := genEntries(rng, 60)
	for _, e := range es {
		e.DB = min(e.DB, 1)
		if e.ExpireAt != 0 {
			e.ExpireAt = time.Now().Add(time.Hour).UnixMilli() + int64(rng.IntN(1000))
		}
		e.Idle, e.Freq = -1, -1
	}
	big := &Entry{Key: []byte("biglist"), Kind: KindList, Idle: -1, Freq: -1}
	for i := range 5000 {
		big.List = append(big.List, []byte(fmt.Sprintf("item-%d", i)))
	}
	big.List = append(big.List, bytes.Repeat([]byte("P"), 20000), []byte("42"))
	hash := &Entry{Key: []byte("bighash"), Kind: KindHash, Idle: -1, Freq: -1}
	for i := range 1000 {
		hash.Hash = append(hash.Hash, HashField{[]byte(fmt.Sprintf("field%d", i)), []byte(fmt.Sprintf("value%d", i))})
	}
	zs := &Entry{Key: []byte("zinf"), Kind: KindZSet, Idle: -1, Freq: -1, ZSet: []ZMember{{[]byte("lo"), math.Inf(-1)}, {[]byte("hi"), math.Inf(1)}, {[]byte("mid"), 0.1}}}
	ints := &Entry{Key: []byte("intset"), Kind: KindSet, Idle: -1, Freq: -1, Set: strs("1", "-5", "100000", "99999999999")}
	ttl := &Entry{Key: []byte("ttl"), String: []byte("12345"), ExpireAt: time.Now().Add(time.Hour).UnixMilli(), Idle: -1, Freq: -1}
	return append([]*Entry{big, hash, zs, ints, ttl}, es...)
}

// writeDBs writes es grouped by db with SELECTDB/RESIZEDB per group.
func writeDBs(t *testing.T, opt WriterOptions, es []*Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opt)
	require.NoError(t, err)
	for db := 0; db <= 1; db++ {
		var n, x uint64
		for _, e := range es {
			if e.DB == db {
				n++
				if e.ExpireAt != 0 {
					x++
				}
			}
		}
		require.NoError(t, w.SelectDB(db, n, x))
		for _, e := range es {
			if e.DB == db {
				require.NoError(t, w.WriteEntry(e))
			}
		}
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestRedisLoadsWriterOutput(t *testing.T) {
	server := requireTool(t, "redis-server")
	checker := requireTool(t, "redis-check-rdb")
	es := redisFixture()
	for _, tc := range []struct {
		compress bool
		conf     []string
	}{
		{false, nil},
		// Redis then saves LZF-compressed quicklist nodes, small nodes and
		// hashtable-encoded small collections for the reader to decode.
		{true, []string{"--list-compress-depth", "1", "--list-max-listpack-size", "4",
			"--hash-max-listpack-entries", "2", "--zset-max-listpack-entries", "2", "--set-max-intset-entries", "2"}},
	} {
		compress := tc.compress
		t.Run(fmt.Sprintf("compress=%v/conf=%v", compress, tc.conf), func(t *testing.T) {
			dir := t.TempDir()
			aux := []AuxField{{"redis-ver", "7.0.15"}, {"redis-bits", "64"}, {"ctime", strconv.FormatInt(time.Now().Unix(), 10)},
				{"repl-stream-db", "0"}, {"repl-id", strings.Repeat("7", 40)}, {"repl-offset", "1000"}}
			data := writeDBs(t, WriterOptions{Aux: aux, Compress: compress}, es)
			file := filepath.Join(dir, "dump.rdb")
			require.NoError(t, os.WriteFile(file, data, 0o644))

			out, err := exec.Command(checker, file).CombinedOutput()
			require.NoError(t, err, "redis-check-rdb: %s", out)
			assert.Contains(t, string(out), "RDB looks OK")

			c := startRedis(t, server, dir, tc.conf...)
			assert.EqualValues(t, countDB(es, 0), c.do(t, "DBSIZE"))
			assert.Equal(t, "+OK", c.do(t, "SELECT", "1"))
			assert.EqualValues(t, countDB(es, 1), c.do(t, "DBSIZE"))
			assert.Equal(t, "+OK", c.do(t, "SELECT", "0"))
			assert.EqualValues(t, 5002, c.do(t, "LLEN", "biglist"))
			assert.Equal(t, []byte("item-4999"), c.do(t, "LINDEX", "biglist", "4999"))
			assert.Equal(t, []byte("value999"), c.do(t, "HGET", "bighash", "field999"))
			assert.Equal(t, []byte("inf"), c.do(t, "ZSCORE", "zinf", "hi"))
			assert.Equal(t, []byte("-inf"), c.do(t, "ZSCORE", "zinf", "lo"))
			assert.Equal(t, []byte("12345"), c.do(t, "GET", "ttl"))
			pttl := c.do(t, "PTTL", "ttl").(int64)
			assert.Greater(t, pttl, int64(3500_000))
			info, _ := c.do(t, "INFO", "persistence").([]byte)
			assert.Contains(t, string(info), fmt.Sprintf("rdb_last_load_keys_loaded:%d\r\n", len(es)))
			assert.Contains(t, string(info), "rdb_last_load_keys_expired:0\r\n")

			// Redis's own dump of what it loaded must hold the same data.
			assert.Equal(t, "+OK", c.do(t, "SAVE"))
			saved, err := os.ReadFile(file)
			require.NoError(t, err)
			got := mustRead(t, saved)
			require.Len(t, got, len(es))
			gm := byKey(got)
			for _, e := range es {
				g := gm[string(e.Key)]
				if !assert.NotNil(t, g, "key %q", e.Key) {
					continue
				}
				assert.Equal(t, normalize(e), normalize(g), "key %q", e.Key)
			}
		})
	}
}

func countDB(es []*Entry, db int) int64 {
	var n int64
	for _, e := range es {
		if e.DB == db {
			n++
		}
	}
	return n
}

type respConn struct {
	c  net.Conn
	br *bufio.Reader
}

// startRedis starts redis-server on a free port in 7400-7499 loading
// dir/dump.rdb and returns a connection to it.
func startRedis(t *testing.T, server, dir string, conf ...string) *respConn {
	t.Helper()
	var port int
	for p := 7400 + rand.IntN(100); ; p++ {
		if p > 7499 {
			p = 7400
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			port = p
			break
		}
	}
	cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.Args = append(cmd.Args, conf...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			rc := &respConn{c: conn, br: bufio.NewReader(conn)}
			t.Cleanup(func() { conn.Close() })
			if rc.do(t, "PING") == "+PONG" {
				return rc
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not come up: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends a command and returns the reply: "+status", "-error", int64,
// []byte, nil or []any.
func (r *respConn) do(t *testing.T, args ...string) any {
	t.Helper()
	var b []byte
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := r.c.Write(b)
	require.NoError(t, err)
	v, err := r.read()
	require.NoError(t, err)
	return v
}

func (r *respConn) read() (any, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', '-':
		return line, nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		_, err := io.ReadFull(r.br, b)
		return b[:n], err
	case '*':
		n, _ := strconv.Atoi(line[1:])
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := r.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}
