package psync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog records every Write a replica makes on its connection.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// commands parses b as RESP commands.
func commands(t *testing.T, b []byte) [][]string {
	t.Helper()
	cr := psync.NewCommandReader(strings.NewReader(string(b)), psync.Limits{}, false)
	var cmds [][]string
	for {
		cmd, err := cr.ReadCommand()
		if err == io.EOF {
			return cmds
		}
		require.NoError(t, err)
		var args []string
		for _, a := range cmd.Args {
			args = append(args, string(a))
		}
		cmds = append(cmds, args)
	}
}

const pendingOutput = "-ERR SYNC and PSYNC are invalid with pending output\r\n"

// strictMaster is a fake master that reads the whole handshake up to
// REPLCONF capa before it answers anything, so a replica that waits for each
// reply before it sends the next command never gets one. It then writes
// replies (one line per command read). As Redis, it refuses a PSYNC that
// arrived with the other commands (their replies were still unsent). A PSYNC
// sent after the replies gets afterPSYNC (its reply and the stream). It
// reads until the replica hangs up.
func strictMaster(c net.Conn, replies, afterPSYNC string) {
	defer c.Close()
	cr := psync.NewCommandReader(c, psync.Limits{}, false)
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			return
		}
		if cmd.Is("replconf") && len(cmd.Args) > 1 && strings.EqualFold(string(cmd.Args[1]), "capa") {
			break
		}
	}
	pipelined := len(cr.Buffered()) > 0
	if pipelined {
		replies += pendingOutput
	}
	if _, err := io.WriteString(c, replies); err != nil {
		return
	}
	if pipelined { // the refused PSYNC
		if cmd, err := cr.ReadCommand(); err != nil || !cmd.Is("psync") {
			return
		}
	}
	cmd, err := cr.ReadCommand()
	if err != nil || !cmd.Is("psync") {
		return
	}
	if _, err := io.WriteString(c, afterPSYNC); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

func TestHandshakePipelined(t *testing.T) {
	set := psync.AppendCommandString(nil, "SET", "k", "v")
	capa := []string{"REPLCONF", "capa", "eof", "capa", "psync2"}
	cases := []struct {
		name    string
		cfg     func(*psync.ReplicaConfig)
		replies string
		want    [][]string // the first write
	}{
		{
			name: "announced address, no auth",
			cfg: func(c *psync.ReplicaConfig) {
				c.ListeningPort, c.IPAddress = 6380, "10.0.0.7"
			},
			replies: "+PONG\r\n+OK\r\n+OK\r\n+OK\r\n",
			want: [][]string{{"PING"}, {"REPLCONF", "listening-port", "6380"},
				{"REPLCONF", "ip-address", "10.0.0.7"}, capa},
		},
		{
			// Redis answers a PING sent before AUTH with -NOAUTH.
			name:    "AUTH with a user, PING refused before it",
			cfg:     func(c *psync.ReplicaConfig) { c.User, c.Password = "repl", "s3cret" },
			replies: "-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n",
			want:    [][]string{{"PING"}, {"AUTH", "repl", "s3cret"}, capa},
		},
		{
			name:    "AUTH with a password, REPLCONF refused, keepalives",
			cfg:     func(c *psync.ReplicaConfig) { c.Password, c.ListeningPort = "s3cret", 6380 },
			replies: "+PONG\r\n+OK\r\n-ERR Unrecognized REPLCONF option: listening-port\r\n\n+OK\r\n\n",
			want:    [][]string{{"PING"}, {"AUTH", "s3cret"}, {"REPLCONF", "listening-port", "6380"}, capa},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var conns []*writeLog
			dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
				a, b := net.Pipe()
				go strictMaster(b, tc.replies, "\n+CONTINUE "+fakeID+"\r\n"+string(set))
				w := &writeLog{Conn: a}
				mu.Lock()
				conns = append(conns, w)
				mu.Unlock()
				return w, nil
			}
			s := psynctest.NewStore()
			cfg := psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet,
				Position: psync.Position{ID: fakeID, Offset: 1000}, MinBackoff: time.Hour}
			tc.cfg(&cfg)
			r, err := psync.NewReplica(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			// One command at a time, the replica would wait for +PONG forever.
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			err = r.WaitOffset(wctx, 1000+int64(len(set)))
			require.NoError(t, err, "replica did not reach the stream; last error: %v", r.Stats().LastError)

			v, ok := s.Get("k")
			assert.True(t, ok)
			assert.Equal(t, "v", v)
			assert.Nil(t, r.Stats().LastError)
			assert.EqualValues(t, 1, r.Stats().PartialSyncs)

			// Refused once, PSYNC goes apart on the next link.
			r.Disconnect()
			err = r.WaitOffset(wctx, 1000+2*int64(len(set)))
			require.NoError(t, err, "replica did not come back; last error: %v", r.Stats().LastError)
			assert.EqualValues(t, 2, r.Stats().PartialSyncs)

			mu.Lock()
			require.Len(t, conns, 2)
			first, second := conns[0], conns[1]
			mu.Unlock()
			psyncCmd := []string{"PSYNC", fakeID, "1001"}
			first.mu.Lock()
			defer first.mu.Unlock()
			require.GreaterOrEqual(t, len(first.writes), 2)
			assert.Equal(t, append(tc.want, psyncCmd), commands(t, first.writes[0]), "the first write holds the whole handshake")
			assert.Equal(t, [][]string{psyncCmd}, commands(t, first.writes[1]), "PSYNC again once refused")
			second.mu.Lock()
			defer second.mu.Unlock()
			require.GreaterOrEqual(t, len(second.writes), 2)
			psyncCmd[2] = strconv.Itoa(1001 + len(set))
			assert.Equal(t, tc.want, commands(t, second.writes[0]), "the handshake up to PSYNC")
			assert.Equal(t, [][]string{psyncCmd}, commands(t, second.writes[1]), "PSYNC once the replies are read")
		})
	}
}

