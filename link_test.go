package psync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A host's own RESP server reads the handshake and hands the connection
// over at PSYNC (the redcon Detach shape).
func TestHostHandsOverAtPSYNC(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	writeN(t, m, "k", 50, 10)
	hostServe := func(ctx context.Context, conn net.Conn) error {
		cr := psync.NewCommandReader(conn, psync.Limits{}, true)
		var info psync.ReplicaInfo
		for {
			cmd, err := cr.ReadCommand()
			if err != nil {
				return err
			}
			switch {
			case cmd.Is("ping"):
				conn.Write(psync.AppendSimpleString(nil, "PONG"))
			case cmd.Is("replconf"):
				if err := info.Replconf(cmd.Args); err != nil {
					conn.Write(psync.AppendError(nil, "ERR "+err.Error()))
					continue
				}
				conn.Write(psync.AppendSimpleString(nil, "OK"))
			case cmd.Is("psync"), cmd.Is("sync"):
				args := make([][]byte, len(cmd.Args))
				for i, a := range cmd.Args {
					args[i] = append([]byte(nil), a...)
				}
				rw := struct {
					io.Reader
					io.Writer
					io.Closer
				}{io.MultiReader(strings.NewReader(string(cr.Buffered())), conn), conn, conn}
				return m.m.ServeSync(ctx, rw, info, args)
			}
		}
	}
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		a, b := net.Pipe()
		go hostServe(context.Background(), b)
		return a, nil
	}
	f := startReplica(t, dial, func(c *psync.ReplicaConfig) { c.ListeningPort = 6390 })
	waitSynced(t, f, m)
	require.Eventually(t, func() bool { return len(m.m.Stats().Replicas) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 6390, m.m.Stats().Replicas[0].ListeningPort)
	writeN(t, m, "more", 50, 10)
	waitSynced(t, f, m)
}

// Legacy SYNC (redis-cli --replica): a snapshot with no +FULLRESYNC line,
// then the stream.
func TestLegacySYNC(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	require.NoError(t, m.store.Set("a", "1"))
	c, br, _ := rawLink(t, m.m)
	_, err := c.Write([]byte("SYNC\r\n"))
	require.NoError(t, err)
	hdr, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hdr, "$"), "snapshot header first, got %q", hdr)
	var n int64
	_, err = fmt.Sscanf(hdr, "$%d\r\n", &n)
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, br, n)
	require.NoError(t, err)
	require.NoError(t, m.store.Set("b", "2"))
	want := string(psync.AppendCommandString(nil, "SET", "b", "2"))
	got := make([]byte, len(want))
	_, err = io.ReadFull(br, got)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}

func TestGetAckAndAckTracking(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.AckPeriod = time.Hour })
	writeN(t, m, "k", 10, 10)
	waitSynced(t, f, m)
	m.m.RequestAck()
	want := m.m.Offset()
	require.Eventually(t, func() bool {
		st := m.m.Stats()
		return len(st.Replicas) == 1 && st.Replicas[0].AckOffset == want
	}, 5*time.Second, time.Millisecond, "GETACK answered with the processed offset")
	st := m.m.Stats()
	assert.Equal(t, "online", st.Replicas[0].State)
	assert.Zero(t, st.Replicas[0].Lag)
}

func TestPingsCountInOffsets(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{PingPeriod: 10 * time.Millisecond})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	start := m.m.Offset()
	require.Eventually(t, func() bool { return m.m.Offset() >= start+3*14 }, 5*time.Second, time.Millisecond)
	waitSynced(t, f, m)
	assert.Zero(t, f.store.Applied(), "PINGs are not passed to the applier")
}

// A replica that stops reading is dropped once its unsent data passes
// MaxLag; writes never wait for it; it comes back partially when the backlog
// still covers it.
func TestStalledReplicaDroppedWithoutSlowingWrites(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{BacklogSize: 1 << 20, MaxLag: 64 << 10})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	holdDials()
	d.Last().Stall()
	writeN(t, m, "k", 200, 1000) // 200 KB: over MaxLag, inside the backlog
	require.Eventually(t, func() bool { return len(m.m.Stats().Replicas) == 0 }, 5*time.Second, time.Millisecond, "stalled replica dropped")
	d.Last().Resume()
	releaseDials()
	waitSynced(t, f, m)
	assert.EqualValues(t, 1, f.r.Stats().FullSyncs)
	assert.EqualValues(t, 1, f.r.Stats().PartialSyncs, "continued partially from the backlog")
	assert.True(t, hasServeError(d, psync.ErrReplicaTooFar), "dropped for lag: %v", d.ServeErrors())
}

func TestMasterDropsReplicaWithoutAcks(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{Timeout: 200 * time.Millisecond})
	c, br, done := rawLink(t, m.m)
	_, err := c.Write([]byte("PSYNC ? -1\r\n"))
	require.NoError(t, err)
	go io.Copy(io.Discard, br)
	assert.ErrorIs(t, serveErr(t, done), psync.ErrTimeout)
}

