package psync_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unsized hides a snapshot's Len, so the master must use the EOF framing or
// spool to a file.
type unsized struct{ s psync.Snapshotter }

func (u unsized) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	sn, err := u.s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return struct{ psync.Snapshot }{sn}, nil
}

func TestTwoReplicasShareOneSnapshot(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{FullSyncDelay: 200 * time.Millisecond})
	writeN(t, m, "k", 500, 30)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	a := startReplica(t, d.Dial, nil)
	b := startReplica(t, d.Dial, nil)
	waitSynced(t, a, m)
	waitSynced(t, b, m)
	st := m.m.Stats()
	assert.EqualValues(t, 2, st.FullSyncs)
	// Each replica's snapshot link closes once its second link streams.
	require.Eventually(t, func() bool { return len(m.m.Stats().Replicas) == 2 }, 5*time.Second, time.Millisecond)
	// One snapshot was written for both: the bytes sent are twice one
	// snapshot, not more, and both loaded once.
	assert.EqualValues(t, 1, a.store.Loads())
	assert.EqualValues(t, 1, b.store.Loads())
	writeN(t, m, "after", 100, 10)
	waitSynced(t, a, m)
	waitSynced(t, b, m)
}

func TestSnapshotCountsOnceForSharedSync(t *testing.T) {
	s := psynctest.NewStore()
	counting := &countingSnapshotter{s: s}
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: counting, FullSyncDelay: 200 * time.Millisecond, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s.SetMaster(m)
	n := &node{store: s, m: m}
	writeN(t, n, "k", 100, 10)
	d := psynctest.NewDialer(m)
	t.Cleanup(d.Close)
	a := startReplica(t, d.Dial, nil)
	b := startReplica(t, d.Dial, nil)
	waitSynced(t, a, n)
	waitSynced(t, b, n)
	assert.EqualValues(t, 1, counting.n.Load(), "two replicas arriving together share one snapshot")
}

func TestDisklessEOFFraming(t *testing.T) {
	for _, capaEOF := range []bool{true, false} {
		t.Run(fmt.Sprintf("capa_eof=%v", capaEOF), func(t *testing.T) {
			s := psynctest.NewStore()
			m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: unsized{s}, Logger: quiet, TempDir: t.TempDir()})
			require.NoError(t, err)
			t.Cleanup(func() { m.Close() })
			s.SetMaster(m)
			n := &node{store: s, m: m}
			writeN(t, n, "k", 300, 100)
			d := psynctest.NewDialer(m)
			t.Cleanup(d.Close)
			dial := d.Dial
			if !capaEOF {
				dial = withoutCapaEOF(d.Dial)
			}
			f := startReplica(t, dial, nil)
			waitSynced(t, f, n)
			writeN(t, n, "more", 100, 100)
			waitSynced(t, f, n)
		})
	}
}

// withoutCapaEOF rewrites the replica's "capa eof" into an unknown capability,
// as an old replica would send.
func withoutCapaEOF(dial func(context.Context) (io.ReadWriteCloser, error)) func(context.Context) (io.ReadWriteCloser, error) {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		return rewriter{c}, nil
	}
}

type rewriter struct{ io.ReadWriteCloser }

func (r rewriter) Write(p []byte) (int, error) {
	q := []byte(strings.ReplaceAll(string(p), "$3\r\neof\r\n", "$3\r\nxyz\r\n"))
	if _, err := r.ReadWriteCloser.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

func TestWrongPassword(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{Password: "s3cret"})
	writeN(t, m, "k", 10, 10)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)

	bad := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.Password = "wrong" })
	require.Eventually(t, func() bool { return bad.r.Stats().LastError != nil }, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, bad.r.Stats().LastError, psync.ErrAuth)
	assert.Zero(t, bad.store.Len(), "no data without auth")
	assert.Zero(t, m.m.Stats().FullSyncs)

	none := startReplica(t, d.Dial, nil)
	require.Eventually(t, func() bool { return none.r.Stats().LastError != nil }, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, none.r.Stats().LastError, psync.ErrAuth)
	assert.Zero(t, none.store.Len())

	good := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.Password = "s3cret" })
	waitSynced(t, good, m)
	acl := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.User, c.Password = "default", "s3cret" })
	waitSynced(t, acl, m)
}