// Against psync's own Master (and any master that reads PSYNC behind the
// rest of the handshake) the whole handshake is one write, and the link
// streams after one round trip.
func TestHandshakeOneWriteWithPsyncMaster(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{Password: "s3cret"})
	writeN(t, m, "k", 10, 10)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	var mu sync.Mutex
	var conns []*writeLog
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		c, err := d.Dial(ctx)
		if err != nil {
			return nil, err
		}
		w := &writeLog{Conn: c.(net.Conn)}
		mu.Lock()
		conns = append(conns, w)
		mu.Unlock()
		return w, nil
	}
	f := startReplica(t, dial, func(c *psync.ReplicaConfig) { c.Password, c.ListeningPort, c.SingleLink = "s3cret", 6390, true })
	waitSynced(t, f, m)
	f.r.Disconnect()
	writeN(t, m, "after", 10, 10)
	waitSynced(t, f, m)
	assert.EqualValues(t, 1, f.r.Stats().PartialSyncs)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, conns, 2)
	pos := m.m.Position()
	for i, w := range conns {
		w.mu.Lock()
		cmds := commands(t, w.writes[0])
		w.mu.Unlock()
		require.Len(t, cmds, 5, "link %d", i)
		assert.Equal(t, []string{"PING"}, cmds[0])
		assert.Equal(t, []string{"AUTH", "s3cret"}, cmds[1])
		assert.Equal(t, "PSYNC", cmds[4][0], "link %d: PSYNC in the first write", i)
		if i == 1 {
			assert.Equal(t, string(pos.ID), cmds[4][1])
		}
	}
}

// A wrong password still ends the link with ErrAuth when the master's
// answers to PING, REPLCONF and PSYNC are auth errors too.
func TestHandshakePipelinedWrongPassword(t *testing.T) {
	firstError := func(t *testing.T, dial func(context.Context) (io.ReadWriteCloser, error), mod func(*psync.ReplicaConfig)) error {
		t.Helper()
		s := psynctest.NewStore()
		cfg := psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet, MinBackoff: time.Hour, Timeout: 5 * time.Second}
		mod(&cfg)
		r, err := psync.NewReplica(cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() { cancel(); <-done }()
		require.Eventually(t, func() bool { return r.Stats().LastError != nil }, 5*time.Second, time.Millisecond)
		assert.Zero(t, r.Stats().FullSyncs+r.Stats().PartialSyncs)
		return r.Stats().LastError
	}
	wrong := func(c *psync.ReplicaConfig) { c.Password = "wrong" }

	t.Run("Redis-like master", func(t *testing.T) {
		const noauth = "-NOAUTH Authentication required.\r\n"
		replies := noauth + "-WRONGPASS invalid username-password pair or user is disabled.\r\n" + noauth
		dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
			a, b := net.Pipe()
			go strictMaster(b, replies, "+CONTINUE\r\n")
			return a, nil
		}
		err := firstError(t, dial, wrong)
		assert.ErrorIs(t, err, psync.ErrAuth)
		assert.Contains(t, err.Error(), "WRONGPASS")
	})
	t.Run("psync Master", func(t *testing.T) {
		m := newMaster(t, psync.MasterConfig{Password: "s3cret"})
		d := psynctest.NewDialer(m.m)
		t.Cleanup(d.Close)
		assert.ErrorIs(t, firstError(t, d.Dial, wrong), psync.ErrAuth)
		assert.ErrorIs(t, firstError(t, d.Dial, func(*psync.ReplicaConfig) {}), psync.ErrAuth, "no password")
		assert.Zero(t, m.m.Stats().FullSyncs)
	})
	t.Run("redis-server", func(t *testing.T) {
		port := startRedisServer(t, "--requirepass", "s3cret")
		dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		}
		assert.ErrorIs(t, firstError(t, dial, wrong), psync.ErrAuth)
		assert.ErrorIs(t, firstError(t, dial, func(c *psync.ReplicaConfig) { c.User, c.Password = "default", "wrong" }), psync.ErrAuth)
		assert.ErrorIs(t, firstError(t, dial, func(*psync.ReplicaConfig) {}), psync.ErrAuth, "no password")
	})
}

