package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
)

// ---- a tiny RESP client ----

// respErr is an error reply.
type respErr string

func (e respErr) Error() string { return string(e) }

// client is a minimal synchronous RESP2 client for the tests.
type client struct {
	t  testing.TB
	nc net.Conn
	rd *bufio.Reader
}

func dialClient(t testing.TB, port int) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %d: %v", port, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

// do sends one command and returns its reply: string (simple or bulk), nil
// (null), int64, []any, or respErr.
func (c *client) do(args ...any) (any, error) {
	strs := make([]string, len(args))
	for i, a := range args {
		strs[i] = fmt.Sprint(a)
	}
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.nc.Write(psync.AppendCommandString(nil, strs...)); err != nil {
		return nil, err
	}
	return readReply(c.rd)
}

// must runs a command that must not fail (neither I/O nor error reply).
func (c *client) must(args ...any) any {
	c.t.Helper()
	r, err := c.do(args...)
	if err != nil {
		c.t.Fatalf("%v: %v", args, err)
	}
	if e, ok := r.(respErr); ok {
		c.t.Fatalf("%v: error reply %s", args, e)
	}
	return r
}

func (c *client) str(args ...any) string {
	c.t.Helper()
	r := c.must(args...)
	s, _ := r.(string)
	return s
}

func (c *client) int(args ...any) int64 {
	c.t.Helper()
	r := c.must(args...)
	n, ok := r.(int64)
	if !ok {
		c.t.Fatalf("%v: want an integer, got %#v", args, r)
	}
	return n
}

func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respErr(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(rd); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply type %q", line)
}

// infoField returns one field of INFO.
func (c *client) infoField(section, field string) string {
	c.t.Helper()
	return parseInfo(c.str("INFO", section))[field]
}

func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			m[k] = v
		}
	}
	return m
}

func (c *client) infoInt(section, field string) int64 {
	c.t.Helper()
	v := c.infoField(section, field)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c.t.Fatalf("INFO %s: %s=%q", section, field, v)
	}
	return n
}

// ---- processes ----

// requireRedis skips the test when the Redis tools are absent, except in CI
// where their absence is a failure.
func requireRedis(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"redis-server"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found on PATH (CI=true: the interop tests must run)", tool)
			}
			t.Skipf("%s not found on PATH; install redis-server and redis-tools to run the interop tests", tool)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// kvserverBin builds the kvserver binary once per test run.
func kvserverBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kvserver-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "kvserver")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a server process started by a test.
type proc struct {
	name string
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
}

type lockedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startProc starts a server on port and waits until it answers PING. The
// process is killed at the end of the test; its output is shown if the test
// failed.
func startProc(t *testing.T, name string, port int, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, port: port, log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd = exec.Command(bin, args...)
	lb := lockedBuffer{p.mu, p.log}
	p.cmd.Stdout, p.cmd.Stderr = lb, lb
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if strings.Contains(p.logs(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", name)
		}
		if t.Failed() {
			t.Logf("---- %s (port %d) output ----\n%s", name, port, tail(p.logs(), 60))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c := &client{t: t, nc: nc, rd: bufio.NewReader(nc)}
			r, err := c.do("PING")
			nc.Close()
			if err == nil && (r == "PONG" || isErr(r, "NOAUTH")) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on port %d did not start:\n%s", name, port, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isErr(r any, prefix string) bool {
	e, ok := r.(respErr)
	return ok && strings.HasPrefix(string(e), prefix)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startKV starts kvserver on a free port with extra flags.
func startKV(t *testing.T, args ...string) *proc {
	t.Helper()
	port := freePort(t)
	return startProc(t, "kvserver", port, kvserverBin(t), append([]string{"--port", strconv.Itoa(port), "--loglevel", "notice"}, args...)...)
}

// startRedis starts redis-server on a free port with extra flags.
func startRedis(t *testing.T, args ...string) *proc {
	t.Helper()
	port := freePort(t)
	base := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--repl-diskless-sync-delay", "0", "--dir", t.TempDir()}
	return startProc(t, "redis-server", port, "redis-server", append(base, args...)...)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSynced waits until the replica processed everything the master has.
func waitSynced(t *testing.T, master, replica *client) {
	t.Helper()
	waitFor(t, 20*time.Second, "replica to catch up", func() bool {
		mi := parseInfo(master.str("INFO", "replication"))
		ri := parseInfo(replica.str("INFO", "replication"))
		return ri["master_link_status"] == "up" && ri["slave_repl_offset"] == mi["master_repl_offset"]
	})
}

// ---- dataset dumps ----

// keyDump is one key as seen through RESP.
type keyDump struct {
	Type  string
	Value string
	// ExpireAt is the absolute expiry in unix ms estimated from PTTL when
	// it was read (so dumps taken at different times compare), 0 for none.
	ExpireAt int64
}

// dumpDB reads every key of database db through commands both servers
// implement: TYPE, PTTL and the type's read command, normalizing member order.
func dumpDB(t *testing.T, c *client, db int) map[string]keyDump {
	t.Helper()
	c.must("SELECT", db)
	out := map[string]keyDump{}
	for _, k := range c.must("KEYS", "*").([]any) {
		key := k.(string)
		d := keyDump{Type: c.str("TYPE", key)}
		if pttl := c.int("PTTL", key); pttl >= 0 {
			d.ExpireAt = time.Now().UnixMilli() + pttl
		}
		switch d.Type {
		case "string":
			d.Value = c.str("GET", key)
		case "list":
			d.Value = fmt.Sprint(c.must("LRANGE", key, 0, -1))
		case "set":
			m := toStrings(c.must("SMEMBERS", key))
			slices.Sort(m)
			d.Value = fmt.Sprint(m)
		case "hash":
			kv := toStrings(c.must("HGETALL", key))
			pairs := make([]string, 0, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				pairs = append(pairs, kv[i]+"="+kv[i+1])
			}
			slices.Sort(pairs)
			d.Value = fmt.Sprint(pairs)
		case "zset":
			d.Value = fmt.Sprint(c.must("ZRANGE", key, 0, -1, "WITHSCORES"))
		default:
			d.Value = "?"
		}
		out[key] = d
	}
	c.must("SELECT", 0)
	return out
}

func toStrings(r any) []string {
	a, _ := r.([]any)
	out := make([]string, len(a))
	for i, v := range a {
		out[i] = fmt.Sprint(v)
	}
	return out
}

// compareDatasets checks that both servers hold the same keys, types,
// values and expiry times (within a second) in databases 0..15.
func compareDatasets(t *testing.T, a, b *client) int {
	t.Helper()
	total := 0
	for db := 0; db < 16; db++ {
		da, dbb := dumpDB(t, a, db), dumpDB(t, b, db)
		if len(da) != len(dbb) {
			t.Errorf("db %d: %d keys vs %d keys", db, len(da), len(dbb))
		}
		for k, va := range da {
			vb, ok := dbb[k]
			switch {
			case !ok:
				t.Errorf("db %d: key %q missing on the replica", db, k)
			case va.Type != vb.Type || va.Value != vb.Value:
				t.Errorf("db %d key %q: %s %s vs %s %s", db, k, va.Type, va.Value, vb.Type, vb.Value)
			case (va.ExpireAt == 0) != (vb.ExpireAt == 0) || abs(va.ExpireAt-vb.ExpireAt) > 1000:
				t.Errorf("db %d key %q: expires at %d vs %d", db, k, va.ExpireAt, vb.ExpireAt)
			}
		}
		total += len(da)
	}
	return total
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