// rawLink starts Master.Serve on one end of a pipe and returns the other.
func rawLink(t *testing.T, m *psync.Master) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- m.Serve(context.Background(), b) }()
	t.Cleanup(func() { a.Close() })
	return a, bufio.NewReader(a), done
}

func serveErr(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not end")
		return nil
	}
}

func TestMasterRejectsMalformedInput(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  error
	}{
		{"bad replid", "PSYNC zzzz 10\r\n", psync.ErrBadReplID},
		{"replid too short", "*3\r\n$5\r\nPSYNC\r\n$3\r\nabc\r\n$1\r\n1\r\n", psync.ErrBadReplID},
		{"offset not a number", "PSYNC ? abc\r\n", psync.ErrBadOffset},
		{"offset huge", "PSYNC ? 99999999999999999999\r\n", psync.ErrBadOffset},
		{"psync arity", "PSYNC ?\r\n", psync.ErrProtocol},
		{"negative bulk", "*1\r\n$-5\r\n", psync.ErrProtocol},
		{"bulk over limit", "*1\r\n$999999999\r\n", psync.ErrTooLarge},
		{"array over limit", "*99999999\r\n", psync.ErrTooLarge},
		{"not a length", "*x\r\n", psync.ErrProtocol},
		{"bulk without CRLF", "*1\r\n$4\r\nPINGxx", psync.ErrProtocol},
		{"endless inline", strings.Repeat("A", 70<<10), psync.ErrTooLarge},
	}
	m := newMaster(t, psync.MasterConfig{Limits: psync.Limits{MaxBulk: 1 << 20, MaxArgs: 1024}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, br, done := rawLink(t, m.m)
			go io.Copy(io.Discard, br)
			go c.Write([]byte(tc.input))
			err := serveErr(t, done)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestMasterRejectsFutureAck(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	c, br, done := rawLink(t, m.m)
	_, err := c.Write([]byte("PSYNC ? -1\r\n"))
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "+FULLRESYNC "), line)
	hdr, err := br.ReadString('\n')
	require.NoError(t, err)
	var n int
	_, err = fmt.Sscanf(hdr, "$%d\r\n", &n)
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, br, int64(n))
	require.NoError(t, err)
	go io.Copy(io.Discard, br)
	_, err = c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", "0"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st := m.m.Stats()
		return len(st.Replicas) == 1 && st.Replicas[0].AckOffset == 0
	}, 5*time.Second, time.Millisecond)
	_, err = c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", "1000000"))
	require.NoError(t, err)
	assert.ErrorIs(t, serveErr(t, done), psync.ErrProtocol)
}

// replicaAgainst runs a replica against a scripted fake master and returns
// the error of its first link.
func replicaAgainst(t *testing.T, script func(c net.Conn, br *bufio.Reader)) (*psynctest.Store, error) {
	t.Helper()
	s := psynctest.NewStore()
	require.NoError(t, s.Set("old", "data")) // must survive a failed sync
	errs := make(chan error, 1)
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			script(b, bufio.NewReader(b))
		}()
		return a, nil
	}
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet, Timeout: time.Second, MinBackoff: time.Hour, MaxSnapshotSize: 1 << 20})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	require.Eventually(t, func() bool { return r.Stats().LastError != nil }, 5*time.Second, time.Millisecond)
	errs <- r.Stats().LastError
	return s, <-errs
}