// The pipelined handshake against a real Redis master with requirepass:
// its PING is refused before AUTH, and the replica still syncs, on both
// links of a full resync, and continues partially after a cut.
func TestHandshakePipelinedRedisServer(t *testing.T) {
	port := startRedisServer(t, "--requirepass", "s3cret")
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	}
	redisDo(t, port, "AUTH", "s3cret", "SET", "before", "1")
	for _, tc := range []struct {
		name string
		cfg  func(*psync.ReplicaConfig)
	}{
		{"password", func(c *psync.ReplicaConfig) { c.Password, c.ListeningPort = "s3cret", 6390 }},
		{"user and password", func(c *psync.ReplicaConfig) { c.User, c.Password, c.IPAddress = "default", "s3cret", "127.0.0.1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := psync.ReplicaConfig{Dial: dial, Loader: discardLoader{}, Applier: noopApplier{}, Logger: quiet,
				MinBackoff: 10 * time.Millisecond}
			tc.cfg(&cfg)
			r, err := psync.NewReplica(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			require.Eventually(t, func() bool { return r.Stats().LinkUp }, 10*time.Second, time.Millisecond, "last error: %v", r.Stats().LastError)
			assert.EqualValues(t, 1, r.Stats().FullSyncs)

			redisDo(t, port, "AUTH", "s3cret", "SET", "after", "2")
			want := redisOffset(t, port)
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			defer wcancel()
			require.NoError(t, r.WaitOffset(wctx, want))

			r.Disconnect()
			redisDo(t, port, "AUTH", "s3cret", "SET", "cut", "3")
			require.NoError(t, r.WaitOffset(wctx, redisOffset(t, port)))
			assert.EqualValues(t, 1, r.Stats().PartialSyncs)
			assert.EqualValues(t, 1, r.Stats().FullSyncs)
		})
	}
}

// startRedisServer starts redis-server on a free port with args and returns
// the port. It skips the test when redis-server is not installed, unless
// CI=true.
func startRedisServer(t *testing.T, args ...string) int {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found on PATH (CI=true)")
		}
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	all := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "3600"}, args...)
	cmd := exec.Command(bin, all...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &logs}, &lockedWriter{w: &logs}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server logs:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 100*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 10*time.Second, 10*time.Millisecond)
	return port
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// redisDo sends the commands in args (AUTH <password>, SET <k> <v>, or
// single words) pipelined and checks that none is refused.
func redisDo(t *testing.T, port int, args ...string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	var out []byte
	n := 0
	for i := 0; i < len(args); {
		switch args[i] {
		case "AUTH":
			out = psync.AppendCommandString(out, args[i:i+2]...)
			i += 2
		case "SET":
			out = psync.AppendCommandString(out, args[i:i+3]...)
			i += 3
		default:
			out = psync.AppendCommandString(out, args[i])
			i++
		}
		n++
	}
	_, err = c.Write(out)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	for ; n > 0; n-- {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(line, "-"), line)
	}
}

// redisOffset returns the master_repl_offset of the redis-server on port.
func redisOffset(t *testing.T, port int) int64 {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write(psync.AppendCommandString(psync.AppendCommandString(nil, "AUTH", "s3cret"), "INFO", "replication"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", line)
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	require.NoError(t, err)
	body := make([]byte, n+2)
	_, err = io.ReadFull(br, body)
	require.NoError(t, err)
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "master_repl_offset:"); ok {
			off, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return off
		}
	}
	require.FailNow(t, fmt.Sprintf("no master_repl_offset in %q", body))
	return 0
}