func TestHandshakeTimeout(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{Timeout: 200 * time.Millisecond})
	c, _, done := rawLink(t, m.m)
	_, err := c.Write([]byte("PI"))
	require.NoError(t, err)
	assert.ErrorIs(t, serveErr(t, done), psync.ErrTimeout)
}

// A restarted replica with persisted data and position continues partially.
func TestRestartWithPersistedPosition(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	writeN(t, m, "k", 100, 10)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	pos := f.r.Position()
	require.Equal(t, m.m.Position(), pos)
	text, err := pos.MarshalText()
	require.NoError(t, err)
	f.stop()
	<-f.done
	f.done <- nil // let the cleanup's receive pass

	writeN(t, m, "while-down", 50, 10)
	var back psync.Position
	require.NoError(t, back.UnmarshalText(text))
	g := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) {
		c.Position = back
		c.Loader, c.Applier = f.store, f.store // the "persisted" dataset
	})
	waitSynced(t, g, m)
	assert.Zero(t, g.r.Stats().FullSyncs)
	assert.EqualValues(t, 1, g.r.Stats().PartialSyncs)
	assert.Equal(t, m.store.Digest(), f.store.Digest())
}

// A master that answers +CONTINUE with a new ID (it was promoted) is
// adopted, the old ID kept as replid2 up to our offset + 1.
func TestReplicaAdoptsNewReplID(t *testing.T) {
	newID := "fedcba9876543210fedcba9876543210fedcba98"
	s := psynctest.NewStore()
	pos := psync.Position{ID: fakeID, Offset: 100}
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		a, b := net.Pipe()
		go func() {
			br := bufio.NewReader(b)
			handshakeUpToPSYNC(b, br)
			go io.Copy(io.Discard, br)
			b.Write([]byte("+CONTINUE " + newID + "\r\n"))
			b.Write(psync.AppendCommandString(nil, "SET", "x", "y"))
		}()
		return a, nil
	}
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Position: pos, Logger: quiet})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	setLen := int64(len(psync.AppendCommandString(nil, "SET", "x", "y")))
	require.NoError(t, r.WaitOffset(ctx, 100+setLen))
	st := r.Stats()
	assert.Equal(t, psync.ReplID(newID), st.ReplID)
	assert.Equal(t, psync.ReplID(fakeID), st.ReplID2)
	assert.EqualValues(t, 101, st.SecondOffset)
	v, _ := s.Get("x")
	assert.Equal(t, "y", v)
}

// A master restarted from a persisted dataset and position keeps its
// replication ID, so a replica at that position continues partially.
func TestMasterRestartFromPersistedPosition(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	writeN(t, m, "k", 50, 10)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	pos := m.m.Position()
	d.Close()
	m.m.Close()

	// The "restarted" master: same data (the old store), same position.
	m2, err := psync.NewMaster(psync.MasterConfig{Snapshotter: m.store, Position: pos, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	m.store.SetMaster(m2)
	assert.Equal(t, pos, m2.Position())
	n2 := &node{store: m.store, m: m2}
	d2 := psynctest.NewDialer(m2)
	t.Cleanup(d2.Close)
	g := startReplica(t, d2.Dial, func(c *psync.ReplicaConfig) {
		c.Position = f.r.Position()
		c.Loader, c.Applier = f.store, f.store
	})
	writeN(t, n2, "after", 10, 10)
	waitSynced(t, g, n2)
	assert.Zero(t, g.r.Stats().FullSyncs)
	assert.EqualValues(t, 1, g.r.Stats().PartialSyncs)
}

// A MULTI block counts only once whole: the offset stays before MULTI until
// EXEC, a cut inside the block makes the host DISCARD its queue, and the
// block comes again whole on the partial resync.
func TestTransactionCutInTheMiddle(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	writeN(t, m, "k", 10, 10)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	before := m.m.Offset()

	part1 := psync.AppendCommandString(nil, "MULTI")
	part1 = psync.AppendCommandString(part1, "SET", "a", "1")
	m.m.Feed(part1)
	require.Eventually(t, func() bool { return f.r.Stats().ReadOffset == before+int64(len(part1)) }, 5*time.Second, time.Millisecond)
	assert.Equal(t, before, f.r.Offset(), "offset stays before MULTI inside a block")
	_, ok := f.store.Get("a")
	assert.False(t, ok, "queued, not applied")

	for _, c := range d.Live() {
		c.Cut()
	}
	part2 := psync.AppendCommandString(nil, "SET", "b", "2")
	part2 = psync.AppendCommandString(part2, "EXEC")
	m.m.Feed(part2)
	require.NoError(t, f.r.WaitOffset(context.Background(), m.m.Offset()))
	a, _ := f.store.Get("a")
	b, _ := f.store.Get("b")
	assert.Equal(t, "1", a)
	assert.Equal(t, "2", b)
	assert.EqualValues(t, 1, f.r.Stats().PartialSyncs)
	assert.NoError(t, f.store.Err())
}