// handshakeUpToPSYNC answers a replica's handshake and reads its PSYNC.
func handshakeUpToPSYNC(c net.Conn, br *bufio.Reader) {
	cr := psync.NewCommandReader(br, psync.Limits{}, true)
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			return
		}
		switch {
		case cmd.Is("ping"):
			c.Write([]byte("+PONG\r\n"))
		case cmd.Is("replconf"):
			c.Write([]byte("+OK\r\n"))
		case cmd.Is("psync"):
			return
		}
	}
}

const fakeID = "0123456789abcdef0123456789abcdef01234567"

func TestReplicaRejectsMalformedMaster(t *testing.T) {
	snap := func() string {
		s := psynctest.NewStore()
		m, _ := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet})
		defer m.Close()
		s.SetMaster(m)
		_ = s.Set("new", "value")
		sn, _ := s.Snapshot(context.Background())
		var b strings.Builder
		_, _ = sn.WriteTo(&b)
		return b.String()
	}()
	mark := strings.Repeat("m", 40)
	cases := []struct {
		name  string
		reply string
		want  error
	}{
		{"unknown reply", "+WHATEVER\r\n", psync.ErrUnexpectedReply},
		{"error reply", "-ERR no\r\n", psync.ErrUnexpectedReply},
		{"bad fullresync id", "+FULLRESYNC xyz 0\r\n", psync.ErrBadReplID},
		{"negative fullresync offset", "+FULLRESYNC " + fakeID + " -4\r\n", psync.ErrBadOffset},
		{"truncated snapshot", "+FULLRESYNC " + fakeID + " 0\r\n$" + fmt.Sprint(len(snap)) + "\r\n" + snap[:len(snap)/2], psync.ErrSnapshotTruncated},
		{"oversized snapshot", "+FULLRESYNC " + fakeID + " 0\r\n$999999999999\r\n", psync.ErrTooLarge},
		{"negative snapshot length", "+FULLRESYNC " + fakeID + " 0\r\n$-3\r\n", psync.ErrProtocol},
		{"short EOF mark", "+FULLRESYNC " + fakeID + " 0\r\n$EOF:abc\r\n", psync.ErrEOFMark},
		{"EOF mark never comes", "+FULLRESYNC " + fakeID + " 0\r\n$EOF:" + mark + "\r\n" + snap, psync.ErrSnapshotTruncated},
		{"corrupt snapshot", "+FULLRESYNC " + fakeID + " 0\r\n$5\r\nhello", psync.ErrLoad},
		{"garbage in the stream", "+FULLRESYNC " + fakeID + " 0\r\n$" + fmt.Sprint(len(snap)) + "\r\n" + snap + "GARBAGE\r\n", psync.ErrProtocol},
		{"oversized bulk in stream", "+CONTINUE\r\n*1\r\n$999999999\r\n", psync.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := replicaAgainst(t, func(c net.Conn, br *bufio.Reader) {
				handshakeUpToPSYNC(c, br)
				go io.Copy(io.Discard, br)
				c.Write([]byte(tc.reply))
				c.Close() // the master goes away after what it sent
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			if errors.Is(tc.want, psync.ErrProtocol) && strings.Contains(tc.name, "garbage") {
				return // the snapshot loaded; garbage came after
			}
			v, ok := s.Get("old")
			assert.True(t, ok && v == "data", "old data intact after a failed sync")
			_, ok = s.Get("new")
			assert.False(t, ok, "nothing of a failed snapshot is visible")
		})
	}
}

func TestReplicaTimesOutSilentMaster(t *testing.T) {
	_, err := replicaAgainst(t, func(c net.Conn, br *bufio.Reader) {
		handshakeUpToPSYNC(c, br)
		c.Write([]byte("+CONTINUE\r\n"))
		io.Copy(io.Discard, br) // never sends anything again
	})
	assert.ErrorIs(t, err, psync.ErrTimeout)
}

type countingSnapshotter struct {
	s psync.Snapshotter
	n atomic.Int64
}

func (c *countingSnapshotter) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	c.n.Add(1)
	return c.s.Snapshot(ctx)
}