// The stream loop makes processed commands visible (offsets, backlog) once
// per batch of commands read together; the tests below pin what must not
// change: visibility before the replica waits for input, GETACK answers,
// and sub-replicas' bytes.

// upstream is the master end of a link whose handshake a fake master
// answered with +CONTINUE: the test writes the stream and reads ACKs.
type upstream struct {
	c  net.Conn
	cr *psync.CommandReader
}

// fakeUpstream returns a Dial whose links are answered by a fake master
// that continues partially, and a channel of their master ends.
func fakeUpstream() (func(context.Context) (io.ReadWriteCloser, error), <-chan upstream) {
	ch := make(chan upstream, 4)
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		a, b := net.Pipe()
		go func() {
			cr := psync.NewCommandReader(b, psync.Limits{}, false)
			for {
				cmd, err := cr.ReadCommand()
				if err != nil {
					b.Close()
					return
				}
				reply := "+OK\r\n"
				switch {
				case cmd.Is("ping"):
					reply = "+PONG\r\n"
				case cmd.Is("psync"):
					reply = "+CONTINUE\r\n"
				}
				if _, err := io.WriteString(b, reply); err != nil {
					b.Close()
					return
				}
				if cmd.Is("psync") {
					ch <- upstream{c: b, cr: cr}
					return
				}
			}
		}()
		return a, nil
	}
	return dial, ch
}

func startFakeFollower(t *testing.T, dial func(context.Context) (io.ReadWriteCloser, error), at int64) (*psync.Replica, *psynctest.Store) {
	t.Helper()
	s := psynctest.NewStore()
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet,
		Position: psync.Position{ID: fakeID, Offset: at}, AckPeriod: time.Hour, MinBackoff: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		assert.NoError(t, s.Err(), "stream invariants")
	})
	return r, s
}

func TestStreamOffsetVisibleBeforeWaitingForInput(t *testing.T) {
	dial, ups := fakeUpstream()
	r, s := startFakeFollower(t, dial, 0)
	up := <-ups
	defer up.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// 1000 SETs and half of the next one in one write: the replica must
	// publish the 1000 while it waits for the rest.
	var stream []byte
	for i := 0; i < 1001; i++ {
		stream = psync.AppendCommandString(stream, "SET", fmt.Sprintf("k%d", i), "v")
	}
	last := len(psync.AppendCommandString(nil, "SET", "k1000", "v"))
	whole := int64(len(stream) - last)
	_, err := up.c.Write(stream[:len(stream)-last/2])
	require.NoError(t, err)
	require.NoError(t, r.WaitOffset(ctx, whole))
	assert.Equal(t, whole, r.Offset())
	assert.Equal(t, whole, r.Stats().ReadOffset, "half a command is not read yet")
	assert.Equal(t, 1000, s.Len())

	_, err = up.c.Write(stream[len(stream)-last/2:])
	require.NoError(t, err)
	require.NoError(t, r.WaitOffset(ctx, int64(len(stream))))
	assert.Equal(t, 1001, s.Len())
}

func TestStreamGetackAnswersWithEverythingBefore(t *testing.T) {
	dial, ups := fakeUpstream()
	r, _ := startFakeFollower(t, dial, 500)
	up := <-ups
	defer up.c.Close()

	getack := psync.AppendCommandString(nil, "REPLCONF", "GETACK", "*")
	var stream []byte
	for i := 0; i < 300; i++ {
		stream = psync.AppendCommandString(stream, "SET", fmt.Sprintf("k%d", i), "v")
	}
	stream = append(stream, getack...)
	first := 500 + int64(len(stream))
	stream = psync.AppendCommandString(stream, "MULTI")
	stream = psync.AppendCommandString(stream, "SET", "a", "1")
	stream = append(stream, getack...) // inside a block: the offset before MULTI
	stream = psync.AppendCommandString(stream, "EXEC")
	stream = psync.AppendCommandString(stream, "PING")
	stream = append(stream, getack...)
	_, err := up.c.Write(stream)
	require.NoError(t, err)

	require.NoError(t, up.c.SetReadDeadline(time.Now().Add(10*time.Second)))
	var acks []int64
	for len(acks) < 3 {
		cmd, err := up.cr.ReadCommand()
		require.NoError(t, err)
		require.Len(t, cmd.Args, 3)
		require.Equal(t, "REPLCONF ACK", strings.ToUpper(string(cmd.Args[0])+" "+string(cmd.Args[1])))
		off, err := strconv.ParseInt(string(cmd.Args[2]), 10, 64)
		require.NoError(t, err)
		acks = append(acks, off)
	}
	assert.Equal(t, []int64{first, first, 500 + int64(len(stream))}, acks)
	assert.Equal(t, 500+int64(len(stream)), r.Offset())
}

// Sub-replicas get exactly the bytes the replica received, whatever the
// batching: small and large commands, transactions small and large, PINGs,
// GETACKs and empty commands.
func TestStreamChainedBacklogIdentical(t *testing.T) {
	top := newMaster(t, psync.MasterConfig{BacklogSize: 8 << 20})
	d1 := dialerFor(t, top.m, "tcp")
	ms := psynctest.NewStore()
	mm, err := psync.NewMaster(psync.MasterConfig{Snapshotter: ms, Logger: quiet, BacklogSize: 8 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { mm.Close() })
	ms.SetMaster(mm)
	mid := startReplica(t, d1.Dial, func(c *psync.ReplicaConfig) { c.Loader, c.Applier, c.Master = ms, ms, mm })
	writeN(t, top, "a", 10, 10)
	waitSynced(t, mid, top)
	d2 := dialerFor(t, mm, "pipe")
	leaf := startReplica(t, d2.Dial, nil)
	require.Eventually(t, func() bool { return leaf.r.Stats().LinkUp }, 10*time.Second, time.Millisecond)

	big := strings.Repeat("x", 200<<10)
	for round := 0; round < 3; round++ {
		writeN(t, top, fmt.Sprintf("s%d", round), 2000, 50)
		var block []byte
		block = psync.AppendCommandString(block, "MULTI")
		block = psync.AppendCommandString(block, "SET", "t1", "1")
		block = psync.AppendCommandString(block, "SET", "t2", big[:100<<10])
		block = psync.AppendCommandString(block, "EXEC")
		top.m.Feed(block)
		top.m.Feed(psync.AppendCommandString(nil, "PING"))
		top.m.RequestAck()
		top.m.Feed([]byte("*0\r\n"))
		top.m.Feed(psync.AppendCommandString(nil, "SET", "big", big))
		block = psync.AppendCommandString(nil, "MULTI")
		block = psync.AppendCommandString(block, "SET", "t3", "3")
		block = psync.AppendCommandString(block, "DISCARD")
		top.m.Feed(block)
		writeN(t, top, fmt.Sprintf("e%d", round), 500, 10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, leaf.r.WaitOffset(ctx, top.m.Offset()))
	// mid writes a batch to its sub-replicas' backlog before it publishes
	// the batch's offset (whoever sees an offset finds its bytes there), so
	// the leaf may get there a moment before mid's own offset says so.
	require.NoError(t, mid.r.WaitOffset(ctx, top.m.Offset()))
	require.Equal(t, top.m.Offset(), mid.r.Offset())
	require.Equal(t, top.m.Offset(), mm.Offset())
	assert.Equal(t, ms.Digest(), leaf.store.Digest())
	_, ok := leaf.store.Get("big")
	assert.True(t, ok)

	from := max(top.m.Backlog().First(), mm.Backlog().First())
	n := top.m.Offset() - from + 1
	require.Greater(t, n, int64(3*(200<<10)))
	want, got := make([]byte, n), make([]byte, n)
	_, err = top.m.Backlog().ReadAt(want, from)
	require.NoError(t, err)
	_, err = mm.Backlog().ReadAt(got, from)
	require.NoError(t, err)
	assert.True(t, string(want) == string(got), "the chained replica's backlog differs from its master's")
}

// A master reads the pipelined handshake in chunks and answers PING before
// it has read a long AUTH: over net.Pipe, which holds nothing, the replica
// must read that reply while it is still writing.
func TestHandshakePipelinedLongPasswordOverPipe(t *testing.T) {
	pw := strings.Repeat("p", 20<<10)
	m := newMaster(t, psync.MasterConfig{Password: pw})
	writeN(t, m, "k", 10, 10)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.Password, c.Timeout = pw, 5*time.Second })
	waitSynced(t, f, m)
	assert.Nil(t, f.r.Stats().LastError)
	assert.EqualValues(t, 1, f.r.Stats().Connects)
}
